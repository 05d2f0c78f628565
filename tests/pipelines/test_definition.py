"""The pipeline definition as deployed: read back from each stage's synthesized template."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from typing import Any

import pytest

from infra.config import GPU_TRAINING_INSTANCE_TYPES, STAGE_NAMES
from infra.instance_types import InstanceUse, accepted_instance_types, supports_volume_kms_key
from pipelines import spec
from pipelines.definition import PipelineTargets, pipeline_definition
from training_code.contract import (
    ACCURACY_JSON_PATH,
    CONSTRAINTS_FILE,
    MODEL_QUALITY_CONSTRAINTS_FILE,
    REQUEST_CONTENT_TYPES,
    STATISTICS_FILE,
)
from training_code.metrics import METRIC_DEFINITIONS, TUNING_OBJECTIVE_METRIC

TARGETS = PipelineTargets(
    region="eu-west-1",
    execution_role_arn="arn:aws:iam::123456789012:role/execution",
    kms_key_arn="arn:aws:kms:eu-west-1:123456789012:key/abc",
    data_bucket="data",
    artifacts_bucket="artifacts",
    code_bundle_uri="s3://assets/0123abcd.gz",
    step_runner_uri="s3://assets/4567efab.py",
    training_image_uri="training-image",
    processing_image_uri="processing-image",
    evaluation_image_uri="evaluation-image",
    serving_image_uri="serving-image",
)


def steps_of(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    steps = {step["Name"]: step for step in definition["Steps"]}
    for step in definition["Steps"]:
        for branch in ("IfSteps", "ElseSteps"):
            steps.update({inner["Name"]: inner for inner in step.get("Arguments", {}).get(branch, [])})
    return steps


def parameters_of(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {parameter["Name"]: parameter for parameter in definition["Parameters"]}


def training_job(definition: dict[str, Any]) -> dict[str, Any]:
    return steps_of(definition)[spec.StepName.TUNE]["Arguments"]["TrainingJobDefinition"]


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_steps_run_in_the_spec_order_with_data_dependencies(definitions, stage):
    definition = definitions[stage]
    assert [step["Name"] for step in definition["Steps"]] == list(spec.STEP_ORDER[:4])
    text = {name: json.dumps(step) for name, step in steps_of(definition).items()}
    assert "Steps.Preprocess.ProcessingOutputConfig.Outputs['train']" in text[spec.StepName.TUNE]
    assert "Steps.Tune.TrainingJobSummaries[0].TrainingJobName" in text[spec.StepName.EVALUATE]
    assert "Steps.Preprocess.ProcessingOutputConfig.Outputs['test']" in text[spec.StepName.EVALUATE]
    assert "Steps.Preprocess.ProcessingOutputConfig.Outputs['train']" in text[spec.StepName.BASELINE]
    assert "Steps.Baseline.ProcessingOutputConfig.Outputs['baseline']" in text[spec.REGISTER_MODEL_STEP]
    check = steps_of(definition)[spec.StepName.CHECK_ACCURACY]["Arguments"]
    assert [step["Name"] for step in check["IfSteps"]] == [spec.StepName.BASELINE, spec.REGISTER_MODEL_STEP]
    assert [step["Name"] for step in check["ElseSteps"]] == [spec.StepName.ACCURACY_TOO_LOW]


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_parameters_default_to_the_stage_config(definitions, stage_configs, stage):
    config = stage_configs[stage]
    parameters = parameters_of(definitions[stage])
    defaults = {name: parameter["DefaultValue"] for name, parameter in parameters.items()}
    assert defaults == {
        "InputDataUri": "s3://${DataBucket}/raw/",
        "LabelColumn": "label",
        "ProcessingInstanceType": config.processing.instance_type,
        "TrainingInstanceType": config.training.instance_type,
        "TrainingInstanceCount": config.training.instance_count,
        "MaxRuntimeSeconds": config.training.max_runtime_seconds,
        "MaxWaitSeconds": config.training.max_wait_seconds,
        "TuningMaxJobs": config.pipeline.tuning_max_jobs,
        "TuningMaxParallelJobs": config.pipeline.tuning_max_parallel_jobs,
        "AccuracyThreshold": config.pipeline.accuracy_threshold,
        "ModelApprovalStatus": "PendingManualApproval",
        "ServingImageUri": "${ServingImage}",
        "TriggeredBy": spec.DEFAULT_TRIGGER,
    }
    assert defaults["MaxWaitSeconds"] >= defaults["MaxRuntimeSeconds"]
    assert set(parameters["TrainingInstanceType"]["EnumValues"]) == GPU_TRAINING_INSTANCE_TYPES
    assert set(parameters["ModelApprovalStatus"]["EnumValues"]) == set(spec.ApprovalStatus)


def test_preprocess_reads_the_label_column_and_names_the_input_from_the_parameters(definitions):
    """One parameter names the label column for the whole run: Preprocess writes it into the encoding that training
    reads and the model carries; errors name the files under InputDataUri, where the user put them."""
    (step,) = [step for step in definitions["dev"]["Steps"] if step["Name"] == "Preprocess"]
    arguments = step["Arguments"]["AppSpecification"]["ContainerArguments"]
    assert arguments[arguments.index("--label-column") + 1] == {"Get": "Parameters.LabelColumn"}
    assert arguments[arguments.index("--input-uri") + 1] == {"Get": "Parameters.InputDataUri"}


def test_an_empty_label_column_parameter_is_refused(stage_configs):
    (label,) = [
        parameter
        for parameter in spec.parameter_specs(stage_configs["dev"], "data", "image")
        if parameter.name == spec.ParameterName.LABEL_COLUMN
    ]
    assert label.parse("species") == "species"
    with pytest.raises(ValueError, match="LabelColumn: must not be empty"):
        label.parse(" ")


def test_threshold_and_tuning_budget_differ_per_stage(definitions):
    thresholds = {
        stage: parameters_of(definitions[stage])["AccuracyThreshold"]["DefaultValue"] for stage in STAGE_NAMES
    }
    assert thresholds["dev"] < thresholds["prod"]


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_every_trial_runs_on_spot_with_checkpoints_and_bounded_time(definitions, stage):
    job = training_job(definitions[stage])
    assert job["EnableManagedSpotTraining"] is True
    assert job["CheckpointConfig"] == {
        "S3Uri": {
            "Std:Join": {
                "On": "/",
                "Values": [
                    f"s3://${{ArtifactsBucket}}/checkpoints/mlopskit-{stage}-training",
                    {"Get": "Execution.PipelineExecutionId"},
                ],
            }
        }
    }
    assert job["StoppingCondition"] == {
        "MaxRuntimeInSeconds": {"Get": "Parameters.MaxRuntimeSeconds"},
        "MaxWaitTimeInSeconds": {"Get": "Parameters.MaxWaitSeconds"},
    }
    assert job["HyperParameterTuningResourceConfig"]["InstanceType"] == {"Get": "Parameters.TrainingInstanceType"}
    assert "VolumeKmsKeyId" not in job["HyperParameterTuningResourceConfig"], "refused for local-NVMe GPU types"
    assert job["OutputDataConfig"]["KmsKeyId"] == "${KmsKeyArn}"
    assert job["EnableInterContainerTrafficEncryption"] is True
    static = job["StaticHyperParameters"]
    assert static["sagemaker_torch_distributed_enabled"] == "true"
    assert static["sagemaker_program"] == '"train.py"'
    assert static["sagemaker_region"] == '"${AWS::Region}"'
    assert static["sagemaker_job_name"] == f'"mlopskit-{stage}-training"'


def test_without_spot_there_is_no_max_wait(stage_configs):
    config = stage_configs["dev"].model_copy(
        update={"training": stage_configs["dev"].training.model_copy(update={"use_spot": False})}
    )
    definition = pipeline_definition(config, TARGETS)
    job = training_job(definition)
    assert job.get("EnableManagedSpotTraining", False) is False
    assert "MaxWaitTimeInSeconds" not in job["StoppingCondition"]
    assert "MaxWaitSeconds" not in parameters_of(definition)


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_tuning_searches_the_spec_space_for_the_shared_objective(definitions, stage):
    tuning = steps_of(definitions[stage])[spec.StepName.TUNE]["Arguments"]["HyperParameterTuningJobConfig"]
    assert tuning["Strategy"] == "Bayesian"
    assert tuning["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": TUNING_OBJECTIVE_METRIC}
    assert tuning["TrainingJobEarlyStoppingType"] == "Auto"
    assert tuning["ResourceLimits"] == {
        "MaxNumberOfTrainingJobs": {"Get": "Parameters.TuningMaxJobs"},
        "MaxParallelTrainingJobs": {"Get": "Parameters.TuningMaxParallelJobs"},
    }
    ranges = tuning["ParameterRanges"]
    (learning_rate,) = ranges["ContinuousParameterRanges"][:1]
    assert learning_rate == {
        "Name": "learning-rate",
        "MinValue": "0.0001",
        "MaxValue": "0.01",
        "ScalingType": "Logarithmic",
    }
    names = {r["Name"] for kind in ("ContinuousParameterRanges", "CategoricalParameterRanges") for r in ranges[kind]}
    assert names == {dimension.hyperparameter for dimension in spec.SEARCH_SPACE}
    assert training_job(definitions[stage])["AlgorithmSpecification"]["MetricDefinitions"] == METRIC_DEFINITIONS


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_the_baseline_step_reads_the_training_split_with_the_label_column_and_the_stage_threshold(
    definitions, stage_configs, stage
):
    arguments = steps_of(definitions[stage])[spec.StepName.BASELINE]["Arguments"]
    container_arguments = arguments["AppSpecification"]["ContainerArguments"]
    options = dict(zip(container_arguments[3::2], container_arguments[4::2], strict=True))
    assert options == {
        "--train-dir": str(spec.TRAIN_INPUT_DIR),
        "--output-dir": str(spec.BASELINE_OUTPUT_DIR),
        "--label-column": {"Get": "Parameters.LabelColumn"},
        "--drift-threshold": str(stage_configs[stage].pipeline.drift_threshold),
        "--accuracy-threshold": {"Std:Join": {"On": "", "Values": [{"Get": "Parameters.AccuracyThreshold"}]}},
    }
    (output,) = arguments["ProcessingOutputConfig"]["Outputs"]
    assert output["S3Output"]["LocalPath"] == str(spec.BASELINE_OUTPUT_DIR)


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_register_only_when_accuracy_reaches_the_threshold(definitions, stage):
    steps = steps_of(definitions[stage])
    (condition,) = steps[spec.StepName.CHECK_ACCURACY]["Arguments"]["Conditions"]
    assert condition["Type"] == "GreaterThanOrEqualTo"
    assert condition["LeftValue"]["Std:JsonGet"]["Path"] == ACCURACY_JSON_PATH
    assert condition["LeftValue"]["Std:JsonGet"]["PropertyFile"] == {
        "Get": f"Steps.Evaluate.PropertyFiles.{spec.EVALUATION_PROPERTY_FILE}"
    }
    assert condition["RightValue"] == {"Get": "Parameters.AccuracyThreshold"}
    failure = json.dumps(steps[spec.StepName.ACCURACY_TOO_LOW]["Arguments"]["ErrorMessage"])
    assert ACCURACY_JSON_PATH in failure, "the failure message carries the measured accuracy"


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_register_step_targets_the_stage_group_with_metrics_and_approval_parameter(definitions, stage):
    register = steps_of(definitions[stage])[spec.REGISTER_MODEL_STEP]["Arguments"]
    assert register["ModelPackageGroupName"] == f"mlopskit-{stage}-models"
    assert register["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    statistics = register["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert statistics["ContentType"] == "application/json"
    assert statistics["S3Uri"]["Std:Join"]["Values"] == [
        {"Get": "Steps.Evaluate.ProcessingOutputConfig.Outputs['evaluation'].S3Output.S3Uri"},
        "evaluation.json",
    ]
    baseline = {"Get": "Steps.Baseline.ProcessingOutputConfig.Outputs['baseline'].S3Output.S3Uri"}
    for section in ("ModelMetrics", "DriftCheckBaselines"):
        registered = register[section]["ModelDataQuality"]
        assert registered["Statistics"]["S3Uri"]["Std:Join"]["Values"] == [baseline, STATISTICS_FILE]
        assert registered["Constraints"]["S3Uri"]["Std:Join"]["Values"] == [baseline, CONSTRAINTS_FILE]
        assert registered["Statistics"]["ContentType"] == registered["Constraints"]["ContentType"] == "application/json"
        model_quality = register[section]["ModelQuality"]
        assert model_quality["Constraints"]["S3Uri"]["Std:Join"]["Values"] == [baseline, MODEL_QUALITY_CONSTRAINTS_FILE]
    assert register["DriftCheckBaselines"]["ModelQuality"]["Statistics"] == statistics
    inference = register["InferenceSpecification"]
    assert inference["SupportedContentTypes"] == list(REQUEST_CONTENT_TYPES)
    assert inference["Containers"][0]["Image"] == {"Get": "Parameters.ServingImageUri"}


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_versions_are_registered_for_the_stage_registration_instance_types(definitions, stage_configs, stage):
    inference = steps_of(definitions[stage])[spec.REGISTER_MODEL_STEP]["Arguments"]["InferenceSpecification"]
    settings = stage_configs[stage].pipeline
    assert inference["SupportedRealtimeInferenceInstanceTypes"] == list(settings.registration_instance_types)
    transform = list(settings.registration_transform_instance_types)
    assert inference.get("SupportedTransformInstanceTypes", []) == transform


def with_endpoints(config, **modes):
    """The config with these inference modes' settings updated, e.g. realtime={"instance_type": ...}."""
    inference = config.inference
    updated = {name: getattr(inference, name).model_copy(update=values) for name, values in modes.items()}
    return config.model_copy(update={"inference": inference.model_copy(update=updated)})


