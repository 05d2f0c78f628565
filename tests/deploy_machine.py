"""Processes as on a deploy machine, which installs requirements.txt only: importing anything else fails."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from tests.distributions import installed_closure, provided_by, requirements

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = ("infra", "pipelines", "training_code")

# Run first in each process: an import of a blocked top-level name fails as if it were not installed.
BLOCKER = """
import importlib.abc, json, os, sys

class NotInstalledHere(importlib.abc.MetaPathFinder):
    blocked = frozenset(json.loads(os.environ["BLOCKED_MODULES"]))

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.blocked:
            raise ModuleNotFoundError(f"No module named {name!r} (not installed by requirements.txt)", name=name)
        return None

sys.meta_path.insert(0, NotInstalledHere())
"""


def modules_outside(closure: set[str]) -> list[str]:
    """The importable top-level names that only distributions outside the closure provide."""
    everything = set(metadata.packages_distributions())
    return sorted(
        name for name in everything - provided_by(closure) if name not in PROJECT_PACKAGES and name.isidentifier()
    )


def not_on_a_deploy_machine() -> list[str]:
    closure = installed_closure(requirements(PROJECT_ROOT / "requirements.txt")) | {"mlops-kit"}
    return modules_outside(closure)


def run_on_a_deploy_machine(script: str, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`script` in a process started from `environment` where only what requirements.txt installs can be imported."""
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + script],
        cwd=PROJECT_ROOT,
        env={**environment, "BLOCKED_MODULES": json.dumps(not_on_a_deploy_machine())},
        capture_output=True,
        text=True,
        timeout=300,
    )
