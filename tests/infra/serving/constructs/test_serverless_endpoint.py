"""ServerlessEndpoint on its own: memory and concurrency from its settings, and provisioned concurrency that scales
on its utilization only when some is provisioned."""

from __future__ import annotations

from infra.config import ServerlessInference, ServingAlarms
from infra.serving.serverless import ServerlessEndpoint
from tests.infra.serving.conftest import only
from tests.infra.serving.constructs.conftest import MODEL_NAME, BareStack, of_type, properties_of

ENDPOINT_NAME = "unit-serverless"


def serverless(bare: BareStack, **settings) -> ServerlessEndpoint:
    return ServerlessEndpoint(
        bare.stack,
        "Serverless",
        settings=ServerlessInference(enabled=True, **settings),
        alarm_settings=ServingAlarms(),
        endpoint_name=ENDPOINT_NAME,
        model_name=MODEL_NAME,
        alarm_topic=bare.alarm_topic,
    )


def test_memory_and_concurrency_of_the_given_model_without_instances_or_volume_key(bare):
    serverless(bare, memory_size_mb=4096, max_concurrency=8)
    template = bare.template()
    config = only(of_type(template, "AWS::SageMaker::EndpointConfig"))["Properties"]
    assert config == {
        "ProductionVariants": [
            {
                "VariantName": "AllTraffic",
                "ModelName": MODEL_NAME,
                "ServerlessConfig": {"MemorySizeInMB": 4096, "MaxConcurrency": 8},
            }
        ]
    }
    endpoint = only(of_type(template, "AWS::SageMaker::Endpoint"))["Properties"]
    assert endpoint["EndpointName"] == ENDPOINT_NAME
    assert "DeploymentConfig" not in endpoint


def test_provisioned_concurrency_scales_on_its_utilization_up_to_its_own_maximum(bare):
    serverless(
        bare,
        max_concurrency=10,
        provisioned_concurrency=2,
        max_provisioned_concurrency=6,
        provisioned_concurrency_utilization_target=0.5,
    )
    template = bare.template()
    (variant,) = only(of_type(template, "AWS::SageMaker::EndpointConfig"))["Properties"]["ProductionVariants"]
    assert variant["ServerlessConfig"]["ProvisionedConcurrency"] == 2
    target_id, target = next(iter(of_type(template, "AWS::ApplicationAutoScaling::ScalableTarget").items()))
    properties = target["Properties"]
    assert properties["ScalableDimension"] == "sagemaker:variant:DesiredProvisionedConcurrency"
    assert properties["ResourceId"] == f"endpoint/{ENDPOINT_NAME}/variant/AllTraffic"
    assert (properties["MinCapacity"], properties["MaxCapacity"]) == (2, 6)
    assert target["DependsOn"] == list(of_type(template, "AWS::SageMaker::Endpoint"))
    policy = only(of_type(template, "AWS::ApplicationAutoScaling::ScalingPolicy"))["Properties"]
    assert policy["ScalingTargetId"] == {"Ref": target_id}
    assert policy["TargetTrackingScalingPolicyConfiguration"] == {
        "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantProvisionedConcurrencyUtilization"},
        "TargetValue": 0.5,
        "ScaleInCooldown": 300,
        "ScaleOutCooldown": 60,
    }


def test_without_a_maximum_provisioned_concurrency_scales_up_to_the_maximum_concurrency(bare):
    serverless(bare, max_concurrency=10, provisioned_concurrency=2)
    (target,) = properties_of(bare.template(), "AWS::ApplicationAutoScaling::ScalableTarget")
    assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 10)


def test_without_provisioned_concurrency_nothing_scales(bare):
    endpoint = serverless(bare)
    template = bare.template()
    assert endpoint.scalable_target is None
    assert of_type(template, "AWS::ApplicationAutoScaling::ScalableTarget") == {}
    assert of_type(template, "AWS::ApplicationAutoScaling::ScalingPolicy") == {}


def test_its_alarms_watch_its_own_variant_and_notify_the_given_topic(bare):
    serverless(bare)
    alarms = properties_of(bare.template(), "AWS::CloudWatch::Alarm")
    assert {a["MetricName"] for a in alarms} == {"Invocation5XXErrors", "Invocation4XXErrors", "ModelLatency"}
    for alarm in alarms:
        assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {
            "EndpointName": ENDPOINT_NAME,
            "VariantName": "AllTraffic",
        }
        assert alarm["AlarmActions"] == [{"Ref": bare.logical_id(bare.alarm_topic)}]
