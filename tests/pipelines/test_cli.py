"""`mlops pipeline ...` against moto: start with parameters, status, definition, and one-line errors."""

from __future__ import annotations

import json
import time

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from pipelines.cli import app

REGION = "eu-west-1"


@pytest.fixture
def sagemaker(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("sagemaker", region_name=REGION)
        client.create_pipeline(
            PipelineName="mlopskit-dev-training",
            PipelineDefinition=json.dumps({"Version": "2020-12-01", "Steps": []}),
            RoleArn="arn:aws:iam::123456789012:role/pipeline",
        )
        yield client


def mlops(*arguments: str):
    return CliRunner().invoke(app, list(arguments))


def test_start_passes_typed_parameters_and_prints_the_execution(sagemaker):
    result = mlops("pipeline", "start", "--stage", "dev", "--param", "TuningMaxJobs=2", "-p", "AccuracyThreshold=0.95")
    assert result.exit_code == 0, result.output
    arn = result.output.strip()
    assert ":pipeline/mlopskit-dev-training/execution/" in arn
    parameters = sagemaker.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"]
    assert {p["Name"]: p["Value"] for p in parameters} == {"TuningMaxJobs": "2", "AccuracyThreshold": "0.95"}
    (summary,) = sagemaker.list_pipeline_executions(PipelineName="mlopskit-dev-training")["PipelineExecutionSummaries"]
    assert summary["PipelineExecutionArn"] == arn


@pytest.mark.parametrize(
    ("parameter", "message"),
    [
        ("Foo=1", "error: unknown pipeline parameter 'Foo'; known: InputDataUri, "),
        ("TuningMaxJobs=two", "error: parameter TuningMaxJobs: 'two' is not an integer"),
        ("AccuracyThreshold=high", "error: parameter AccuracyThreshold: 'high' is not a number"),
        ("TrainingInstanceType=ml.m5.xlarge", "error: parameter TrainingInstanceType: 'ml.m5.xlarge' is not allowed"),
        ("ModelApprovalStatus=Maybe", "error: parameter ModelApprovalStatus: 'Maybe' is not allowed; allowed:"),
        ("MaxWaitSeconds=60", "error: MaxWaitSeconds (60) must be >= MaxRuntimeSeconds (3600) for spot training"),
        ("TuningMaxJobs", "error: --param 'TuningMaxJobs': expected NAME=VALUE"),
        ("AccuracyThreshold=95", "error: parameter AccuracyThreshold: '95' is outside [0.0, 1.0]"),
        ("AccuracyThreshold=nan", "error: parameter AccuracyThreshold: 'nan' is outside [0.0, 1.0]"),
        ("TrainingInstanceCount=0", "error: parameter TrainingInstanceCount: '0' is outside [1, 16]"),
        ("InputDataUri=/data", "error: parameter InputDataUri: '/data' must start with s3://"),
        ("TuningMaxParallelJobs=9", "error: TuningMaxJobs (4) must be >= TuningMaxParallelJobs (9) in one tuning job"),
    ],
)
def test_start_refuses_bad_parameters_in_one_line_and_starts_nothing(sagemaker, parameter, message):
    result = mlops("pipeline", "start", "--stage", "dev", "--param", parameter)
    assert result.exit_code == 1
    assert result.output.startswith(message)
    assert result.output.count("\n") == 1
    assert sagemaker.list_pipeline_executions(PipelineName="mlopskit-dev-training")["PipelineExecutionSummaries"] == []


def test_start_refuses_an_unknown_stage(sagemaker):
    result = mlops("pipeline", "start", "--stage", "qa")
    assert result.exit_code == 1
    assert "unknown stage 'qa'; allowed: dev, staging, prod" in result.output


def test_start_of_a_pipeline_that_is_not_deployed_fails_in_one_line(sagemaker):
    result = mlops("pipeline", "start", "--stage", "prod")
    assert result.exit_code == 1
    assert result.output.startswith("error: ")


def test_status_of_an_execution_and_of_the_stage_latest(sagemaker):
    first = mlops("pipeline", "start", "-s", "dev").output.strip()
    time.sleep(1.1)  # start times have a resolution of one second
    latest = mlops("pipeline", "start", "-s", "dev").output.strip()
    by_arn = mlops("pipeline", "status", first, "--json")
    assert by_arn.exit_code == 0, by_arn.output
    assert json.loads(by_arn.output)["execution"] == first
    by_stage = json.loads(mlops("pipeline", "status", "--stage", "dev", "--json").output)
    assert by_stage["execution"] == latest
    status = sagemaker.describe_pipeline_execution(PipelineExecutionArn=latest)["PipelineExecutionStatus"]
    assert f"status: {status}" in mlops("pipeline", "status", latest).output


def test_status_without_executions_or_target_says_what_to_do(sagemaker):
    assert mlops("pipeline", "status", "-s", "dev").output.startswith(
        "error: pipeline mlopskit-dev-training has no executions yet; start one with: mlops pipeline start -s dev"
    )
    assert mlops("pipeline", "status").output.startswith("error: give an EXECUTION_ARN or --stage")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["pipeline", "start", "--stage", "dev", "--bogus"], "error: No such option: --bogus (see: "),
        (["pipeline", "status", "--json", "extra", "more"], "error: Got unexpected extra argument(s) (more) (see: "),
        (["models", "list", "--stage"], "error: Option '--stage' requires an argument"),
        (["promote"], "error: Missing option '--to' (see: "),
        (["frobnicate"], "error: No such command 'frobnicate' (see: "),
    ],
)
def test_a_command_line_that_cannot_work_is_one_line_and_exit_2(arguments, message):
    result = mlops(*arguments)
    assert result.exit_code == 2
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1, result.stderr
    assert result.stdout == ""


def test_a_bare_group_prints_its_help_and_exits_2():
    result = mlops("pipeline")
    assert result.exit_code == 2
    assert "start" in result.stdout and "status" in result.stdout and result.stderr == ""


def test_definition_prints_the_stage_definition():
    result = mlops("pipeline", "definition", "--stage", "staging")
    assert result.exit_code == 0, result.output
    definition = json.loads(result.output[result.output.index("{") :])
    assert [step["Name"] for step in definition["Steps"]] == ["Preprocess", "Tune", "Evaluate", "CheckAccuracy"]
    defaults = {parameter["Name"]: parameter["DefaultValue"] for parameter in definition["Parameters"]}
    assert defaults["AccuracyThreshold"] == 0.93
