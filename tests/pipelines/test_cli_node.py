"""How this project's entry points start, also when started directly instead of through the Makefile: no Node
end-of-life banner from jsii where they start aws_cdk themselves (app.py, what `npx cdk synth` runs, and `mlops`), and
the collector's thresholds raised before they import the libraries that allocate most."""

from __future__ import annotations

import gc
import json
import os
import runpy
import subprocess
import sys
from pathlib import Path
from unittest.mock import Mock

import pytest

from infra.node_runtime import DEPRECATED_VARIABLE, END_OF_LIFE_VARIABLE, NODE_VARIABLE, silence_end_of_life_banner
from pipelines.cli import main
from pipelines.sdk import COLLECTION_THRESHOLDS
from tests.conftest import JSII_SILENCING_PREFIX

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# In both of jsii's banners: "Node N is end-of-life ..." and "Node N has reached end-of-life on ...".
BANNER = "end-of-life"


def fake_node(directory: Path, version_output: str) -> str:
    script = directory / "node"
    script.write_text(f"#!/bin/sh\necho '{version_output}'\n")
    script.chmod(0o755)
    return str(script)


@pytest.mark.parametrize(
    ("listed", "version", "silenced"),
    [
        (None, "v20.20.2", "20"),
        ("18", "v20.20.2", "18,20"),  # the Makefile's or a user's list is kept
        ("20, 22", "v22.1.0", "20, 22"),  # listed already: left as it was
    ],
)
def test_the_running_node_major_joins_the_silenced_ones(tmp_path, listed, version, silenced):
    environ = {NODE_VARIABLE: fake_node(tmp_path, version)} | ({END_OF_LIFE_VARIABLE: listed} if listed else {})
    silence_end_of_life_banner(environ)
    assert environ[END_OF_LIFE_VARIABLE] == silenced
    assert environ[DEPRECATED_VARIABLE] == "1"


def test_a_node_that_cannot_say_its_version_changes_nothing(tmp_path):
    """jsii then fails on its own, naming the problem; a guessed major would only hide it."""
    for node in (str(tmp_path / "no-such-node"), fake_node(tmp_path, "not a version")):
        environ = {NODE_VARIABLE: node}
        silence_end_of_life_banner(environ)
        assert environ == {NODE_VARIABLE: node}


def started_directly(*command: str) -> subprocess.Popen:
    """As a shell starts it: without the silencing variables that the Makefile or the test session set."""
    environment = {name: value for name, value in os.environ.items() if not name.startswith(JSII_SILENCING_PREFIX)}
    return subprocess.Popen(
        [sys.executable, *command], cwd=PROJECT_ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def finished(process: subprocess.Popen) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=300)
    return process.returncode, stdout.decode(), stderr.decode()


def test_the_cdk_app_and_mlops_print_no_end_of_life_banner_when_started_directly(synthesized_on_a_deploy_machine):
    """app.py as `npx cdk synth` runs it: the session's second synth, started without the silencing variables."""
    # Side by side: each starts its own Node.
    bare = started_directly("-c", "import aws_cdk")
    definition = started_directly("-m", "pipelines.cli", "pipeline", "definition", "--stage", "dev")
    (_, _, bare_stderr), (returncode, stdout, stderr) = (finished(process) for process in (bare, definition))
    if BANNER not in bare_stderr:
        pytest.skip("jsii prints no end-of-life banner for this machine's Node: nothing to silence")
    assert returncode == 0 and BANNER not in stderr, stderr
    assert json.loads(stdout)["Steps"]
    app = synthesized_on_a_deploy_machine
    assert app.returncode == 0 and BANNER not in app.stderr, app.stderr


@pytest.mark.parametrize("entry_point", ["mlops", "app.py"])
def test_the_entry_points_collect_less_often_before_they_import_the_sdk(monkeypatch, entry_point):
    """Set at the start of `mlops` and of app.py (what `npx cdk synth` runs), as the tests' own processes set it."""
    monkeypatch.setattr(gc, "set_threshold", recorded := Mock(wraps=gc.set_threshold))
    if entry_point == "mlops":
        monkeypatch.setattr(sys, "argv", ["mlops", "--help"])
        with pytest.raises(SystemExit):
            main()
    else:
        runpy.run_path(str(PROJECT_ROOT / "app.py"), run_name="app")  # its top, up to main()
    recorded.assert_called_once_with(*COLLECTION_THRESHOLDS)
