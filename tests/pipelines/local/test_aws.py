"""The embedded AWS: loopback only, this process's AWS settings pointed at it, its state kept between commands."""

from __future__ import annotations

import os
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
