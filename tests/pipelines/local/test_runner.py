"""The local runner executes the deployed definition itself: same steps, order, parameters and expressions."""

from __future__ import annotations

import copy
import json

import boto3
import pytest
from moto import mock_aws

from infra.config import STAGE_NAMES
from pipelines import spec
from pipelines.local.expressions import DefinitionError
from pipelines.local.layout import LocalLayout
from pipelines.local.runner import (
    LocalPipelineRun,
    LocalStage,
    RunObserver,
    StepFailed,
    check_supported,
    expected_step_order,
    parameter_values,
)


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
