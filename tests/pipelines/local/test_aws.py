"""The embedded AWS: loopback only, this process's AWS settings pointed at it, its state kept between commands."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import boto3
import pytest

from pipelines.local.aws import EmbeddedAwsError, embedded_aws
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


def test_a_foreground_embedded_aws_serves_other_commands_and_saves_on_ctrl_c(tmp_path):
    environment = {**os.environ, LOCAL_DIR_VARIABLE: str(tmp_path)}
    command = [sys.executable, "-m", "pipelines.cli", "local", "aws", "--port", "0"]
    server = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, text=True)
    try:
        assert "embedded AWS at http://127.0.0.1:" in server.stdout.readline()
        endpoint = json.loads(LocalLayout(tmp_path).endpoint_file.read_text())
        create = "import boto3; boto3.client('sagemaker').create_model_package_group(ModelPackageGroupName='shared')"
        subprocess.run(
            [sys.executable, "-c", create],
            env={**environment, "AWS_ENDPOINT_URL": endpoint["url"], "AWS_DEFAULT_REGION": "us-east-1"}
            | {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"},
            check=True,
            timeout=60,
        )
        listed = subprocess.run(
            [sys.executable, "-m", "pipelines.cli", "--local", "models", "list", "--group", "shared"],
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "model package group shared has no versions yet" in listed.stdout, listed.stderr
    finally:
        server.send_signal(signal.SIGINT)
        assert server.wait(timeout=30) == 0
    assert not LocalLayout(tmp_path).endpoint_file.exists()
    with embedded_aws(LocalLayout(tmp_path)):
        assert boto3.client("sagemaker").describe_model_package_group(ModelPackageGroupName="shared")
