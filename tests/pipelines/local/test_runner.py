"""The local runner executes the deployed definition itself: same steps, order, parameters and expressions."""

from __future__ import annotations

import copy
import json
import os

import boto3
import pytest
from moto import mock_aws

from infra.config import STAGE_NAMES
from infra.naming import BucketPurpose
from pipelines import spec
from pipelines.local.aws import EmbeddedAwsError
from pipelines.local.expressions import DefinitionError
from pipelines.local.layout import LOCAL_DIR_VARIABLE, LocalLayout
from pipelines.local.runner import (
    LocalPipelineRun,
    LocalStage,
    RunObserver,
    StepFailed,
    check_supported,
    expected_step_order,
    parameter_values,
    read_run_record,
    sample_files,
    settle_abandoned_runs,
)
from pipelines.registry import split_s3_uri


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_every_deployed_definition_is_runnable_locally(definitions, stage):
    check_supported(definitions[stage])  # raises on any step type, condition or reference it cannot run


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_the_runner_takes_the_spec_step_order_from_the_definition(definitions, stage):
    assert expected_step_order(definitions[stage]) == [*spec.STEP_ORDER[:-1], spec.REGISTER_MODEL_STEP]


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_the_runner_uses_the_spec_parameters_and_stage_defaults(definitions, stage_configs, stage):
    values = parameter_values(definitions[stage], {})
    specs = spec.parameter_specs(stage_configs[stage], "${DataBucket}", "${ServingImage}")
    assert values == {parameter.name: parameter.default for parameter in specs}
    overridden = parameter_values(definitions[stage], {"TuningMaxJobs": "2", "AccuracyThreshold": "0.5"})
    assert (overridden["TuningMaxJobs"], overridden["AccuracyThreshold"]) == (2, 0.5)


def test_unknown_parameters_and_step_types_are_refused_before_running(definitions):
    with pytest.raises(DefinitionError, match="unknown pipeline parameters \\['Epochs'\\]"):
        parameter_values(definitions["dev"], {"Epochs": 3})
    training = copy.deepcopy(definitions["dev"])
    training["Steps"][1]["Type"] = "Training"
    with pytest.raises(DefinitionError, match="does not run Training steps"):
        check_supported(training)
    forward = copy.deepcopy(definitions["dev"])
    forward["Steps"].reverse()  # Evaluate and Tune would read Preprocess before it ran
    with pytest.raises(DefinitionError, match="cannot resolve 'Steps."):
        check_supported(forward)
    backward_branch = copy.deepcopy(definitions["dev"])
    condition = next(step for step in backward_branch["Steps"] if step["Type"] == "Condition")
    condition["Arguments"]["IfSteps"].reverse()  # registration would read the baseline before Baseline ran
    with pytest.raises(DefinitionError, match=f'step {spec.REGISTER_MODEL_STEP}: cannot resolve "Steps.Baseline'):
        check_supported(backward_branch)


class Recorder(RunObserver):
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def step_started(self, name: str, step_type: str) -> None:
        self.events.append(("started", name))

    def step_finished(self, name: str, seconds: float, detail: str) -> None:
        self.events.append(("finished", name))


def condition_definition(threshold_default: float) -> dict:
    """A condition on a parameter, with the pipeline's own Fail and RegisterModel branches."""
    return {
        "Parameters": [
            {"Name": "AccuracyThreshold", "Type": "Float", "DefaultValue": threshold_default},
            {"Name": "ModelApprovalStatus", "Type": "String", "DefaultValue": "PendingManualApproval"},
        ],
        "Steps": [
            {
                "Name": "CheckAccuracy",
                "Type": "Condition",
                "Arguments": {
                    "Conditions": [
                        {
                            "Type": "GreaterThanOrEqualTo",
                            "LeftValue": 0.8,
                            "RightValue": {"Get": "Parameters.AccuracyThreshold"},
                        }
                    ],
                    "IfSteps": [
                        {
                            "Name": "Register-RegisterModel",
                            "Type": "RegisterModel",
                            "Arguments": {
                                "ModelPackageGroupName": "mlopskit-dev-models",
                                "ModelApprovalStatus": {"Get": "Parameters.ModelApprovalStatus"},
                                "InferenceSpecification": {
                                    "Containers": [{"Image": "local/serving", "ModelDataUrl": "s3://b/model.tar.gz"}],
                                    "SupportedContentTypes": ["text/csv"],
                                    "SupportedResponseMIMETypes": ["text/csv"],
                                },
                            },
                        }
                    ],
                    "ElseSteps": [
                        {
                            "Name": "AccuracyBelowThreshold",
                            "Type": "Fail",
                            "Arguments": {
                                "ErrorMessage": {
                                    "Std:Join": {
                                        "On": " ",
                                        "Values": ["accuracy 0.8 is below", {"Get": "Parameters.AccuracyThreshold"}],
                                    }
                                }
                            },
                        }
                    ],
                },
            }
        ],
    }


