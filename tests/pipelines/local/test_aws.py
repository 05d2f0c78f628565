"""The embedded AWS: loopback only, this process's AWS settings pointed at it, its state kept between commands."""

from __future__ import annotations

import fcntl
import json
import os
import pickle
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import boto3
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.local.aws import EmbeddedAwsError, _locked, embedded_aws
from pipelines.local.layout import LOCAL_DIR_VARIABLE, LocalLayout


def test_settings_point_at_loopback_inside_and_are_restored_after(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "production")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://example.invalid")
    with embedded_aws(LocalLayout(tmp_path)) as endpoint:
        assert endpoint.url.startswith("http://127.0.0.1:")
        assert os.environ["AWS_ENDPOINT_URL"] == endpoint.url
        assert "AWS_PROFILE" not in os.environ
        assert boto3.client("sts").get_caller_identity()["Account"] == "123456789012"
    assert os.environ["AWS_PROFILE"] == "production"
    assert os.environ["AWS_ENDPOINT_URL"] == "https://example.invalid"


READ_BACK = textwrap.dedent(
    """
    import boto3
    from pipelines.local.aws import embedded_aws
    from pipelines.local.layout import LocalLayout
    with embedded_aws(LocalLayout.from_environment()):
        body = boto3.client("s3").get_object(Bucket="kept-bucket", Key="a/b.txt")["Body"].read().decode()
        packages = boto3.client("sagemaker").list_model_packages(ModelPackageGroupName="kept-group")
        print(body, [p["ModelApprovalStatus"] for p in packages["ModelPackageSummaryList"]])
    """
)


