"""AsyncEndpoint on its own: results and failures in the artifacts bucket, its two notification topics, what it
adds to the serving role and the notification key, and scaling to and from zero on its backlog."""

from __future__ import annotations

from infra.config import AsyncInference, ServingAlarms
from infra.serving.asynchronous import AsyncEndpoint
from tests.infra.serving.conftest import only, render
from tests.infra.serving.constructs.conftest import (
    ARTIFACTS_BUCKET,
    MODEL_NAME,
    BareStack,
    of_type,
    properties_of,
)

ENDPOINT_NAME = "unit-async"
ALARMS = ServingAlarms(backlog_age_seconds=600)


def asynchronous(bare: BareStack, **settings) -> AsyncEndpoint:
    return AsyncEndpoint(
        bare.stack,
        "Async",
        settings=AsyncInference(enabled=True, **settings),
        alarm_settings=ALARMS,
        endpoint_name=ENDPOINT_NAME,
        model_name=MODEL_NAME,
        key=bare.key,
        artifacts=bare.artifacts,
        notification_key=bare.notification_key,
        role=bare.role,
        alarm_topic=bare.alarm_topic,
    )


def alarm_on(template: dict, metric_name: str) -> dict:
    (alarm,) = [a for a in properties_of(template, "AWS::CloudWatch::Alarm") if a["MetricName"] == metric_name]
    return alarm


def test_results_and_failures_go_to_the_artifacts_bucket_encrypted_and_announced_on_two_topics(bare):
    endpoint = asynchronous(bare, max_concurrent_invocations_per_instance=7)
    template = bare.template()
    config = only(of_type(template, "AWS::SageMaker::EndpointConfig"))["Properties"]
    (variant,) = config["ProductionVariants"]
    assert variant["ModelName"] == MODEL_NAME
    assert variant["InitialInstanceCount"] == 1, "SageMaker creates an endpoint with an instance; scaling removes it"
    stage_key = {"Fn::GetAtt": [bare.logical_id(bare.key), "Arn"]}
    assert config["KmsKeyId"] == stage_key
    success, error = (bare.logical_id(endpoint.success_topic), bare.logical_id(endpoint.error_topic))
    assert config["AsyncInferenceConfig"] == {
        "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 7},
        "OutputConfig": {
            "S3OutputPath": f"s3://{ARTIFACTS_BUCKET}/async-inference/output/",
            "S3FailurePath": f"s3://{ARTIFACTS_BUCKET}/async-inference/failures/",
            "KmsKeyId": stage_key,
            "NotificationConfig": {"SuccessTopic": {"Ref": success}, "ErrorTopic": {"Ref": error}},
        },
    }
    topics = of_type(template, "AWS::SNS::Topic")
    notification_key = {"Fn::GetAtt": [bare.logical_id(bare.notification_key.key), "Arn"]}
    for topic_id, display_name in ((success, "inference succeeded"), (error, "inference failed")):
        assert topics[topic_id]["Properties"] == {
            "DisplayName": f"{ENDPOINT_NAME}: {display_name}",
            "KmsMasterKeyId": notification_key,
        }


def test_the_role_reads_requests_writes_results_and_publishes_before_the_endpoint_exists(bare):
    endpoint = asynchronous(bare)
    template = bare.template()
    statements = bare.serving_role_statements(template)
    objects = f"arn:${{AWS::Partition}}:s3:::{ARTIFACTS_BUCKET}/async-inference"
    assert render(statements["ReadAsyncRequests"]["Resource"]) == f"{objects}/input/*"
    assert sorted(render(statements["WriteAsyncResults"]["Resource"])) == [
        f"{objects}/failures/*",
        f"{objects}/output/*",
    ]
    assert sorted(r["Ref"] for r in statements["PublishAsyncNotifications"]["Resource"]) == sorted(
        (bare.logical_id(endpoint.success_topic), bare.logical_id(endpoint.error_topic))
    )
    key_policy = of_type(template, "AWS::KMS::Key")[bare.logical_id(bare.notification_key.key)]["Properties"]
    (publishers,) = [s for s in key_policy["KeyPolicy"]["Statement"] if s["Sid"] == "RolesPublishToEncryptedTopics"]
    assert publishers["Principal"] == {"AWS": {"Fn::GetAtt": [bare.logical_id(bare.role.role), "Arn"]}}
    endpoint_resource = only(of_type(template, "AWS::SageMaker::Endpoint"))
    assert bare.logical_id(bare.role.policy) in endpoint_resource["DependsOn"]