def test_changing_an_endpoint_leaves_the_pipeline_definition_unchanged(stage_configs):
    """What versions are registered for is a setting of its own: serving changes without a new training pipeline."""
    config = stage_configs["prod"]
    changed = with_endpoints(
        config,
        realtime={"instance_type": "ml.g4dn.xlarge"},
        asynchronous={"enabled": False},
        batch_transform={"instance_type": "ml.c5.2xlarge", "enabled": False},
    )
    assert pipeline_definition(changed, TARGETS) == pipeline_definition(config, TARGETS)


def test_registration_instance_types_are_checked_against_the_apis_that_take_them(cdk_context):
    from infra.config import StageConfigError, load_stage_configs

    context = {
        **cdk_context,
        "stage": "dev",
        "dev.pipeline.registration_instance_types": "ml.m5.large,ml.g4dn.xlarge",
        "dev.pipeline.registration_transform_instance_types": "ml.m5.xlarge",
    }
    (dev,) = load_stage_configs(context)
    assert dev.pipeline.registration_instance_types == ("ml.m5.large", "ml.g4dn.xlarge")
    assert dev.pipeline.registration_transform_instance_types == ("ml.m5.xlarge",)
    with pytest.raises(StageConfigError, match=r"registration_transform_instance_types\.0 = 'ml\.m5\.lrge': not a "):
        load_stage_configs({**context, "dev.pipeline.registration_transform_instance_types": "ml.m5.lrge"})


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_processing_steps_run_the_bundle_through_the_step_runner_encrypted(definitions, stage_configs, stage):
    steps = steps_of(definitions[stage])
    for name, module in (
        (spec.StepName.PREPROCESS, spec.PREPROCESS_MODULE),
        (spec.StepName.EVALUATE, spec.EVALUATE_MODULE),
        (spec.StepName.BASELINE, spec.BASELINE_MODULE),
    ):
        arguments = steps[name]["Arguments"]
        assert arguments["AppSpecification"]["ContainerArguments"][:3] == ["--bundle-dir", str(spec.BUNDLE_DIR), module]
        assert arguments["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == "${KmsKeyArn}"
        assert arguments["ProcessingOutputConfig"]["KmsKeyId"] == "${KmsKeyArn}"
        network = arguments["NetworkConfig"]
        assert network["EnableInterContainerTrafficEncryption"] is True
        assert network["EnableNetworkIsolation"] is stage_configs[stage].pipeline.network_isolation
        assert arguments["RoleArn"] == "${ExecutionRoleArn}"


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_job_steps_retry_capacity_and_throttling_and_cache_as_configured(definitions, stage_configs, stage):
    steps = steps_of(definitions[stage])
    for name in (spec.StepName.PREPROCESS, spec.StepName.TUNE, spec.StepName.EVALUATE):
        retried = {kind for policy in steps[name]["RetryPolicies"] for kind in policy["ExceptionType"]}
        assert {"SageMaker.CAPACITY_ERROR", "Step.THROTTLING"} <= retried
        assert steps[name]["CacheConfig"]["Enabled"] is stage_configs[stage].pipeline.enable_step_caching


def test_warm_start_adds_the_model_channel_bound_to_the_parameter(stage_configs):
    plain = pipeline_definition(stage_configs["dev"], TARGETS)
    assert "PreviousModelUri" not in parameters_of(plain)
    assert "model" not in {channel["ChannelName"] for channel in training_job(plain)["InputDataConfig"]}
    previous = "s3://artifacts/models/previous/model.tar.gz"
    config = stage_configs["dev"].model_copy(
        update={"pipeline": stage_configs["dev"].pipeline.model_copy(update={"warm_start_model_uri": previous})}
    )
    warm = pipeline_definition(config, TARGETS)
    assert parameters_of(warm)["PreviousModelUri"]["DefaultValue"] == previous
    (channel,) = [c for c in training_job(warm)["InputDataConfig"] if c["ChannelName"] == "model"]
    assert channel["DataSource"]["S3DataSource"]["S3Uri"] == {"Get": "Parameters.PreviousModelUri"}


def test_training_code_is_the_bundle_object_with_or_without_network_isolation(stage_configs):
    job = training_job(pipeline_definition(stage_configs["dev"], TARGETS))
    assert job["StaticHyperParameters"]["sagemaker_submit_directory"] == f'"{TARGETS.code_bundle_uri}"'
    isolated = stage_configs["dev"].model_copy(
        update={"pipeline": stage_configs["dev"].pipeline.model_copy(update={"network_isolation": True})}
    )
    job = training_job(pipeline_definition(isolated, TARGETS))
    assert job["EnableNetworkIsolation"] is True
    assert job["StaticHyperParameters"]["sagemaker_submit_directory"] == '"/opt/ml/input/data/code/0123abcd.gz"'
    (code,) = [c for c in job["InputDataConfig"] if c["ChannelName"] == "code"]
    assert code["DataSource"]["S3DataSource"]["S3Uri"] == TARGETS.code_bundle_uri


def test_sdk_workarounds_are_tied_to_the_pinned_sdk():
    """pipelines/sdk.py patches config validation and definition.py rewrites static hyperparameters of SDK 2.257.7;
    another SDK version must be re-verified (offline build time, job name stamping, code channel path) before the
    pin moves."""
    import sagemaker
    import sagemaker.utils

    from infra.config import PROJECT_ROOT
    from pipelines.sdk import pipeline_session

    pipeline_session("artifacts")
    pinned = [
        line for line in (PROJECT_ROOT / "requirements.txt").read_text().splitlines() if line.startswith("sagemaker==")
    ]
    assert pinned == [f"sagemaker=={sagemaker.__version__}"] == ["sagemaker==2.257.7"]
    assert sagemaker.utils.validate_sagemaker_config.__name__ == "validate_once"


def test_the_sessions_config_is_one_the_pinned_sdk_accepts_so_building_need_not_validate_it(stage_configs, monkeypatch):
    """The SDK validates its config against the whole schema as each session starts and on each lookup (0.2 s each);
    the builder's sessions skip that for their constant config, which is validated here instead."""
    import jsonschema
    import sagemaker.config

    from pipelines.sdk import SDK_CONFIG

    sagemaker.config.validate_sagemaker_config(SDK_CONFIG)
    with pytest.raises(jsonschema.ValidationError):
        sagemaker.config.validate_sagemaker_config({**SDK_CONFIG, "SchemaVersion": "0.9"})
    validations = []
    validate = jsonschema.validate
    monkeypatch.setattr(jsonschema, "validate", lambda *args, **kwargs: validations.append(validate(*args, **kwargs)))
    for config in stage_configs.values():
        pipeline_definition(config, TARGETS)
    assert validations == []


def test_importing_the_builder_patches_and_silences_nothing_until_it_builds():
    """The SDK is set up by the session factory that the builder calls, not as a side effect of an import."""
    from infra.config import PROJECT_ROOT

    probe = """
import json, logging, os
import sagemaker.utils
import infra.pipeline.stack, pipelines.definition
from pipelines.sdk import pipeline_session

def state():
    return [sagemaker.utils.validate_sagemaker_config.__name__, os.environ.get("SAGEMAKER_SUPPRESS_V2_WARNING"),
            logging.getLogger("sagemaker.config").level]

imported = state()
pipeline_session("artifacts")
print(json.dumps({"imported": imported, "built": state()}))
"""
    environment = {name: value for name, value in os.environ.items() if name != "SAGEMAKER_SUPPRESS_V2_WARNING"}
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    states = json.loads(result.stdout.splitlines()[-1])
    (patch, banner, log_level), built = states["imported"], states["built"]
    assert (patch, banner) == ("validate_sagemaker_config", None)
    assert log_level < logging.WARNING, "the SDK logs its config search at INFO"
    assert built == ["validate_once", "1", logging.WARNING]


def with_processing_type(config, instance_type: str):
    return config.model_copy(
        update={"processing": config.processing.model_copy(update={"instance_type": instance_type})}
    )


@pytest.mark.parametrize(("instance_type", "volume_key"), [("ml.m5.xlarge", True), ("ml.g4dn.xlarge", False)])
def test_processing_volumes_take_the_stage_key_unless_the_type_has_local_storage(
    stage_configs, instance_type, volume_key
):
    """SageMaker refuses a volume key for types whose NVMe storage the hardware encrypts; the parameter then admits
    only types of the same kind, so that no value it accepts makes the definition invalid."""
    definition = pipeline_definition(with_processing_type(stage_configs["dev"], instance_type), TARGETS)
    for step in (spec.StepName.PREPROCESS, spec.StepName.EVALUATE):
        cluster = steps_of(definition)[step]["Arguments"]["ProcessingResources"]["ClusterConfig"]
        assert ("VolumeKmsKeyId" in cluster) is volume_key
    allowed = parameters_of(definition)["ProcessingInstanceType"]["EnumValues"]
    assert instance_type in allowed
    assert {supports_volume_kms_key(other) for other in allowed} == {volume_key}
    assert set(allowed) <= set(accepted_instance_types(InstanceUse.PROCESSING))
    kind = spec.parameter_specs(with_processing_type(stage_configs["dev"], instance_type), "bucket", "image")
    (processing,) = [parameter for parameter in kind if parameter.name == "ProcessingInstanceType"]
    other_kind = next(
        t for t in accepted_instance_types(InstanceUse.PROCESSING) if supports_volume_kms_key(t) != volume_key
    )
    with pytest.raises(ValueError, match=r"is not allowed; allowed: one of \d+ values, e.g. "):
        processing.parse(other_kind)


def test_every_version_records_what_triggered_its_execution(stage_configs):
    """A drift retraining passes TriggeredBy; a manual or scheduled start records the default."""
    definition = pipeline_definition(stage_configs["staging"], TARGETS)
    (register,) = [step for step in steps_of(definition).values() if step["Type"] == "RegisterModel"]
    assert register["Arguments"]["CustomerMetadataProperties"] == {
        spec.TRIGGER_METADATA_KEY: {"Get": f"Parameters.{spec.ParameterName.TRIGGERED_BY}"}
    }
    assert parameters_of(definition)[spec.ParameterName.TRIGGERED_BY]["DefaultValue"] == spec.DEFAULT_TRIGGER


@pytest.mark.parametrize("value", ["", "a\nnewline", "x" * 257, "drift (beyond 0.3)"])
def test_a_trigger_the_versions_metadata_would_refuse_is_refused_when_the_execution_starts(stage_configs, value):
    (trigger,) = [
        parameter
        for parameter in spec.parameter_specs(stage_configs["dev"], "bucket", "image")
        if parameter.name == spec.ParameterName.TRIGGERED_BY
    ]
    with pytest.raises(ValueError, match="parameter TriggeredBy: .* must be 1 to 256 letters"):
        trigger.parse(value)
    assert trigger.parse(spec.DEFAULT_TRIGGER) == spec.DEFAULT_TRIGGER
