"""requirements.txt holds what synth, deploy and the operator CLI need, and they need nothing else: a deploy machine
installs no torch. The container code's dependencies are in requirements-training.txt, which the dev set includes."""

from __future__ import annotations

import os
from pathlib import Path

from packaging.utils import canonicalize_name

from tests.deploy_machine import not_on_a_deploy_machine, run_on_a_deploy_machine
from tests.distributions import pins, requirement_lines, requirements

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONTAINER_CODE_DEPENDENCIES = ("torch", "scikit-learn", "matplotlib")


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


def test_a_deploy_machine_blocks_what_requirements_txt_does_not_install():
    assert {"torch", "sklearn", "matplotlib", "moto", "pytest"} <= set(not_on_a_deploy_machine())


def test_synth_needs_nothing_outside_requirements_txt(synthesized_on_a_deploy_machine):
    """The whole app (every stage, stack kind and serving mode; the pipeline definition as `mlops pipeline definition`
    builds it) synthesized in a process where no package that requirements.txt does not install can be imported."""
    synth = synthesized_on_a_deploy_machine
    assert synth.returncode == 0, synth.output
    assert (synth.assembly_dir / "manifest.json").exists()
    assert {"dev", "staging", "prod"} <= {path.name.removeprefix("assembly-") for path in synth.assembly_dir.iterdir()}


def test_the_operator_commands_need_nothing_outside_requirements_txt():
    """The operator CLI's commands that talk to AWS only load without anything requirements.txt does not install."""
    cli = run_on_a_deploy_machine(
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
        dict(os.environ),
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert cli.stdout.strip().endswith("ok")
