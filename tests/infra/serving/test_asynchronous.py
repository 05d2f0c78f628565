"""The asynchronous endpoint: S3 results, SNS notifications, and scaling to and from zero on its backlog."""

from __future__ import annotations

import pytest

from tests.infra.serving.conftest import only, render

STAGES = ("staging", "prod")


def async_config(serving, stage: str) -> dict:
    return only(serving(stage, "AWS::SageMaker::EndpointConfig", "Async"))["Properties"]


def topic_ids(serving, stage: str) -> dict[str, str]:
    topics = serving(stage, "AWS::SNS::Topic", "Async")
    return {kind: next(i for i in topics if i.startswith(f"Async{kind}Topic")) for kind in ("Success", "Error")}


@pytest.mark.parametrize("stage", STAGES)
def test_results_and_failures_go_to_the_async_prefix_encrypted_and_announced(serving, stage_configs, stage):
    settings = stage_configs[stage].inference.asynchronous
    config = async_config(serving, stage)
    (variant,) = config["ProductionVariants"]
    assert variant["InstanceType"] == settings.instance_type
    assert variant["InitialInstanceCount"] == 1, "SageMaker creates an endpoint with an instance; scaling removes it"
    async_inference = config["AsyncInferenceConfig"]
    assert async_inference["ClientConfig"] == {
        "MaxConcurrentInvocationsPerInstance": settings.max_concurrent_invocations_per_instance
    }
    output = async_inference["OutputConfig"]
    for path, prefix in ((output["S3OutputPath"], "output"), (output["S3FailurePath"], "failures")):
        assert (
            render(path)
            == f"s3://mlopskit-{stage}-artifacts-${{AWS::AccountId}}-${{AWS::Region}}/async-inference/{prefix}/"
        )
    assert "EncryptionKey" in render(output["KmsKeyId"])
    assert "EncryptionKey" in render(config["KmsKeyId"])
    ids = topic_ids(serving, stage)
    assert output["NotificationConfig"] == {
        "SuccessTopic": {"Ref": ids["Success"]},
        "ErrorTopic": {"Ref": ids["Error"]},
    }


@pytest.mark.parametrize("stage", STAGES)
def test_topics_are_encrypted_and_refuse_plain_transport(serving, stage):
    (key_id,) = serving(stage, "AWS::KMS::Key")
    for topic_id in topic_ids(serving, stage).values():
        topic = serving(stage, "AWS::SNS::Topic")[topic_id]["Properties"]
        assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
        (policy,) = [
            p
            for p in serving(stage, "AWS::SNS::TopicPolicy").values()
            if p["Properties"]["Topics"] == [{"Ref": topic_id}]
        ]
        (deny,) = policy["Properties"]["PolicyDocument"]["Statement"]
        assert (deny["Effect"], deny["Condition"]) == ("Deny", {"Bool": {"aws:SecureTransport": "false"}})


@pytest.mark.parametrize("stage", STAGES)
def test_the_serving_role_may_publish_to_exactly_the_two_topics(serving, stage):
    (policy,) = serving(stage, "AWS::IAM::Policy", "ServingRolePolicy").values()
    (publish,) = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Action"] == "sns:Publish"]
    assert publish["Sid"] == "PublishAsyncNotifications"
    assert sorted(r["Ref"] for r in publish["Resource"]) == sorted(topic_ids(serving, stage).values())
    (role_id,) = serving(stage, "AWS::IAM::Role", "ServingRole")
    key_policy = only(serving(stage, "AWS::KMS::Key"))["Properties"]["KeyPolicy"]["Statement"]
    (publishers,) = [s for s in key_policy if s["Sid"] == "RolesPublishToEncryptedTopics"]
    assert {"Fn::GetAtt": [role_id, "Arn"]} in publishers["Principal"]["AWS"]
    endpoint = only(serving(stage, "AWS::SageMaker::Endpoint", "Async"))
    assert next(iter(serving(stage, "AWS::IAM::Policy", "ServingRolePolicy"))) in endpoint["DependsOn"]


