"""What a local run tells the user to type next: commands that run as printed, on this run's version and files."""

from __future__ import annotations

import http.server
import shlex
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from pipelines import spec
from pipelines.local.jobs import ContainerRoot
from pipelines.local.runner import RunResult
from pipelines.local.walkthrough import WalkthroughFailed, holdout_file, mlops_program, next_commands
from training_code.contract import DEFAULT_MAX_PAYLOAD_MB

ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlopskit-dev-models/7"


def finished_run(run_dir: Path) -> RunResult:
    test_dir = ContainerRoot(run_dir / "mlopskit-dev-preprocess-abc").path(spec.SPLITS_OUTPUT_DIR / spec.SPLITS[2])
    test_dir.mkdir(parents=True)
    (test_dir / "test.csv").write_text("pixel_0,label\n1,2\n")
    return RunResult("abc", "arn:execution", {}, run_dir, model_package_arn=ARN)


def test_after_a_run_the_first_command_approves_its_version(tmp_path):
    commands = next_commands("dev", finished_run(tmp_path), approved=False)
    approve = shlex.split(commands[0])
    assert approve[1:6] == ["--local", "models", "approve", "7", "--stage"] and "--reason" in approve
    assert not any(" approve " in command for command in next_commands("dev", finished_run(tmp_path / "b"), True))


def test_the_example_request_posts_this_runs_test_split(tmp_path):
    result = finished_run(tmp_path)
    (curl,) = [command for command in next_commands("dev", result, approved=True) if command.startswith("curl")]
    posted = Path(shlex.split(curl)[-1].removeprefix("@"))
    assert posted == holdout_file(result) and posted.is_file()


class SizeLimitedServer(http.server.BaseHTTPRequestHandler):
    """Answers 413 to a body over the real-time limit, as the serving container does, else 200; records bodies."""

    bodies: list[bytes] = []

    def do_POST(self) -> None:  # noqa: N802 (the handler's protocol)
        length = int(self.headers["Content-Length"])
        body = self.rfile.read(length)
        self.bodies.append(body)
        self.send_response(413 if length > DEFAULT_MAX_PAYLOAD_MB * 1024 * 1024 else 200)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


def test_the_example_request_of_a_large_test_split_sends_its_first_rows_that_fit_and_runs_as_printed(tmp_path):
    result = finished_run(tmp_path)
    row = ",".join(["123.456789"] * 40) + ",7\n"
    header = ",".join(f"f{i}" for i in range(40)) + ",label\n"
    holdout_file(result).write_text(header + row * (7 * 1024 * 1024 // len(row)))
    (curl,) = [command for command in next_commands("dev", result, approved=True) if "curl" in command]
    assert curl.startswith("head -n ")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SizeLimitedServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        command = curl.replace("localhost:8080", f"127.0.0.1:{server.server_port}")
        completed = subprocess.run(
            ["bash", "-c", f"{command} -o /dev/null -w '%{{http_code}}'"], capture_output=True, text=True, check=True
        )
    finally:
        server.shutdown()
    assert completed.stdout == "200"
    (body,) = SizeLimitedServer.bodies
    lines = body.decode().splitlines()
    assert lines[0] == header.strip() and len(lines) > 1000
    assert len(body) + len(row) > DEFAULT_MAX_PAYLOAD_MB * 1024 * 1024, "as many rows as fit"


def test_a_run_without_a_test_split_is_reported(tmp_path):
    with pytest.raises(WalkthroughFailed, match="no test split under"):
        holdout_file(RunResult("abc", "arn:execution", {}, tmp_path, model_package_arn=ARN))


def test_mlops_is_shown_bare_only_when_the_shell_finds_this_environments_script(monkeypatch, tmp_path):
    scripts = Path(sys.executable).parent
    assert (scripts / "mlops").is_file()  # the project's editable install put it there
    monkeypatch.setenv("PATH", str(scripts))
    assert mlops_program() == "mlops"
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.chdir(scripts.parent)
    assert mlops_program() == str(Path(scripts.name) / "mlops")
    monkeypatch.chdir(tmp_path)
    assert mlops_program() == str(scripts / "mlops")
