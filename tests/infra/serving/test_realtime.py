"""The real-time endpoint: variant, volume key, data capture, canary deployments with rollback, auto-scaling."""

from __future__ import annotations

import pytest

from infra.serving.scaling import SAGEMAKER_SCALING_ROLE
from tests.infra.serving.conftest import only, render
from training_code.contract import NPY, NPZ, REQUEST_CONTENT_TYPES, RESPONSE_CONTENT_TYPES, TEXT_CONTENT_TYPES

STAGES = ("staging", "prod")
STAGE_KEY = "EncryptionKey"


def endpoint_config(serving, stage: str) -> dict:
    return only(serving(stage, "AWS::SageMaker::EndpointConfig", "Realtime"))["Properties"]


@pytest.mark.parametrize("stage", STAGES)
def test_one_variant_of_the_model_on_the_configured_instances(serving, stage_configs, stage):
    settings = stage_configs[stage].inference.realtime
    (variant,) = endpoint_config(serving, stage)["ProductionVariants"]
    (model_id,) = serving(stage, "AWS::SageMaker::Model", "Model")
    assert variant == {
        "VariantName": "AllTraffic",
        "ModelName": {"Fn::GetAtt": [model_id, "ModelName"]},
        "InstanceType": settings.instance_type,
        "InitialInstanceCount": settings.min_capacity,
        "InitialVariantWeight": 1,
    }


@pytest.mark.parametrize("stage", STAGES)
def test_the_storage_volume_is_encrypted_with_the_stage_key(serving, stage):
    assert STAGE_KEY in render(endpoint_config(serving, stage)["KmsKeyId"])


def test_no_volume_key_for_instance_types_with_local_storage(variant):
    """SageMaker refuses a volume key for types whose NVMe storage the hardware encrypts (the variant uses ml.g5)."""
    config = only(variant("AWS::SageMaker::EndpointConfig", "Realtime"))["Properties"]
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.g5.xlarge"
    assert "KmsKeyId" not in config


@pytest.mark.parametrize("stage", STAGES)
def test_data_capture_of_requests_and_responses_to_the_artifacts_bucket(serving, stage_configs, stage):
    capture = endpoint_config(serving, stage)["DataCaptureConfig"]
    assert capture["EnableCapture"] is True
    assert capture["InitialSamplingPercentage"] == stage_configs[stage].inference.realtime.data_capture_percent
    destination = render(capture["DestinationS3Uri"])
    # SageMaker appends /<endpoint>/<variant>/<date>/.
    assert destination == f"s3://mlopskit-{stage}-artifacts-${{AWS::AccountId}}-${{AWS::Region}}/data-capture"
    assert STAGE_KEY in render(capture["KmsKeyId"])
    assert capture["CaptureOptions"] == [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}]
    headers = capture["CaptureContentTypeHeader"]
    # Text types are captured as text; NumPy's, which are binary, as base64.
    captured = {*REQUEST_CONTENT_TYPES, *RESPONSE_CONTENT_TYPES} - {NPY, NPZ}
    assert set(headers["CsvContentTypes"]) | set(headers["JsonContentTypes"]) == captured == set(TEXT_CONTENT_TYPES)
    assert headers["CsvContentTypes"] == ["text/csv"]


def test_sampling_differs_per_stage_and_zero_turns_capture_off(serving, variant):
    percents = {
        stage: endpoint_config(serving, stage)["DataCaptureConfig"]["InitialSamplingPercentage"] for stage in STAGES
    }
    assert percents == {"staging": 20, "prod": 100}
    assert "DataCaptureConfig" not in only(variant("AWS::SageMaker::EndpointConfig", "Realtime"))["Properties"]


