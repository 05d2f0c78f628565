"""The local runs' own state: records of runs killed outright are settled, old runs are pruned (what the registry
still refers to kept), and a record that cannot be read is named with what to do."""

from __future__ import annotations

import fcntl
import json
import os

import boto3
import pytest
from moto import mock_aws

from infra.naming import BucketPurpose
from pipelines.local.aws import EmbeddedAwsError
from pipelines.local.layout import LocalLayout
from pipelines.local.runner import (
    KEEP_RUNS,
    RUN_LOCK,
    LocalPipelineRun,
    LocalStage,
    prune_runs,
    read_run_record,
    settle_abandoned_runs,
)
from tests.pipelines.local.test_runner import Recorder, condition_definition

REGION = "us-east-1"


@pytest.fixture(autouse=True)
def region(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


def write_record(layout: LocalLayout, execution_id: str, started: int, **fields) -> None:
    run_dir = layout.run_dir(execution_id)
    run_dir.mkdir(parents=True)
    record = {
        "execution_id": execution_id,
        "execution_arn": f"arn:aws:sagemaker:{REGION}:123456789012:pipeline/p/execution/{execution_id}",
        "status": "Succeeded",
        "started": f"2026-01-01T00:00:{started:02d}.000+00:00",
        **fields,
    }
    (run_dir / "run.json").write_text(json.dumps(record))


def test_a_run_whose_command_is_gone_is_settled_as_failed_in_its_step(tmp_path):
    layout = LocalLayout(tmp_path)
    write_record(layout, "killed", 1, status="Executing", current_step="Tune", pid=4321)
    write_record(layout, "stopped", 2, status="Stopped", stopped_in="Evaluate")
    assert settle_abandoned_runs(layout) == ["killed"]
    record = read_run_record(layout.run_dir("killed") / "run.json")
    assert record["status"] == "Failed"
    assert record["failure"]["step"] == "Tune"
    assert (
        "process 4321" in record["failure"]["reason"] and "without recording an outcome" in record["failure"]["reason"]
    )
    assert record["ended"]
    assert read_run_record(layout.run_dir("stopped") / "run.json")["status"] == "Stopped"
    assert settle_abandoned_runs(layout) == []


def test_a_run_whose_command_still_holds_its_lock_is_left_executing(tmp_path):
    layout = LocalLayout(tmp_path)
    write_record(layout, "running", 1, status="Executing", current_step="Tune", pid=os.getpid())
    with (layout.run_dir("running") / RUN_LOCK).open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert settle_abandoned_runs(layout) == []
    assert read_run_record(layout.run_dir("running") / "run.json")["status"] == "Executing"


@pytest.mark.parametrize(
    ("content", "problem"),
    [("{", "JSONDecodeError"), ("[1, 2]", "it is not a run record"), ('{"execution_id": 5}', "not a run record")],
    ids=["truncated", "a-list", "wrong-types"],
)
def test_a_record_that_cannot_be_read_is_named_with_what_to_do(tmp_path, content, problem):
    layout = LocalLayout(tmp_path)
    broken = layout.run_dir("broken")
    broken.mkdir(parents=True)
    (broken / "run.json").write_text(content)
    with pytest.raises(EmbeddedAwsError) as raised:
        settle_abandoned_runs(layout)
    message = str(raised.value)
    assert message.startswith(f"cannot read the local run record {broken / 'run.json'} (")
    assert problem in message
    assert message.endswith(f"delete {broken} (that run's record, jobs and logs) to go on")
    assert "\n" not in message


def put(s3, uri: str, body: bytes = b"x") -> None:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    s3.put_object(Bucket=bucket, Key=key, Body=body)


def listed(s3, bucket: str) -> set[str]:
    return {item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}


@mock_aws
def test_pruning_deletes_old_runs_but_what_their_registered_versions_refer_to(stage_configs, tmp_path):
    layout = LocalLayout(tmp_path)
    stage = LocalStage(stage_configs["dev"], REGION)
    s3, sagemaker = boto3.client("s3"), boto3.client("sagemaker")
    data, artifacts = stage.bucket(BucketPurpose.DATA), stage.bucket(BucketPurpose.ARTIFACTS)
    for bucket in (data, artifacts):
        s3.create_bucket(Bucket=bucket)
    for number in range(1, 5):
        run = f"run{number}"
        outputs = [f"s3://{artifacts}/pipeline-runs/p/{run}/evaluation/", f"s3://{artifacts}/models/p/{run}-001/"]
        for prefix in outputs:
            put(s3, prefix + "evaluation.json")
            put(s3, prefix + "output/model.tar.gz")
        put(s3, stage.run_data_uri(run) + "digits.csv")
        write_record(layout, run, number, outputs=outputs, input_data_uri=stage.run_data_uri(run))
    sagemaker.create_model_package_group(ModelPackageGroupName="g")
    registered = sagemaker.create_model_package(
        ModelPackageGroupName="g",
        ModelApprovalStatus="Approved",
        InferenceSpecification={
            "Containers": [
                {"Image": "local/serving", "ModelDataUrl": f"s3://{artifacts}/models/p/run1-001/output/model.tar.gz"}
            ],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
        ModelMetrics={
            "ModelQuality": {
                "Statistics": {
                    "ContentType": "application/json",
                    "S3Uri": f"s3://{artifacts}/pipeline-runs/p/run1/evaluation/evaluation.json",
                }
            }
        },
    )["ModelPackageArn"]
    update = read_run_record(layout.run_dir("run1") / "run.json") | {"model_package_arn": registered}
    (layout.run_dir("run1") / "run.json").write_text(json.dumps(update))
    gone_version = registered.rsplit("/", 1)[0] + "/99"
    update = read_run_record(layout.run_dir("run2") / "run.json") | {"model_package_arn": gone_version}
    (layout.run_dir("run2") / "run.json").write_text(json.dumps(update))
    write_record(layout, "running", 0, status="Executing")  # the oldest, but its command still runs
    write_record(layout, "named-data", 0, parameters={"InputDataUri": f"s3://{data}/raw/mine/"})
    put(s3, f"s3://{data}/raw/mine/own.csv")

    with (layout.run_dir("running") / RUN_LOCK).open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert prune_runs(layout, s3, sagemaker, keep=2) == ["run2", "run1", "named-data"]

    assert sorted(path.name for path in layout.runs_dir.iterdir()) == ["run3", "run4", "running"]
    assert listed(s3, artifacts) == {
        "models/p/run1-001/output/model.tar.gz",  # version run1 registered: its model and its report stay
        "pipeline-runs/p/run1/evaluation/evaluation.json",
        *(
            f"pipeline-runs/p/run{n}/evaluation/{name}"
            for n in (3, 4)
            for name in ("evaluation.json", "output/model.tar.gz")
        ),
        *(f"models/p/run{n}-001/{name}" for n in (3, 4) for name in ("evaluation.json", "output/model.tar.gz")),
    }
    assert listed(s3, data) == {"raw/run3/digits.csv", "raw/run4/digits.csv", "raw/mine/own.csv"}


@mock_aws
def test_a_run_settles_and_prunes_earlier_runs_before_it_starts(stage_configs, tmp_path):
    layout = LocalLayout(tmp_path)
    for number in range(KEEP_RUNS + 1):
        write_record(layout, f"old{number:02d}", number + 1)
    write_record(layout, "killed", KEEP_RUNS + 2, status="Executing", current_step="Preprocess")
    boto3.client("sagemaker").create_model_package_group(ModelPackageGroupName="mlopskit-dev-models")
    stage = LocalStage(stage_configs["dev"], REGION)
    result = LocalPipelineRun(stage, condition_definition(0.5), {}, layout, Recorder()).run()
    remaining = sorted(path.name for path in layout.runs_dir.iterdir())
    assert len(remaining) == KEEP_RUNS + 1 and "old00" not in remaining and "old01" not in remaining
    assert {"killed", result.execution_id} <= set(remaining)
    assert read_run_record(layout.run_dir("killed") / "run.json")["status"] == "Failed"


@mock_aws
def test_a_run_does_not_start_over_a_record_it_cannot_read(stage_configs, tmp_path):
    layout = LocalLayout(tmp_path)
    layout.run_dir("broken").mkdir(parents=True)
    (layout.run_dir("broken") / "run.json").write_text("{")
    stage = LocalStage(stage_configs["dev"], REGION)
    run = LocalPipelineRun(stage, condition_definition(0.5), {}, layout, Recorder())
    with pytest.raises(EmbeddedAwsError, match="cannot read the local run record"):
        run.run()
    assert not run.result.run_dir.exists()
