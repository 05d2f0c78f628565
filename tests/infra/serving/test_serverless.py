"""The serverless endpoint and its provisioned-concurrency scaling."""

from __future__ import annotations

from tests.infra.serving.conftest import only, render


def test_memory_and_concurrency_come_from_the_config(serving, stage_configs):
    settings = stage_configs["staging"].inference.serverless
    config = only(serving("staging", "AWS::SageMaker::EndpointConfig", "Serverless"))["Properties"]
    (variant,) = config["ProductionVariants"]
    assert variant["VariantName"] == "AllTraffic"
    assert variant["ServerlessConfig"] == {
        "MemorySizeInMB": settings.memory_size_mb,
        "MaxConcurrency": settings.max_concurrency,
        "ProvisionedConcurrency": settings.provisioned_concurrency,
    }
    assert "InstanceType" not in variant and "KmsKeyId" not in config
    endpoint = only(serving("staging", "AWS::SageMaker::Endpoint", "Serverless"))["Properties"]
    assert endpoint["EndpointName"] == "mlopskit-staging-serverless"
    assert "DeploymentConfig" not in endpoint


def test_provisioned_concurrency_scales_on_its_utilization(serving, stage_configs):
    settings = stage_configs["staging"].inference.serverless
    target_id, target = next(
        iter(serving("staging", "AWS::ApplicationAutoScaling::ScalableTarget", "Serverless").items())
    )
    properties = target["Properties"]
    assert properties["ScalableDimension"] == "sagemaker:variant:DesiredProvisionedConcurrency"
    assert properties["ResourceId"] == "endpoint/mlopskit-staging-serverless/variant/AllTraffic"
    assert (properties["MinCapacity"], properties["MaxCapacity"]) == (
        settings.provisioned_concurrency,
        settings.max_provisioned_concurrency,
    )
    assert "ServerlessEndpoint" in target["DependsOn"][0]
    policy = only(serving("staging", "AWS::ApplicationAutoScaling::ScalingPolicy", "Serverless"))["Properties"]
    assert policy["ScalingTargetId"] == {"Ref": target_id}
    assert policy["TargetTrackingScalingPolicyConfiguration"] == {
        "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantProvisionedConcurrencyUtilization"},
        "TargetValue": settings.provisioned_concurrency_utilization_target,
        "ScaleInCooldown": settings.scale_in_cooldown_seconds,
        "ScaleOutCooldown": settings.scale_out_cooldown_seconds,
    }


def test_without_provisioned_concurrency_nothing_scales(variant):
    (endpoint_variant,) = only(variant("AWS::SageMaker::EndpointConfig", "Serverless"))["Properties"][
        "ProductionVariants"
    ]
    assert "ProvisionedConcurrency" not in endpoint_variant["ServerlessConfig"]
    assert variant("AWS::ApplicationAutoScaling::ScalableTarget", "Serverless") == {}
    assert variant("AWS::SageMaker::Endpoint", "Serverless")


def test_serverless_alarms_watch_its_own_variant(serving):
    alarms = serving("staging", "AWS::CloudWatch::Alarm", "Serverless")
    assert {a["Properties"]["MetricName"] for a in alarms.values()} == {
        "Invocation5XXErrors",
        "Invocation4XXErrors",
        "ModelLatency",
    }
    for alarm in alarms.values():
        dimensions = {d["Name"]: render(d["Value"]) for d in alarm["Properties"]["Dimensions"]}
        assert dimensions == {"EndpointName": "mlopskit-staging-serverless", "VariantName": "AllTraffic"}