@pytest.mark.parametrize("stage", STAGES)
def test_deployments_are_canaries_that_roll_back_on_the_endpoint_alarms(serving, stage_configs, stage):
    settings = stage_configs[stage].inference.realtime
    endpoint = only(serving(stage, "AWS::SageMaker::Endpoint", "Realtime"))["Properties"]
    assert endpoint["EndpointName"] == f"mlopskit-{stage}-realtime"
    (config_id,) = serving(stage, "AWS::SageMaker::EndpointConfig", "Realtime")
    assert endpoint["EndpointConfigName"] == {"Fn::GetAtt": [config_id, "EndpointConfigName"]}
    deployment = endpoint["DeploymentConfig"]
    assert deployment["BlueGreenUpdatePolicy"] == {
        "TrafficRoutingConfiguration": {
            "Type": "CANARY",
            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": settings.canary_percent},
            "WaitIntervalInSeconds": settings.canary_wait_seconds,
        },
        "TerminationWaitInSeconds": settings.termination_wait_seconds,
        "MaximumExecutionTimeoutInSeconds": settings.deployment_timeout_seconds,
    }
    alarms = serving(stage, "AWS::CloudWatch::Alarm", "Realtime")
    rollback_ids = [alarm["AlarmName"]["Ref"] for alarm in deployment["AutoRollbackConfiguration"]["Alarms"]]
    rollback = {alarms[i]["Properties"]["MetricName"]: alarms[i] for i in rollback_ids}
    assert set(rollback) == {"Invocation5XXErrors", "ModelLatency"}
    for alarm in rollback.values():
        dimensions = {d["Name"]: d["Value"] for d in alarm["Properties"]["Dimensions"]}
        assert dimensions == {"EndpointName": f"mlopskit-{stage}-realtime", "VariantName": "AllTraffic"}
    alarm_settings = stage_configs[stage].inference.alarms
    latency = rollback["ModelLatency"]["Properties"]
    assert (latency["ExtendedStatistic"], latency["Threshold"]) == ("p99", alarm_settings.latency_p99_microseconds)
    errors = rollback["Invocation5XXErrors"]["Properties"]
    assert (errors["Statistic"], errors["Threshold"]) == ("Sum", alarm_settings.server_errors_per_minute)


@pytest.mark.parametrize("stage", STAGES)
def test_instances_scale_between_the_configured_bounds_on_invocations_per_instance(serving, stage_configs, stage):
    settings = stage_configs[stage].inference.realtime
    target_id, target = next(iter(serving(stage, "AWS::ApplicationAutoScaling::ScalableTarget", "Realtime").items()))
    properties = target["Properties"]
    assert properties["ServiceNamespace"] == "sagemaker"
    assert properties["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert properties["ResourceId"] == f"endpoint/mlopskit-{stage}-realtime/variant/AllTraffic"
    assert (properties["MinCapacity"], properties["MaxCapacity"]) == (settings.min_capacity, settings.max_capacity)
    assert render(properties["RoleARN"]).endswith(f":role/{SAGEMAKER_SCALING_ROLE}")
    (endpoint_id,) = serving(stage, "AWS::SageMaker::Endpoint", "Realtime")
    assert target["DependsOn"] == [endpoint_id], "the variant must exist before it is registered"
    policy = only(serving(stage, "AWS::ApplicationAutoScaling::ScalingPolicy", "Realtime"))["Properties"]
    assert policy["ScalingTargetId"] == {"Ref": target_id}
    assert policy["PolicyType"] == "TargetTrackingScaling"
    assert policy["TargetTrackingScalingPolicyConfiguration"] == {
        "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
        "TargetValue": settings.invocations_per_instance_target,
        "ScaleInCooldown": settings.scale_in_cooldown_seconds,
        "ScaleOutCooldown": settings.scale_out_cooldown_seconds,
    }


@pytest.mark.parametrize("stage", STAGES)
def test_updates_keep_the_scaled_instance_count_and_take_data_capture_from_the_new_config(serving, stage):
    """Without retention every promotion would restart the fleet at min_capacity, however far it had scaled out."""
    endpoint = only(serving(stage, "AWS::SageMaker::Endpoint", "Realtime"))["Properties"]
    assert endpoint["RetainAllVariantProperties"] is True
    assert endpoint["ExcludeRetainedVariantProperties"] == [{"VariantPropertyType": "DataCaptureConfig"}]


def test_without_autoscaling_there_is_no_scalable_target_for_an_instance_type_change(cdk_context):
    """Application Auto Scaling refuses an update that changes a scaled variant's instance type: one deploy with
    autoscaling off deregisters the variant, the next changes the type (README: changing an instance type)."""
    from aws_cdk import App
    from aws_cdk.assertions import Template

    from infra.assembly import build_app
    from tests.conftest import NO_BUNDLING

    context = {
        **cdk_context,
        **NO_BUNDLING,
        "stage": "staging",
        "staging.inference.realtime.autoscaling": "false",
        "staging.inference.asynchronous.autoscaling": "false",
    }
    (stage,) = build_app(App(context=context))
    template = Template.from_stack(stage.serving).to_json()["Resources"]
    types = [resource["Type"] for resource in template.values()]
    assert "AWS::ApplicationAutoScaling::ScalableTarget" in types, "serverless provisioned concurrency still scales"
    targets = [r for r in template.values() if r["Type"] == "AWS::ApplicationAutoScaling::ScalableTarget"]
    assert [t["Properties"]["ScalableDimension"] for t in targets] == [
        "sagemaker:variant:DesiredProvisionedConcurrency"
    ]
    endpoints = [r["Properties"] for r in template.values() if r["Type"] == "AWS::SageMaker::Endpoint"]
    assert all(
        e.get("RetainAllVariantProperties") for e in endpoints if e["EndpointName"].endswith(("realtime", "async"))
    )