@pytest.fixture(autouse=True)
def region(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@mock_aws
def test_a_condition_that_fails_runs_the_fail_step_and_records_its_message(stage_configs, tmp_path):
    recorder = Recorder()
    stage = LocalStage(stage_configs["dev"], "us-east-1")
    result = LocalPipelineRun(stage, condition_definition(0.9), {}, LocalLayout(tmp_path), recorder).run()
    assert isinstance(result.failure, StepFailed)
    assert (result.failure.step, result.failure.reason) == ("AccuracyBelowThreshold", "accuracy 0.8 is below 0.9")
    assert recorder.events == [
        ("started", "CheckAccuracy"),
        ("finished", "CheckAccuracy"),
        ("started", "AccuracyBelowThreshold"),
    ]
    record = json.loads((result.run_dir / "run.json").read_text())
    assert record["status"] == "Failed"
    assert record["failure"] == {"step": "AccuracyBelowThreshold", "reason": "accuracy 0.8 is below 0.9"}
    assert record["model_package_arn"] is None


@mock_aws
def test_a_condition_that_holds_registers_with_the_execution_as_lineage(stage_configs, tmp_path):
    sagemaker = boto3.client("sagemaker", region_name="us-east-1")
    sagemaker.create_model_package_group(ModelPackageGroupName="mlopskit-dev-models")
    stage = LocalStage(stage_configs["dev"], "us-east-1")
    run = LocalPipelineRun(
        stage, condition_definition(0.9), {"AccuracyThreshold": 0.5}, LocalLayout(tmp_path), Recorder()
    )
    result = run.run()
    assert result.failure is None
    package = sagemaker.describe_model_package(ModelPackageName=result.model_package_arn)
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    assert package["MetadataProperties"]["GeneratedBy"] == result.execution_arn
    assert result.execution_arn.endswith(f"pipeline/mlopskit-dev-training/execution/{result.execution_id}")


class Interrupting(Recorder):
    """Ctrl-C arrives while the first step runs."""

    def step_started(self, name: str, step_type: str) -> None:
        super().step_started(name, step_type)
        raise KeyboardInterrupt


@mock_aws
def test_a_stopped_run_is_recorded_as_stopped_in_its_step_and_the_interrupt_goes_on(stage_configs, tmp_path):
    stage = LocalStage(stage_configs["dev"], "us-east-1")
    run = LocalPipelineRun(stage, condition_definition(0.9), {}, LocalLayout(tmp_path), Interrupting())
    with pytest.raises(KeyboardInterrupt):
        run.run()
    record = json.loads((run.result.run_dir / "run.json").read_text())
    assert (record["status"], record["stopped_in"], record["failure"]) == ("Stopped", "CheckAccuracy", None)


@mock_aws
def test_an_unexpected_error_in_a_step_fails_that_step_by_name(stage_configs, tmp_path):
    definition = condition_definition(0.9)
    definition["Steps"][0]["Arguments"]["Conditions"][0]["LeftValue"] = "high"  # a string compared with a float
    stage = LocalStage(stage_configs["dev"], "us-east-1")
    result = LocalPipelineRun(stage, definition, {}, LocalLayout(tmp_path), Recorder()).run()
    assert result.failure.step == "CheckAccuracy"
    assert result.failure.reason.startswith("TypeError: '>=' not supported")
    assert json.loads((result.run_dir / "run.json").read_text())["status"] == "Failed"


def test_boolean_parameters_read_their_text_as_the_service_does():
    definition = {"Parameters": [{"Name": "Flag", "Type": "Boolean", "DefaultValue": "false"}], "Steps": []}
    assert parameter_values(definition, {}) == {"Flag": False}
    assert parameter_values(definition, {"Flag": "True"}) == {"Flag": True}
    assert parameter_values(definition, {"Flag": False}) == {"Flag": False}


def data_definition(stage: LocalStage) -> dict:
    """The condition definition with the pipeline's InputDataUri parameter, its default the whole raw/ prefix."""
    definition = condition_definition(0.5)
    default = f"s3://{stage.bucket(BucketPurpose.DATA)}/raw/"
    definition["Parameters"].append({"Name": "InputDataUri", "Type": "String", "DefaultValue": default})
    return definition


def objects_under(s3, uri: str) -> dict[str, bytes]:
    bucket, prefix = split_s3_uri(uri)
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    return {key[len(prefix) :]: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}


@mock_aws
def test_each_run_uploads_its_data_to_its_own_prefix_which_its_input_data_uri_names(stage_configs, tmp_path):
    """Two runs against one embedded AWS (`mlops local aws`) never train on each other's data."""
    stage = LocalStage(stage_configs["dev"], "us-east-1")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=stage.bucket(BucketPurpose.DATA))
    boto3.client("sagemaker").create_model_package_group(ModelPackageGroupName="mlopskit-dev-models")
    layout = LocalLayout(tmp_path / "local")
    runs = []
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        (tmp_path / name / f"{name}.csv").write_text(f"{name},label\n1,0\n")
        data = [tmp_path / name / f"{name}.csv"]
        runs.append(LocalPipelineRun(stage, data_definition(stage), {}, layout, Recorder(), data=data).run())
    first, second = runs
    for result in runs:
        assert result.parameters["InputDataUri"] == stage.run_data_uri(result.execution_id) == result.input_data_uri
        assert json.loads(result.record_file.read_text())["input_data_uri"] == result.input_data_uri
    assert objects_under(s3, second.input_data_uri) == {"second.csv": b"second,label\n1,0\n"}
    assert objects_under(s3, first.input_data_uri) == {"first.csv": b"first,label\n1,0\n"}  # untouched by the second