def test_backlog_tracking_scales_in_to_zero_and_a_backlog_without_capacity_adds_the_first_instance(bare):
    asynchronous(bare, max_capacity=4, backlog_per_instance_target=3.0, scale_out_cooldown_seconds=30)
    template = bare.template()
    target_id, target = next(iter(of_type(template, "AWS::ApplicationAutoScaling::ScalableTarget").items()))
    properties = target["Properties"]
    assert properties["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert properties["ResourceId"] == f"endpoint/{ENDPOINT_NAME}/variant/AllTraffic"
    assert (properties["MinCapacity"], properties["MaxCapacity"]) == (0, 4)
    policies = {p["PolicyType"]: p for p in properties_of(template, "AWS::ApplicationAutoScaling::ScalingPolicy")}
    assert set(policies) == {"TargetTrackingScaling", "StepScaling"}
    assert {p["ScalingTargetId"]["Ref"] for p in policies.values()} == {target_id}
    tracking = policies["TargetTrackingScaling"]["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["CustomizedMetricSpecification"]["MetricName"] == "ApproximateBacklogSizePerInstance"
    assert tracking["CustomizedMetricSpecification"]["Dimensions"] == [{"Name": "EndpointName", "Value": ENDPOINT_NAME}]
    assert (tracking["TargetValue"], tracking["ScaleOutCooldown"]) == (3.0, 30)
    step = policies["StepScaling"]["StepScalingPolicyConfiguration"]
    assert step["AdjustmentType"] == "ChangeInCapacity"
    assert step["StepAdjustments"] == [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]
    (step_id,) = [
        i
        for i, p in of_type(template, "AWS::ApplicationAutoScaling::ScalingPolicy").items()
        if p["Properties"]["PolicyType"] == "StepScaling"
    ]
    without_capacity = alarm_on(template, "HasBacklogWithoutCapacity")
    assert without_capacity["AlarmName"] == f"{ENDPOINT_NAME}-backlog-without-capacity"
    assert without_capacity["AlarmActions"] == [{"Ref": step_id}]


def test_without_autoscaling_nothing_scales(bare):
    endpoint = asynchronous(bare, min_capacity=1, autoscaling=False)
    template = bare.template()
    assert endpoint.scalable_target is None
    assert of_type(template, "AWS::ApplicationAutoScaling::ScalableTarget") == {}
    assert of_type(template, "AWS::ApplicationAutoScaling::ScalingPolicy") == {}
    metrics = {a["MetricName"] for a in properties_of(template, "AWS::CloudWatch::Alarm")}
    assert "HasBacklogWithoutCapacity" not in metrics


def test_an_old_backlog_and_the_endpoint_alarms_notify_the_given_topic(bare):
    asynchronous(bare)
    template = bare.template()
    backlog_age = alarm_on(template, "ApproximateAgeOfOldestRequest")
    assert (backlog_age["AlarmName"], backlog_age["Threshold"]) == (f"{ENDPOINT_NAME}-backlog-age", 600)
    notifying = [a for a in properties_of(template, "AWS::CloudWatch::Alarm") if "AlarmActions" in a]
    topic = [{"Ref": bare.logical_id(bare.alarm_topic)}]
    assert {a["MetricName"] for a in notifying if a["AlarmActions"] == topic} == {
        "Invocation5XXErrors",
        "Invocation4XXErrors",
        "ModelLatency",
        "ApproximateAgeOfOldestRequest",
    }
