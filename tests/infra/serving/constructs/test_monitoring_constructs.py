"""EndpointAlarms and ServingDashboard on their own: thresholds from the alarm settings they are given, and a
dashboard of the given name with one row per mode added to it."""

from __future__ import annotations

import json

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_stepfunctions as sfn

from infra.config import ServingAlarms
from infra.serving.monitoring import EndpointAlarms, ServingDashboard, endpoint_metric, variant_metric
from tests.infra.serving.conftest import only, render
from tests.infra.serving.constructs.conftest import of_type, properties_of

ENDPOINT_NAME = "unit-endpoint"


def test_endpoint_alarms_take_their_thresholds_from_the_settings_and_notify_the_topic(bare):
    settings = ServingAlarms(
        latency_p99_microseconds=90_000, server_errors_per_minute=2, client_errors_per_minute=9, evaluation_minutes=4
    )
    EndpointAlarms(bare.stack, "Alarms", endpoint_name=ENDPOINT_NAME, settings=settings, topic=bare.alarm_topic)
    alarms = {a["AlarmName"]: a for a in properties_of(bare.template(), "AWS::CloudWatch::Alarm")}
    assert {name: (a["MetricName"], a["Threshold"]) for name, a in alarms.items()} == {
        f"{ENDPOINT_NAME}-server-errors": ("Invocation5XXErrors", 2),
        f"{ENDPOINT_NAME}-client-errors": ("Invocation4XXErrors", 9),
        f"{ENDPOINT_NAME}-model-latency-p99": ("ModelLatency", 90_000),
    }
    for alarm in alarms.values():
        assert alarm["EvaluationPeriods"] == alarm["DatapointsToAlarm"] == 4
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"] == [{"Ref": bare.logical_id(bare.alarm_topic)}]


def test_the_dashboard_has_the_given_name_and_a_row_per_added_mode(bare):
    dashboard = ServingDashboard(bare.stack, "Dashboard", dashboard_name="unit-serving")
    dashboard.add_endpoint(
        "Queued",
        ENDPOINT_NAME,
        [endpoint_metric(ENDPOINT_NAME, "ApproximateBacklogSize", cloudwatch.Stats.AVERAGE)],
        invocations=endpoint_metric(ENDPOINT_NAME, "InvocationsProcessed", cloudwatch.Stats.SUM),
    )
    dashboard.add_endpoint(
        "Instances", ENDPOINT_NAME, [variant_metric(ENDPOINT_NAME, "CPUUtilization", cloudwatch.Stats.AVERAGE)]
    )
    dashboard.add_state_machine(
        "Jobs", sfn.StateMachine.from_state_machine_name(bare.stack, "StateMachine", "unit-state-machine")
    )
    properties = only(of_type(bare.template(), "AWS::CloudWatch::Dashboard"))["Properties"]
    assert properties["DashboardName"] == "unit-serving"
    widgets = json.loads(render(properties["DashboardBody"]))["widgets"]
    assert [w["properties"]["markdown"] for w in widgets if w["type"] == "text"] == [
        "## Queued",
        "## Instances",
        "## Jobs",
    ]
    graphs = {w["properties"]["title"]: w["properties"]["metrics"] for w in widgets if w["type"] == "metric"}
    assert list(graphs) == [
        *(f"Queued: {graph}" for graph in ("invocations", "model latency (µs)", "errors", "capacity")),
        *(f"Instances: {graph}" for graph in ("invocations", "model latency (µs)", "errors", "capacity")),
        "Jobs: executions",
    ]
    assert [m[1] for m in graphs["Queued: invocations"]] == ["InvocationsProcessed"]
    assert [m[1] for m in graphs["Instances: invocations"]] == ["Invocations"]
    assert [m[1] for m in graphs["Instances: capacity"]] == ["CPUUtilization"]
    assert {m[1] for m in graphs["Jobs: executions"]} == {
        "ExecutionsStarted",
        "ExecutionsSucceeded",
        "ExecutionsFailed",
    }
