"""A model registry in moto, filled the way the training pipeline fills it: model package versions with the
evaluation.json that pipelines/steps/evaluate.py writes and the model.tar.gz that training writes."""

from __future__ import annotations

import functools
import io
import json
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import numpy as np
import pytest
from moto import mock_aws
from torch import manual_seed

from pipelines.steps import evaluate
from tests.encodings import numbers_only
from training_code.artifact import ModelArtifact, write_archive
from training_code.model import MLP, ModelConfig

REGION = "eu-west-1"
ACCOUNT = "123456789012"
CALLER = f"arn:aws:sts::{ACCOUNT}:user/moto"  # moto's STS caller
BUCKET = "mlopskit-artifacts-test"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/mlopskit-serving:1"
GROUPS = {stage: f"mlopskit-{stage}-models" for stage in ("dev", "staging", "prod")}
FEATURES = ("petal_length", "petal_width", "sepal_length", "sepal_width")
CLASSES = ("setosa", "versicolor", "virginica")
TEST_ROWS = 200


@functools.cache
def model_artifact() -> ModelArtifact:
    manual_seed(0)
    config = ModelConfig(
        input_size=len(FEATURES), hidden_sizes=(4,), num_classes=len(CLASSES), activation="relu", dropout=0.0
    )
    return ModelArtifact(
        model_config=config,
        encoding=numbers_only(FEATURES, "species"),
        classes=CLASSES,
        hyperparameters={},
        history=[],
        best_epoch=1,
        state_dict=MLP(config).state_dict(),
    )


@functools.cache
def model_archive() -> bytes:
    with tempfile.TemporaryDirectory() as directory:
        model_artifact().save(Path(directory) / "model")
        return write_archive(Path(directory) / "model", Path(directory) / "model.tar.gz").read_bytes()


@functools.cache
def evaluation_json(accuracy: float) -> bytes:
    """evaluate.py's report for predictions that are right on exactly `accuracy` of the test rows."""
    truth = np.arange(TEST_ROWS) % len(CLASSES)
    predicted = truth.copy()
    wrong = round((1 - accuracy) * TEST_ROWS)
    predicted[:wrong] = (truth[:wrong] + 1) % len(CLASSES)
    # Fewer bootstrap samples than the step takes: the same format, a tenth of the time.
    with mock.patch.object(evaluate, "BOOTSTRAP_SAMPLES", 10):
        report = evaluate.evaluation_report(
            CLASSES, model_artifact().best_epoch, truth, np.eye(len(CLASSES))[predicted]
        )
    return json.dumps(report, allow_nan=False).encode()


@dataclass
class FakeRegistry:
    sagemaker: Any
    s3: Any

    def register(
        self,
        stage: str = "staging",
        *,
        accuracy: float | None = 0.95,
        status: str = "PendingManualApproval",
        evaluation: bytes | None = None,
        attach_metrics: bool = True,
        baseline_features: tuple[str, ...] = (),
    ) -> str:
        """A new version of the stage's group; accuracy None leaves its report missing from S3; with
        baseline_features, registered with a data-quality baseline of those features as the pipeline writes it."""
        group = GROUPS[stage]
        number = len(self.sagemaker.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]) + 1
        prefix = f"{group}/{number}"
        if accuracy is not None or evaluation is not None:
            body = evaluation if evaluation is not None else evaluation_json(accuracy)
            self.s3.put_object(Bucket=BUCKET, Key=f"evaluation/{prefix}/evaluation.json", Body=body)
        self.s3.put_object(Bucket=BUCKET, Key=f"models/{prefix}/model.tar.gz", Body=model_archive())
        metrics = {"ContentType": "application/json", "S3Uri": f"s3://{BUCKET}/evaluation/{prefix}/evaluation.json"}
        drift_check = {}
        if baseline_features:
            folder = f"pipeline-runs/p/{number}/baseline/"
            columns = {f"_c{position}": feature for position, feature in enumerate(baseline_features)}
            files = ("features.json", "statistics.json", "constraints.json", "model_quality_constraints.json")
            for name in files:
                body = columns if name == "features.json" else {}
                self.s3.put_object(Bucket=BUCKET, Key=folder + name, Body=json.dumps(body).encode())
            data_quality = {
                name.capitalize(): {"ContentType": "application/json", "S3Uri": f"s3://{BUCKET}/{folder}{name}.json"}
                for name in ("statistics", "constraints")
            }
            model_constraints = f"s3://{BUCKET}/{folder}model_quality_constraints.json"
            model_quality = {"Constraints": {"ContentType": "application/json", "S3Uri": model_constraints}}
            drift_check = {"DriftCheckBaselines": {"ModelDataQuality": data_quality, "ModelQuality": model_quality}}
        return self.sagemaker.create_model_package(
            ModelPackageGroupName=group,
            ModelPackageDescription="MLP classifier from pipeline mlopskit-staging-training",
            ModelApprovalStatus=status,
            MetadataProperties={"GeneratedBy": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/p/execution/{number}"},
            InferenceSpecification={
                "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/models/{prefix}/model.tar.gz"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            **({"ModelMetrics": {"ModelQuality": {"Statistics": metrics}}} if attach_metrics else {}),
            **drift_check,
        )["ModelPackageArn"]

    def describe(self, arn: str) -> dict[str, Any]:
        return self.sagemaker.describe_model_package(ModelPackageName=arn)

    def status(self, arn: str) -> str:
        return self.describe(arn).get("ModelApprovalStatus", "PendingManualApproval")

    def set_status(self, arn: str, status: str) -> None:
        self.sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus=status)


@functools.cache
def shared_session() -> boto3.Session:
    return boto3.Session()


@functools.cache
def _shared_client(service_name: str, region_name: str | None) -> Any:
    return shared_session().client(service_name, region_name=region_name)


def shared_client(service_name: str, *args: Any, **kwargs: Any) -> Any:
    """boto3.client, one client per service for every fake registry: the commands under test make two or three each
    (about 15 ms apiece), and moto answers a client whenever it was made. Other arguments get a client of their own."""
    if args or set(kwargs) - {"region_name"}:
        return shared_session().client(service_name, *args, **kwargs)
    return _shared_client(service_name, kwargs.get("region_name"))


@contextmanager
def fake_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRegistry]:
    """moto with the artifacts bucket and an empty model package group per stage, for clients made anywhere."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for variable in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_REGION"):
        monkeypatch.delenv(variable, raising=False)
    with mock_aws():
        # moto drops boto3's default session on start; a shared one keeps the loaded service models (seconds).
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", shared_session())
        monkeypatch.setattr(boto3, "client", shared_client)
        sagemaker = boto3.client("sagemaker", region_name=REGION)
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        for group in GROUPS.values():
            sagemaker.create_model_package_group(ModelPackageGroupName=group)
        yield FakeRegistry(sagemaker, s3)


def archive_without_model_json() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        data = b"weights"
        info = tarfile.TarInfo("weights.npz")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
