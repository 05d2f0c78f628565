"""RealtimeEndpoint on its own: the variant of the model it is given, data capture, canary deployments that roll
back on its alarms, and instance auto-scaling only when the settings ask for it."""

from __future__ import annotations

from infra.config import RealtimeInference, ServingAlarms
from infra.serving.realtime import RealtimeEndpoint
from infra.serving.scaling import SAGEMAKER_SCALING_ROLE
from tests.infra.serving.conftest import only, render
from tests.infra.serving.constructs.conftest import (
    ARTIFACTS_BUCKET,
    MODEL_NAME,
    BareStack,
    of_type,
)

ENDPOINT_NAME = "unit-realtime"
ALARMS = ServingAlarms(latency_p99_microseconds=123_000, server_errors_per_minute=3)


def realtime(bare: BareStack, **settings) -> RealtimeEndpoint:
    return RealtimeEndpoint(
        bare.stack,
        "Realtime",
        settings=RealtimeInference(**settings),
        alarm_settings=ALARMS,
        endpoint_name=ENDPOINT_NAME,
        model_name=MODEL_NAME,
        role=bare.role,
        key=bare.key,
        artifacts=bare.artifacts,
        alarm_topic=bare.alarm_topic,
    )


def test_one_variant_of_the_given_model_on_the_configured_instances_with_the_stage_key(bare):
    realtime(bare, instance_type="ml.c5.xlarge", min_capacity=2, max_capacity=3)
    template = bare.template()
    config = only(of_type(template, "AWS::SageMaker::EndpointConfig"))["Properties"]
    assert config["ProductionVariants"] == [
        {
            "VariantName": "AllTraffic",
            "ModelName": MODEL_NAME,
            "InstanceType": "ml.c5.xlarge",
            "InitialInstanceCount": 2,
            "InitialVariantWeight": 1,
        }
    ]
    assert config["KmsKeyId"] == {"Fn::GetAtt": [bare.logical_id(bare.key), "Arn"]}
    (config_id,) = of_type(template, "AWS::SageMaker::EndpointConfig")
    endpoint = only(of_type(template, "AWS::SageMaker::Endpoint"))["Properties"]
    assert endpoint["EndpointName"] == ENDPOINT_NAME
    assert endpoint["EndpointConfigName"] == {"Fn::GetAtt": [config_id, "EndpointConfigName"]}
    assert "EndpointConfigName" not in config, "unnamed: a changed config is a new one, deployed blue/green"


def test_no_volume_key_on_an_instance_type_with_local_storage(bare):
    realtime(bare, instance_type="ml.g5.xlarge")
    assert "KmsKeyId" not in only(of_type(bare.template(), "AWS::SageMaker::EndpointConfig"))["Properties"]


def test_data_capture_to_the_artifacts_bucket_which_the_role_may_then_write(bare):
    realtime(bare, data_capture_percent=35)
    template = bare.template()
    capture = only(of_type(template, "AWS::SageMaker::EndpointConfig"))["Properties"]["DataCaptureConfig"]
    assert capture["EnableCapture"] is True
    assert capture["InitialSamplingPercentage"] == 35
    assert capture["DestinationS3Uri"] == f"s3://{ARTIFACTS_BUCKET}/data-capture"
    assert capture["KmsKeyId"] == {"Fn::GetAtt": [bare.logical_id(bare.key), "Arn"]}
    write = bare.serving_role_statements(template)["WriteDataCapture"]
    assert render(write["Resource"]) == f"arn:${{AWS::Partition}}:s3:::{ARTIFACTS_BUCKET}/data-capture/*"


def test_without_data_capture_nothing_is_captured_and_the_role_writes_nothing(bare):
    realtime(bare, data_capture_percent=0)
    template = bare.template()
    assert "DataCaptureConfig" not in only(of_type(template, "AWS::SageMaker::EndpointConfig"))["Properties"]
    assert "WriteDataCapture" not in bare.serving_role_statements(template)


def test_a_canary_deployment_rolls_back_on_the_server_error_and_latency_alarms(bare):
    realtime(bare, canary_percent=25, canary_wait_seconds=120, termination_wait_seconds=60)
    template = bare.template()
    deployment = only(of_type(template, "AWS::SageMaker::Endpoint"))["Properties"]["DeploymentConfig"]
    assert deployment["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] == {
        "Type": "CANARY",
        "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 25},
        "WaitIntervalInSeconds": 120,
    }
    assert deployment["BlueGreenUpdatePolicy"]["TerminationWaitInSeconds"] == 60
    alarms = of_type(template, "AWS::CloudWatch::Alarm")
    rollback = [alarms[a["AlarmName"]["Ref"]]["Properties"] for a in deployment["AutoRollbackConfiguration"]["Alarms"]]
    assert {(a["AlarmName"], a["Threshold"]) for a in rollback} == {
        (f"{ENDPOINT_NAME}-server-errors", ALARMS.server_errors_per_minute),
        (f"{ENDPOINT_NAME}-model-latency-p99", ALARMS.latency_p99_microseconds),
    }
    assert len(alarms) == 3, "client errors alarm too, without rolling back"
    assert all(a["Properties"]["AlarmActions"] == [{"Ref": bare.logical_id(bare.alarm_topic)}] for a in alarms.values())


def test_with_autoscaling_the_variant_scales_on_invocations_per_instance(bare):
    realtime(bare, min_capacity=2, max_capacity=5, invocations_per_instance_target=300, scale_in_cooldown_seconds=600)
    template = bare.template()
    (target_id, target), *others = of_type(template, "AWS::ApplicationAutoScaling::ScalableTarget").items()
    assert others == []
    properties = target["Properties"]
    assert properties["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert properties["ResourceId"] == f"endpoint/{ENDPOINT_NAME}/variant/AllTraffic"
    assert (properties["MinCapacity"], properties["MaxCapacity"]) == (2, 5)
    assert render(properties["RoleARN"]).endswith(f":role/{SAGEMAKER_SCALING_ROLE}")
    assert target["DependsOn"] == list(of_type(template, "AWS::SageMaker::Endpoint"))
    policy = only(of_type(template, "AWS::ApplicationAutoScaling::ScalingPolicy"))["Properties"]
    assert policy["ScalingTargetId"] == {"Ref": target_id}
    assert policy["TargetTrackingScalingPolicyConfiguration"] == {
        "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
        "TargetValue": 300,
        "ScaleInCooldown": 600,
        "ScaleOutCooldown": 60,
    }


def test_without_autoscaling_nothing_scales_but_updates_keep_the_instance_count(bare):
    endpoint = realtime(bare, autoscaling=False)
    template = bare.template()
    assert endpoint.scalable_target is None
    assert of_type(template, "AWS::ApplicationAutoScaling::ScalableTarget") == {}
    assert of_type(template, "AWS::ApplicationAutoScaling::ScalingPolicy") == {}
    properties = only(of_type(template, "AWS::SageMaker::Endpoint"))["Properties"]
    assert properties["RetainAllVariantProperties"] is True
    assert properties["ExcludeRetainedVariantProperties"] == [{"VariantPropertyType": "DataCaptureConfig"}]
