"""Serving alarms, which notify the stage's alarm topic, and the serving dashboard."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import ServingAlarms
from infra.naming import VARIANT_NAME

SAGEMAKER_NAMESPACE = "AWS/SageMaker"
PERIOD = Duration.minutes(1)
# Metrics that SageMaker does not publish for asynchronous endpoints (AWS: "Alarms and logs for tracking metrics from
# asynchronous endpoints"), and the one it publishes per processed request instead.
NOT_PUBLISHED_FOR_ASYNC = ("Invocations", "InvocationsPerInstance", "OverheadLatency")
ASYNC_INVOCATIONS_METRIC = "InvocationsProcessed"


def variant_metric(endpoint_name: str, metric_name: str, statistic: str, label: str | None = None) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=SAGEMAKER_NAMESPACE,
        metric_name=metric_name,
        dimensions_map={"EndpointName": endpoint_name, "VariantName": VARIANT_NAME},
        statistic=statistic,
        period=PERIOD,
        label=label,
    )


def endpoint_metric(endpoint_name: str, metric_name: str, statistic: str) -> cloudwatch.Metric:
    """The metrics SageMaker publishes per endpoint only: the asynchronous queue's."""
    return cloudwatch.Metric(
        namespace=SAGEMAKER_NAMESPACE,
        metric_name=metric_name,
        dimensions_map={"EndpointName": endpoint_name},
        statistic=statistic,
        period=PERIOD,
    )


def notifying_alarm(
    scope: Construct,
    construct_id: str,
    *,
    alarm_name: str,
    metric: cloudwatch.IMetric,
    threshold: float,
    evaluation_minutes: int,
    topic: sns.ITopic,
    description: str,
) -> cloudwatch.Alarm:
    """Alarms at threshold or above for `evaluation_minutes` in a row; no data (no traffic) is not a breach."""
    alarm = cloudwatch.Alarm(
        scope,
        construct_id,
        alarm_name=alarm_name,
        alarm_description=description,
        metric=metric,
        threshold=threshold,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluation_periods=evaluation_minutes,
        datapoints_to_alarm=evaluation_minutes,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    alarm.add_alarm_action(cloudwatch_actions.SnsAction(topic))
    return alarm


class EndpointAlarms(Construct):
    """Server errors, client errors and p99 model latency of an endpoint's variant."""

    def __init__(
        self, scope: Construct, construct_id: str, *, endpoint_name: str, settings: ServingAlarms, topic: sns.ITopic
    ) -> None:
        super().__init__(scope, construct_id)
        common = {"evaluation_minutes": settings.evaluation_minutes, "topic": topic}
        self.server_errors = notifying_alarm(
            self,
            "ServerErrors",
            alarm_name=f"{endpoint_name}-server-errors",
            metric=variant_metric(endpoint_name, "Invocation5XXErrors", cloudwatch.Stats.SUM),
            threshold=settings.server_errors_per_minute,
            description=f"{endpoint_name}: the model container answers with 5XX errors",
            **common,
        )
        self.client_errors = notifying_alarm(
            self,
            "ClientErrors",
            alarm_name=f"{endpoint_name}-client-errors",
            metric=variant_metric(endpoint_name, "Invocation4XXErrors", cloudwatch.Stats.SUM),
            threshold=settings.client_errors_per_minute,
            description=f"{endpoint_name}: requests are refused with 4XX errors (malformed or too large)",
            **common,
        )
        self.latency = notifying_alarm(
            self,
            "Latency",
            alarm_name=f"{endpoint_name}-model-latency-p99",
            metric=variant_metric(endpoint_name, "ModelLatency", cloudwatch.Stats.p(99)),
            threshold=settings.latency_p99_microseconds,
            description=f"{endpoint_name}: p99 model latency (microseconds) is above its threshold",
            **common,
        )


class ServingDashboard(Construct):
    """One dashboard per stage, a row per enabled mode."""

    WIDTH = 6
    HEIGHT = 6

    def __init__(self, scope: Construct, construct_id: str, *, dashboard_name: str) -> None:
        super().__init__(scope, construct_id)
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=dashboard_name)

    def add_endpoint(
        self,
        title: str,
        endpoint_name: str,
        capacity: list[cloudwatch.IMetric],
        invocations: cloudwatch.IMetric | None = None,
    ) -> None:
        """Invocations (the variant's `Invocations` unless the mode publishes another), latency, errors, and the
        mode's capacity or backlog metrics."""
        self._add_row(
            title,
            self._graph(
                f"{title}: invocations",
                [invocations or variant_metric(endpoint_name, "Invocations", cloudwatch.Stats.SUM)],
            ),
            self._graph(
                f"{title}: model latency (µs)",
                [
                    variant_metric(endpoint_name, "ModelLatency", cloudwatch.Stats.p(50), "p50"),
                    variant_metric(endpoint_name, "ModelLatency", cloudwatch.Stats.p(99), "p99"),
                ],
            ),
            self._graph(
                f"{title}: errors",
                [
                    variant_metric(endpoint_name, "Invocation4XXErrors", cloudwatch.Stats.SUM, "4XX"),
                    variant_metric(endpoint_name, "Invocation5XXErrors", cloudwatch.Stats.SUM, "5XX"),
                ],
            ),
            self._graph(f"{title}: capacity", capacity),
        )

    def add_state_machine(self, title: str, state_machine: sfn.IStateMachine) -> None:
        self._add_row(
            title,
            self._graph(
                f"{title}: executions",
                [
                    state_machine.metric_started(label="started"),
                    state_machine.metric_succeeded(label="succeeded"),
                    state_machine.metric_failed(label="failed"),
                ],
            ),
        )

    def _graph(self, title: str, metrics: list[cloudwatch.IMetric]) -> cloudwatch.GraphWidget:
        return cloudwatch.GraphWidget(title=title, left=metrics, width=self.WIDTH, height=self.HEIGHT)

    def _add_row(self, title: str, *widgets: cloudwatch.IWidget) -> None:
        self.dashboard.add_widgets(cloudwatch.TextWidget(markdown=f"## {title}", width=24, height=1))
        self.dashboard.add_widgets(*widgets)