@mock_aws
def test_a_run_whose_input_data_uri_names_its_data_uploads_nothing_and_keeps_it(stage_configs, tmp_path):
    stage = LocalStage(stage_configs["dev"], "us-east-1")
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=stage.bucket(BucketPurpose.DATA))
    boto3.client("sagemaker").create_model_package_group(ModelPackageGroupName="mlopskit-dev-models")
    named = {"InputDataUri": "s3://my-bucket/my-data/"}
    result = LocalPipelineRun(stage, data_definition(stage), named, LocalLayout(tmp_path), Recorder()).run()
    assert (result.parameters["InputDataUri"], result.input_data_uri) == ("s3://my-bucket/my-data/", None)
    assert "Contents" not in s3.list_objects_v2(Bucket=stage.bucket(BucketPurpose.DATA))


@mock_aws
def test_a_run_is_recorded_as_executing_in_its_step_while_it_runs(stage_configs, tmp_path):
    seen: list[dict] = []

    class Reading(Recorder):
        def step_started(self, name: str, step_type: str) -> None:
            (record,) = LocalLayout(tmp_path).runs_dir.glob("*/run.json")
            seen.append(read_run_record(record))
            assert settle_abandoned_runs(LocalLayout(tmp_path)) == []  # its command holds the run's lock

    boto3.client("sagemaker").create_model_package_group(ModelPackageGroupName="mlopskit-dev-models")
    stage = LocalStage(stage_configs["dev"], "us-east-1")
    result = LocalPipelineRun(stage, condition_definition(0.5), {}, LocalLayout(tmp_path), Reading()).run()
    assert [(record["status"], record["current_step"], record["pid"]) for record in seen] == [
        ("Executing", "CheckAccuracy", os.getpid()),
        ("Executing", "Register-RegisterModel", os.getpid()),
    ]
    record = read_run_record(result.record_file)
    assert record["status"] == "Succeeded" and record["ended"] >= record["started"]


@mock_aws
def test_a_run_that_fails_before_its_first_step_is_recorded_as_failed_there(stage_configs, tmp_path):
    stage = LocalStage(stage_configs["dev"], "us-east-1")
    boto3.client("s3").create_bucket(Bucket=stage.bucket(BucketPurpose.DATA))
    vanished = [tmp_path / "deleted-after-listing.csv"]
    run = LocalPipelineRun(stage, data_definition(stage), {}, LocalLayout(tmp_path), Recorder(), data=vanished)
    with pytest.raises(FileNotFoundError):
        run.run()
    record = read_run_record(run.result.record_file)
    assert (record["status"], record["failure"]["step"]) == ("Failed", "(before the first step)")
    assert record["failure"]["reason"].startswith("FileNotFoundError")


def test_the_sample_is_written_in_the_local_directory_not_in_a_temporary_one(tmp_path, monkeypatch):
    monkeypatch.setenv(LOCAL_DIR_VARIABLE, str(tmp_path))
    (sample,) = sample_files(120)
    samples = LocalLayout(tmp_path).samples_dir
    assert sample == samples / "digits-120.csv"
    assert len(sample.read_text().splitlines()) == 1 + 120 + 40  # header, distinct rows, duplicates
    assert [path.name for path in samples.iterdir()] == ["digits-120.csv"]  # nothing half-written left


def test_a_local_directory_that_cannot_hold_the_sample_is_named(tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv(LOCAL_DIR_VARIABLE, str(tmp_path / "a-file"))
    with pytest.raises(EmbeddedAwsError, match=f"^cannot write the sample data to {tmp_path}/a-file/samples: "):
        sample_files(120)
