"""Whether a stage serves, what it serves, and what the serving stack reports."""

from __future__ import annotations

import pytest

from infra.config import MODE_NAMES
from infra.serving import SERVING_SUMMARY_METADATA
from infra.serving.stack import NO_MODE_ENABLED, NO_MODEL_PACKAGE, serving_skip_reason

ENDPOINT_PREFIXES = {"realtime": "Realtime", "serverless": "Serverless", "asynchronous": "Async"}


def test_a_stage_without_a_model_package_has_no_serving_stack_and_says_why(synthesized_app):
    assert "dev/Serving" not in synthesized_app.stacks
    foundation = synthesized_app.stack("dev", "Foundation")
    notes = [
        entry["data"]
        for entries in foundation.metadata.values()
        for entry in entries
        if entry["type"] == SERVING_SUMMARY_METADATA
    ]
    assert notes == [f"not deployed: {NO_MODEL_PACKAGE}"]


def test_serving_needs_a_model_package_and_an_enabled_mode(stage_configs):
    staging = stage_configs["staging"]
    assert serving_skip_reason(staging) is None
    without_package = staging.model_copy(
        update={"inference": staging.inference.model_copy(update={"model_package_arn": None})}
    )
    assert serving_skip_reason(without_package) == NO_MODEL_PACKAGE
    modes_off = {name: getattr(staging.inference, name).model_copy(update={"enabled": False}) for name in MODE_NAMES}
    without_modes = staging.model_copy(update={"inference": staging.inference.model_copy(update=modes_off)})
    assert without_modes.inference.enabled_modes == ()
    assert serving_skip_reason(without_modes) == NO_MODE_ENABLED


@pytest.mark.parametrize("stage", ["staging", "prod"])
def test_an_endpoint_exactly_for_each_enabled_endpoint_mode(serving, stage_configs, stage):
    inference = stage_configs[stage].inference
    endpoints = {
        logical_id: endpoint["Properties"]["EndpointName"]
        for logical_id, endpoint in serving(stage, "AWS::SageMaker::Endpoint").items()
    }
    expected = {
        f"mlopskit-{stage}-{suffix}"
        for mode, suffix in (("realtime", "realtime"), ("serverless", "serverless"), ("asynchronous", "async"))
        if getattr(inference, mode).enabled
    }
    assert set(endpoints.values()) == expected
    for mode, prefix in ENDPOINT_PREFIXES.items():
        enabled = getattr(inference, mode).enabled
        assert bool(serving(stage, "AWS::SageMaker::EndpointConfig", prefix)) == enabled, (stage, mode)
        assert bool(serving(stage, "AWS::CloudWatch::Alarm", prefix)) == enabled, (stage, mode)
    has_batch = bool(serving(stage, "AWS::StepFunctions::StateMachine"))
    assert has_batch == inference.batch_transform.enabled


def test_disabled_modes_leave_nothing_behind(serving, stage_configs):
    """prod serves real-time, asynchronous and batch; serverless is off there."""
    assert not stage_configs["prod"].inference.serverless.enabled
    per_mode_types = (
        "AWS::SageMaker::EndpointConfig",
        "AWS::SageMaker::Endpoint",
        "AWS::ApplicationAutoScaling::ScalableTarget",
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        "AWS::CloudWatch::Alarm",
    )
    assert all(serving("prod", resource_type, "Serverless") == {} for resource_type in per_mode_types)
    assert all(serving("staging", resource_type, "Serverless") for resource_type in per_mode_types)


@pytest.mark.parametrize("stage", ["staging", "prod"])
def test_outputs_name_the_endpoints_state_machine_and_topics(synthesized_app, stage_configs, stage):
    outputs = synthesized_app.template(stage, "Serving")["Outputs"]
    inference = stage_configs[stage].inference
    expected = {"ModelName", "ServingRoleArn", "AlarmTopicArn", "DashboardName", "RealtimeEndpointName"}
    if inference.serverless.enabled:
        expected.add("ServerlessEndpointName")
    if inference.asynchronous.enabled:
        expected |= {"AsyncModelName", "AsyncEndpointName", "AsyncSuccessTopicArn", "AsyncErrorTopicArn"}
    if inference.batch_transform.enabled:
        expected |= {"BatchTransformStateMachineArn", "BatchTransformFailureTopicArn"}
    assert set(outputs) == expected
    assert outputs["RealtimeEndpointName"]["Value"] == f"mlopskit-{stage}-realtime"
    assert outputs["DashboardName"]["Value"] == f"mlopskit-{stage}-serving"
    assert outputs["BatchTransformStateMachineArn"]["Value"]["Ref"].startswith("BatchTransformStateMachine")
    assert outputs["AsyncSuccessTopicArn"]["Value"]["Ref"].startswith("AsyncSuccessTopic")


def test_the_serving_stack_records_what_it_serves(synthesized_app):
    stack = synthesized_app.stack("staging", "Serving")
    (note,) = [
        entry["data"]
        for entries in stack.metadata.values()
        for entry in entries
        if entry["type"] == SERVING_SUMMARY_METADATA
    ]
    assert note == (
        "real-time endpoint mlopskit-staging-realtime (drift monitoring mlopskit-staging-data-quality: 4 feature "
        "alarms, retraining on mlopskit-staging-realtime-retrain); serverless endpoint mlopskit-staging-serverless; "
        "asynchronous endpoint mlopskit-staging-async; batch transform mlopskit-staging-batch-transform"
    )