@pytest.mark.parametrize("stage", STAGES)
def test_backlog_per_instance_tracking_scales_in_to_zero(serving, stage_configs, stage):
    settings = stage_configs[stage].inference.asynchronous
    target_id, target = next(iter(serving(stage, "AWS::ApplicationAutoScaling::ScalableTarget", "Async").items()))
    properties = target["Properties"]
    assert properties["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"
    assert properties["ResourceId"] == f"endpoint/mlopskit-{stage}-async/variant/AllTraffic"
    assert (properties["MinCapacity"], properties["MaxCapacity"]) == (0, settings.max_capacity)
    policies = serving(stage, "AWS::ApplicationAutoScaling::ScalingPolicy", "Async")
    (tracking,) = [
        p["Properties"] for p in policies.values() if p["Properties"]["PolicyType"] == "TargetTrackingScaling"
    ]
    assert tracking["ScalingTargetId"] == {"Ref": target_id}
    assert tracking["TargetTrackingScalingPolicyConfiguration"] == {
        "CustomizedMetricSpecification": {
            "Namespace": "AWS/SageMaker",
            "MetricName": "ApproximateBacklogSizePerInstance",
            "Dimensions": [{"Name": "EndpointName", "Value": f"mlopskit-{stage}-async"}],
            "Statistic": "Average",
        },
        "TargetValue": settings.backlog_per_instance_target,
        "ScaleInCooldown": settings.scale_in_cooldown_seconds,
        "ScaleOutCooldown": settings.scale_out_cooldown_seconds,
    }


@pytest.mark.parametrize("stage", STAGES)
def test_a_backlog_without_capacity_adds_the_first_instance(serving, stage):
    target_id = next(iter(serving(stage, "AWS::ApplicationAutoScaling::ScalableTarget", "Async")))
    policies = serving(stage, "AWS::ApplicationAutoScaling::ScalingPolicy", "Async")
    ((step_id, step),) = [
        (i, p["Properties"]) for i, p in policies.items() if p["Properties"]["PolicyType"] == "StepScaling"
    ]
    assert step["ScalingTargetId"] == {"Ref": target_id}
    configuration = step["StepScalingPolicyConfiguration"]
    assert configuration["AdjustmentType"] == "ChangeInCapacity"
    assert configuration["StepAdjustments"] == [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]
    (alarm,) = [
        a["Properties"]
        for a in serving(stage, "AWS::CloudWatch::Alarm", "Async").values()
        if a["Properties"]["MetricName"] == "HasBacklogWithoutCapacity"
    ]
    assert alarm["AlarmActions"] == [{"Ref": step_id}]
    assert alarm["Namespace"] == "AWS/SageMaker"
    assert alarm["Dimensions"] == [{"Name": "EndpointName", "Value": f"mlopskit-{stage}-async"}]
    assert (alarm["Statistic"], alarm["ComparisonOperator"], alarm["Threshold"]) == (
        "Average",
        "GreaterThanOrEqualToThreshold",
        1,
    )
    assert alarm["EvaluationPeriods"] == 2
    assert alarm["TreatMissingData"] == "notBreaching"


@pytest.mark.parametrize("stage", STAGES)
def test_an_old_backlog_raises_an_alarm(serving, stage_configs, stage):
    (alarm,) = [
        a["Properties"]
        for a in serving(stage, "AWS::CloudWatch::Alarm", "Async").values()
        if a["Properties"]["MetricName"] == "ApproximateAgeOfOldestRequest"
    ]
    assert alarm["Threshold"] == stage_configs[stage].inference.alarms.backlog_age_seconds
    assert alarm["Dimensions"] == [{"Name": "EndpointName", "Value": f"mlopskit-{stage}-async"}]
    assert alarm["AlarmActions"] == [{"Ref": next(iter(serving(stage, "AWS::SNS::Topic", "AlarmTopic")))}]
