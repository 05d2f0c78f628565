"""Serving alarms and their topic, and the per-stage dashboard."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.serving.monitoring import ASYNC_INVOCATIONS_METRIC, NOT_PUBLISHED_FOR_ASYNC
from tests.infra.serving.conftest import only, render

STAGES = ("staging", "prod")
ENDPOINT_ALARM_METRICS = {"Invocation5XXErrors", "Invocation4XXErrors", "ModelLatency"}


def dashboard(serving, stage: str) -> dict[str, Any]:
    return only(serving(stage, "AWS::CloudWatch::Dashboard"))["Properties"]


def alarm_topic_id(serving, stage: str) -> str:
    (topic_id,) = serving(stage, "AWS::SNS::Topic", "AlarmTopic")
    return topic_id


@pytest.mark.parametrize("stage", STAGES)
def test_every_endpoint_alarms_on_errors_and_latency_to_the_alarm_topic(serving, stage_configs, stage):
    inference = stage_configs[stage].inference
    topic = {"Ref": alarm_topic_id(serving, stage)}
    for prefix, endpoint, enabled in (
        ("Realtime", "realtime", inference.realtime.enabled),
        ("Serverless", "serverless", inference.serverless.enabled),
        ("Async", "async", inference.asynchronous.enabled),
    ):
        alarms = {
            a["Properties"]["MetricName"]: a["Properties"]
            for a in serving(stage, "AWS::CloudWatch::Alarm", f"{prefix}Alarms").values()
        }
        assert set(alarms) == (ENDPOINT_ALARM_METRICS if enabled else set()), (stage, prefix)
        for alarm in alarms.values():
            assert alarm["AlarmActions"] == [topic]
            assert alarm["AlarmName"].startswith(f"mlopskit-{stage}-{endpoint}-")
            assert alarm["TreatMissingData"] == "notBreaching", "no traffic is no failure"
            assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == inference.alarms.evaluation_minutes
        if enabled:
            assert alarms["Invocation4XXErrors"]["Threshold"] == inference.alarms.client_errors_per_minute


@pytest.mark.parametrize("stage", STAGES)
def test_the_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use(serving, stage):
    topic = serving(stage, "AWS::SNS::Topic")[alarm_topic_id(serving, stage)]["Properties"]
    key_id, key = next(iter(serving(stage, "AWS::KMS::Key").items()))
    assert topic["KmsMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert key["Properties"]["EnableKeyRotation"] is True
    statements = {s["Sid"]: s for s in key["Properties"]["KeyPolicy"]["Statement"]}
    cloudwatch = statements["AlarmsPublishToEncryptedTopics"]
    assert cloudwatch["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert sorted(cloudwatch["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    (policy,) = [
        p["Properties"]
        for p in serving(stage, "AWS::SNS::TopicPolicy").values()
        if p["Properties"]["Topics"] == [{"Ref": alarm_topic_id(serving, stage)}]
    ]
    (publish,) = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert publish["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert publish["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


@pytest.mark.parametrize("stage", STAGES)
def test_one_dashboard_per_stage_with_a_row_per_enabled_mode(serving, stage_configs, stage):
    properties = dashboard(serving, stage)
    assert properties["DashboardName"] == f"mlopskit-{stage}-serving"
    widgets = json.loads(render(properties["DashboardBody"]))["widgets"]
    headings = [w["properties"]["markdown"] for w in widgets if w["type"] == "text"]
    inference = stage_configs[stage].inference
    expected = [
        heading
        for heading, enabled in (
            ("## Real-time", inference.realtime.enabled),
            ("## Serverless", inference.serverless.enabled),
            ("## Asynchronous", inference.asynchronous.enabled),
            ("## Batch transform", inference.batch_transform.enabled),
        )
        if enabled
    ]
    assert headings == expected
    titles = {w["properties"]["title"] for w in widgets if w["type"] == "metric"}
    for heading in expected:
        mode = heading.removeprefix("## ")
        if mode == "Batch transform":
            assert f"{mode}: executions" in titles
        else:
            assert {
                f"{mode}: invocations",
                f"{mode}: model latency (µs)",
                f"{mode}: errors",
                f"{mode}: capacity",
            } <= titles


@pytest.mark.parametrize("stage", STAGES)
def test_dashboard_graphs_read_the_stage_endpoints(serving, stage):
    widgets = json.loads(render(dashboard(serving, stage)["DashboardBody"]))["widgets"]
    graphs: dict[str, list[tuple[str, ...]]] = {}
    for widget in widgets:
        if widget["type"] == "metric":
            graphs[widget["properties"]["title"]] = [
                tuple(part for part in metric if isinstance(part, str)) for metric in widget["properties"]["metrics"]
            ]
    realtime = (
        "AWS/SageMaker",
        "Invocations",
        "EndpointName",
        f"mlopskit-{stage}-realtime",
        "VariantName",
        "AllTraffic",
    )
    assert graphs["Real-time: invocations"] == [realtime]
    assert {metric[1] for metric in graphs["Asynchronous: capacity"]} == {
        "ApproximateBacklogSize",
        "ApproximateBacklogSizePerInstance",
        "ApproximateAgeOfOldestRequest",
    }
    assert {metric[1] for metric in graphs["Batch transform: executions"]} == {
        "ExecutionsStarted",
        "ExecutionsSucceeded",
        "ExecutionsFailed",
    }
    assert all(metric[3] == f"mlopskit-{stage}-async" for metric in graphs["Asynchronous: capacity"])


@pytest.mark.parametrize("stage", STAGES)
def test_nothing_reads_a_metric_that_asynchronous_endpoints_do_not_publish(serving, stage):
    """AWS: "Any metric not listed below is not published if the endpoint is enabled for asynchronous inference" —
    Invocations among them; an async graph of it would stay empty. It counts InvocationsProcessed instead."""
    async_endpoint = f"mlopskit-{stage}-async"
    widgets = json.loads(render(dashboard(serving, stage)["DashboardBody"]))["widgets"]
    async_metrics = [
        metric
        for widget in widgets
        if widget["type"] == "metric"
        for metric in widget["properties"]["metrics"]
        if async_endpoint in metric
    ]
    async_metrics += [
        (alarm["Properties"]["MetricName"],) for alarm in serving(stage, "AWS::CloudWatch::Alarm", "Async").values()
    ]
    names = {part for metric in async_metrics for part in metric if isinstance(part, str)}
    assert ASYNC_INVOCATIONS_METRIC in names
    assert not names & set(NOT_PUBLISHED_FOR_ASYNC)
    (invocations,) = [w for w in widgets if w.get("properties", {}).get("title") == "Asynchronous: invocations"]
    assert [m[:4] for m in invocations["properties"]["metrics"]] == [
        ["AWS/SageMaker", ASYNC_INVOCATIONS_METRIC, "EndpointName", async_endpoint]
    ]
