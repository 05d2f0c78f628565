"""requirements.txt holds what synth, deploy and the operator CLI need, and they need nothing else: a deploy machine
installs no torch. The container code's dependencies are in requirements-training.txt, which the dev set includes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.utils import canonicalize_name

from tests.conftest import NO_BUNDLING, SERVING_CONTEXT
from tests.distributions import installed_closure, pins, provided_by, requirement_lines, requirements

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = ("infra", "pipelines", "training_code")
CONTAINER_CODE_DEPENDENCIES = ("torch", "scikit-learn", "matplotlib")


def modules_outside(closure: set[str]) -> list[str]:
    """The importable top-level names that only distributions outside the closure provide."""
    everything = set(metadata.packages_distributions())
    return sorted(
        name for name in everything - provided_by(closure) if name not in PROJECT_PACKAGES and name.isidentifier()
    )


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


def run_without(blocked: list[str], script: str, **environment: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + script],
        cwd=PROJECT_ROOT,
        env={**os.environ, **environment, "BLOCKED_MODULES": json.dumps(blocked)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_requirements_txt_holds_no_container_code_dependencies():
    names = set(pins(PROJECT_ROOT / "requirements.txt"))
    assert names & set(CONTAINER_CODE_DEPENDENCIES) == set()
    assert "moto" not in names, "only local runs use the embedded AWS"
    assert not any(line.startswith("-r") for line in requirement_lines(PROJECT_ROOT / "requirements.txt"))


def test_the_dev_set_installs_requirements_txt_and_the_container_code_dependencies():
    dev, deploy = pins(PROJECT_ROOT / "requirements-dev.txt"), pins(PROJECT_ROOT / "requirements.txt")
    assert set(deploy) | {*CONTAINER_CODE_DEPENDENCIES, "moto"} <= set(dev)


def test_every_package_has_one_exact_pin_across_the_requirement_files():
    """numpy is listed twice (the SDK's and the server's): with the same pin."""
    specifiers: dict[str, set[str]] = {}
    for requirement in requirements(PROJECT_ROOT / "requirements-dev.txt"):
        specifiers.setdefault(canonicalize_name(requirement.name), set()).add(str(requirement.specifier))
    assert {name: found for name, found in specifiers.items() if len(found) != 1} == {}
    assert all(next(iter(found)).startswith("==") for found in specifiers.values())


def test_synth_and_the_operator_commands_need_nothing_outside_requirements_txt(tmp_path):
    """Synthesize staging (every stack kind, every serving mode; the pipeline definition as `mlops pipeline definition`
    builds it) and load the operator CLI's commands that talk to AWS only, in processes where no package that
    requirements.txt does not install can be imported."""
    closure = installed_closure(requirements(PROJECT_ROOT / "requirements.txt")) | {"mlops-kit"}
    blocked = modules_outside(closure)
    assert {"torch", "sklearn", "matplotlib", "moto", "pytest"} <= set(blocked)

    context = {**json.loads((PROJECT_ROOT / "cdk.json").read_text())["context"], **SERVING_CONTEXT, **NO_BUNDLING}
    synth = run_without(
        blocked,
        """
import runpy
for name in ("torch", "sklearn"):
    try:
        __import__(name)
    except ModuleNotFoundError:
        continue
    raise SystemExit(f"{name} was importable")
import infra.promotion.stack  # the delivery stack synthesizes only with delivery enabled
runpy.run_path("app.py", run_name="__main__")
""",
        CDK_CONTEXT_JSON=json.dumps({**context, "stage": "staging"}),
        CDK_OUTDIR=str(tmp_path / "cdk.out"),
    )
    assert synth.returncode == 0, synth.stdout + synth.stderr
    assert (tmp_path / "cdk.out" / "manifest.json").exists()

    cli = run_without(
        blocked,
        """
import contextlib, io, sys
from pipelines.cli import app
commands = (
    ["models", "list"], ["models", "show"], ["models", "approve"], ["models", "reject"], ["models", "resolve"],
    ["pipeline", "start"], ["pipeline", "status"], ["pipeline", "definition"], ["promote"], ["rollback"],
    ["deployed"], ["smoke-test"],
)
for arguments in (command + ["--help"] for command in commands):
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        try:
            app(arguments)
        except SystemExit as finished:
            if finished.code:
                raise SystemExit(f"mlops {' '.join(arguments)} exited {finished.code}")
    assert output.getvalue(), arguments
print("ok")
""",
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert cli.stdout.strip().endswith("ok")