def test_buckets_objects_and_the_registry_survive_into_the_next_process(tmp_path):
    with embedded_aws(LocalLayout(tmp_path)):
        s3, sagemaker = boto3.client("s3"), boto3.client("sagemaker")
        s3.create_bucket(Bucket="kept-bucket")
        s3.put_object(Bucket="kept-bucket", Key="a/b.txt", Body=b"kept")
        sagemaker.create_model_package_group(ModelPackageGroupName="kept-group")
        sagemaker.create_model_package(
            ModelPackageGroupName="kept-group",
            ModelApprovalStatus="Approved",
            InferenceSpecification={
                "Containers": [{"Image": "local/serving"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
        )
    assert LocalLayout(tmp_path).aws_state_file.is_file()
    completed = subprocess.run(
        [sys.executable, "-c", READ_BACK],
        env={**os.environ, LOCAL_DIR_VARIABLE: str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert completed.stdout.strip() == "kept ['Approved']"


def test_an_unreadable_state_file_is_named_with_what_to_do(tmp_path):
    LocalLayout(tmp_path).aws_state_file.write_bytes(b"not a pickle")
    with (
        pytest.raises(EmbeddedAwsError, match=f"{tmp_path}/aws-state.pickle.*delete it"),
        embedded_aws(LocalLayout(tmp_path)),
    ):
        pass


def test_the_cli_loads_moto_and_the_sagemaker_sdk_only_for_local_commands():
    """Every `mlops` command would otherwise pay for their imports (about 0.8 s and 2 s) at start."""
    probe = "import json, sys, pipelines.cli; print(json.dumps(sorted({'moto', 'sagemaker'} & set(sys.modules))))"
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(completed.stdout.splitlines()[-1]) == []


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGHUP], ids=["ctrl-c", "closed-terminal"])
def test_a_foreground_embedded_aws_serves_other_commands_and_saves_when_stopped(tmp_path, stop):
    environment = {**os.environ, LOCAL_DIR_VARIABLE: str(tmp_path)}
    command = [sys.executable, "-m", "pipelines.cli", "local", "aws", "--port", "0"]
    server = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, text=True)
    try:
        assert "embedded AWS at http://127.0.0.1:" in server.stdout.readline()
        endpoint = json.loads(LocalLayout(tmp_path).endpoint_file.read_text())
        # A tool that knows nothing of this project, as `local aws` tells it to connect: the endpoint and any keys.
        boto3.client(
            "sagemaker",
            endpoint_url=endpoint["url"],
            region_name="us-east-1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        ).create_model_package_group(ModelPackageGroupName="shared")
        listed = subprocess.run(
            [sys.executable, "-m", "pipelines.cli", "--local", "models", "list", "--group", "shared"],
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "model package group shared has no versions yet" in listed.stdout, listed.stderr
        with embedded_aws(LocalLayout(tmp_path)) as shared:
            assert shared.state_file is None  # the server keeps the state: a command using it does not save it
    finally:
        server.send_signal(stop)
        assert server.wait(timeout=30) == 0
    assert not LocalLayout(tmp_path).endpoint_file.exists()
    with embedded_aws(LocalLayout(tmp_path)):
        assert boto3.client("sagemaker").describe_model_package_group(ModelPackageGroupName="shared")


def local_command(local_dir, *arguments: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *arguments],
        env={**os.environ, LOCAL_DIR_VARIABLE: str(local_dir)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def refused_before_any_state(local_dir, *arguments: str) -> subprocess.CompletedProcess:
    """A command that stops before it reads or writes the embedded AWS's state: the CLI in this process."""
    result = CliRunner().invoke(app, list(arguments), env={LOCAL_DIR_VARIABLE: str(local_dir)})
    return subprocess.CompletedProcess(arguments, result.exit_code, result.stdout, result.stderr)


def test_a_taken_port_is_refused_at_once_instead_of_waiting_for_it(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        completed = refused_before_any_state(tmp_path, "local", "aws", "--port", str(port))
    assert completed.returncode == 1
    assert completed.stderr.strip() == f"error: cannot listen on 127.0.0.1:{port}: Address already in use"


def test_local_aws_under_local_is_refused_instead_of_waiting_on_its_own_lock(tmp_path):
    completed = refused_before_any_state(tmp_path, "--local", "local", "aws", "--port", "0")
    assert completed.returncode == 1
    assert "`local aws` starts the embedded AWS itself; drop --local" in completed.stderr


KEEP_A_BUCKET_UNTIL_KILLED = textwrap.dedent(
    """
    import boto3, time
    from pipelines.local.aws import embedded_aws
    from pipelines.local.layout import LocalLayout
    with embedded_aws(LocalLayout.from_environment()):
        boto3.client("s3").create_bucket(Bucket="made-before-the-kill")
        print("ready", flush=True)
        time.sleep(120)
    """
)


def test_a_command_killed_with_sigterm_still_saves_what_it_did(tmp_path):
    command = subprocess.Popen(
        [sys.executable, "-c", KEEP_A_BUCKET_UNTIL_KILLED],
        env={**os.environ, LOCAL_DIR_VARIABLE: str(tmp_path)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert command.stdout.readline().strip() == "ready"
    command.send_signal(signal.SIGTERM)
    assert command.wait(timeout=30) == 128 + signal.SIGTERM
    with embedded_aws(LocalLayout(tmp_path)):
        assert [bucket["Name"] for bucket in boto3.client("s3").list_buckets()["Buckets"]] == ["made-before-the-kill"]


@pytest.mark.parametrize("state", [[1, 2], {"s3": 5}, {"ec2": {}}], ids=["a-list", "not-accounts", "other-service"])
def test_a_state_file_of_another_shape_is_named_with_what_to_do(tmp_path, state):
    LocalLayout(tmp_path).aws_state_file.write_bytes(pickle.dumps(state))
    with (
        pytest.raises(EmbeddedAwsError, match="does not hold the state of s3, sagemaker; delete it"),
        embedded_aws(LocalLayout(tmp_path)),
    ):
        pass


def test_a_local_directory_that_is_a_file_is_named(tmp_path):
    (tmp_path / "local").write_text("")
    completed = refused_before_any_state(tmp_path / "local", "--local", "models", "list", "--stage", "dev")
    assert completed.returncode == 1
    assert completed.stderr.strip().startswith(f"error: cannot use {tmp_path / 'local'} for the embedded AWS state")


def test_an_endpoint_file_whose_server_is_gone_is_ignored_even_if_its_process_id_lives(tmp_path):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    stale = {"url": f"http://127.0.0.1:{port}", "region": "us-east-1", "pid": os.getpid()}
    LocalLayout(tmp_path).endpoint_file.write_text(json.dumps(stale))
    with embedded_aws(LocalLayout(tmp_path)) as endpoint:
        assert endpoint.url != stale["url"]
        assert boto3.client("s3").list_buckets()["Buckets"] == []


def test_a_command_that_must_wait_for_the_state_says_so_and_goes_on_once_it_is_free(tmp_path, capsys):
    layout = LocalLayout(tmp_path)
    entered = threading.Event()

    def other_command() -> None:
        with _locked(layout):
            entered.set()

    with layout.lock_file.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        waiting = threading.Thread(target=other_command)
        waiting.start()
        assert not entered.wait(0.5)  # the lock is held: it cannot have entered
        fcntl.flock(held, fcntl.LOCK_UN)
    waiting.join(timeout=30)
    assert entered.is_set()
    assert f"waiting for another local command to release {layout.lock_file}" in capsys.readouterr().err


def register_a_version_with_its_report(group: str, bucket: str) -> None:
    s3, sagemaker = boto3.client("s3"), boto3.client("sagemaker")
    s3.create_bucket(Bucket=bucket)
    report = {"multiclass_classification_metrics": {"accuracy": {"value": 0.9, "standard_deviation": 0.01}}}
    s3.put_object(Bucket=bucket, Key="evaluation.json", Body=json.dumps(report).encode())
    sagemaker.create_model_package_group(ModelPackageGroupName=group)
    sagemaker.create_model_package(
        ModelPackageGroupName=group,
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [{"Image": "local/serving"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        ModelMetrics={
            "ModelQuality": {
                "Statistics": {"ContentType": "application/json", "S3Uri": f"s3://{bucket}/evaluation.json"}
            }
        },
    )


@pytest.mark.parametrize(
    "command",
    [("models", "list", "--stage", "dev"), ("pipeline", "status", "--stage", "dev")],
    ids=["models-list", "pipeline-status"],
)
def test_a_command_that_only_reads_leaves_the_state_file_as_it_was(tmp_path, command):
    """Listing downloads the versions' reports, which moto counts on each object: no change to save."""
    layout = LocalLayout(tmp_path)
    with embedded_aws(layout) as endpoint:
        assert endpoint.state_file == layout.aws_state_file  # this command saves the state, not a shared server
        # moto keeps bucket names for the whole process, whatever state it restores: one name per test.
        register_a_version_with_its_report("mlopskit-dev-models", f"reports-{command[0]}")
    before = (layout.aws_state_file.read_bytes(), layout.aws_state_file.stat().st_mtime_ns)
    completed = local_command(tmp_path, "--local", *command)
    assert "Traceback" not in completed.stderr
    if command[0] == "models":
        assert "0.9000" in completed.stdout, completed.stderr  # it did read the report
    assert (layout.aws_state_file.read_bytes(), layout.aws_state_file.stat().st_mtime_ns) == before


def test_a_corrupt_state_file_stops_a_command_with_one_line_that_names_it(tmp_path):
    state = LocalLayout(tmp_path).aws_state_file
    state.write_bytes(pickle.dumps({"s3": {}})[:-3])
    completed = local_command(tmp_path, "--local", "models", "list", "--stage", "dev")
    assert completed.returncode == 1
    (line,) = completed.stderr.splitlines()
    assert line.startswith(f"error: cannot read the embedded AWS state {state} (")
    assert line.endswith("delete it to start from an empty local account")


def blocked_signals(thread: threading.Thread) -> set[int]:
    status = Path(f"/proc/self/task/{thread.native_id}/status").read_text()
    mask = int(next(line for line in status.splitlines() if line.startswith("SigBlk:")).split()[1], 16)
    return {number for number in range(1, 65) if mask >> (number - 1) & 1}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_servers_threads_leave_stop_signals_to_the_main_thread(tmp_path):
    """A signal that the server's thread took would leave the main thread asleep in a wait (`local aws` hung so)."""
    before = set(threading.enumerate())
    with embedded_aws(LocalLayout(tmp_path)):
        (server,) = set(threading.enumerate()) - before
        assert {signal.SIGINT, signal.SIGTERM, signal.SIGHUP} <= blocked_signals(server)
        assert signal.SIGTERM not in blocked_signals(threading.main_thread())
