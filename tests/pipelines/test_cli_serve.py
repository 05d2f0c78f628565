"""`mlops serve` starts the serving image's server on this machine, and refuses a bad model, a command line that
cannot work or a taken port in one line."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from torch import manual_seed
from typer.testing import CliRunner

from pipelines.cli import app
from tests.encodings import numbers_only
from training_code.artifact import ModelArtifact
from training_code.model import MLP, ModelConfig

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FEATURES = ("a", "b", "c")


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    manual_seed(0)
    config = ModelConfig(input_size=len(FEATURES), hidden_sizes=(4,), num_classes=2, activation="relu", dropout=0.0)
    ModelArtifact(
        model_config=config,
        encoding=numbers_only(FEATURES, "label"),
        classes=("no", "yes"),
        hyperparameters={},
        history=[],
        best_epoch=1,
        state_dict=MLP(config).state_dict(),
    ).save(tmp_path / "model")
    return tmp_path / "model"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def mlops(*arguments: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "pipelines.cli", *arguments]
    return subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_serve_answers_invocations_on_loopback(model_dir):
    port = free_port()
    server = mlops("serve", "--model-dir", str(model_dir), "--port", str(port), "--workers", "1")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1)
                break
            except OSError:
                assert server.poll() is None, server.stderr.read()
                assert time.monotonic() < deadline, "no answer on /ping"
                time.sleep(0.05)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", data=b"1,2,3\n4,5,6\n", headers={"Content-Type": "text/csv"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            labels = response.read().decode().splitlines()
        assert len(labels) == 2 and set(labels) <= {"no", "yes"}
    finally:
        server.terminate()
        assert server.wait(timeout=30) == 0, "SIGTERM is a clean shutdown"
    assert f"127.0.0.1:{port}" in server.stdout.read(), "it says where it listens"


def test_serve_refuses_a_directory_without_a_model_in_one_line(tmp_path):
    server = mlops("serve", "--model-dir", str(tmp_path), "--port", str(free_port()))
    assert server.wait(timeout=60) != 0
    error = server.stderr.read().strip()
    assert error.count("\n") == 0 and str(tmp_path) in error and "model.json" in error


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--port", "0"], "error: Invalid value for '--port': 0 is outside 1-65535 (see: "),
        (["--port", "70000"], "error: Invalid value for '--port': 70000 is outside 1-65535 (see: "),
        (["--workers", "0"], "error: Invalid value for '--workers': 0 is below 1 (see: "),
        (
            ["--model-dir", "{missing}"],
            "error: Invalid value for '--model-dir': path '{missing}' does not exist (see: ",
        ),
    ],
)
def test_a_command_line_that_cannot_work_is_one_line_and_exit_2(model_dir, tmp_path, arguments, message):
    """Refused by the command line itself, before anything starts: the CLI in this process, as the shell runs it."""
    missing = str(tmp_path / "nowhere")
    arguments = [argument.format(missing=missing) for argument in arguments]
    result = CliRunner().invoke(app, ["serve", "--model-dir", str(model_dir), *arguments])
    assert result.exit_code == 2
    assert result.stderr.startswith(message.format(missing=missing))
    assert result.stdout == ""


def test_a_taken_port_is_refused_in_one_line_before_the_model_is_loaded(model_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = mlops("serve", "--model-dir", str(model_dir), "--port", str(port))
        assert server.wait(timeout=60) == 1
    assert (
        server.stderr.read()
        == f"error: cannot listen on 127.0.0.1:{port}: Address already in use; choose another --port\n"
    )
    assert server.stdout.read() == ""
