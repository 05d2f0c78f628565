"""The inference modes as one table: for each, the settings section that enables it, the constructs it adds to the
serving stack, its dashboard row, its stack outputs and the line that says what it serves. The stack builds the
pieces the modes share, then every enabled mode in table order.

The constructs never see the stage config: the stack and this table read it, and give each construct its own settings
section and the names computed here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra import naming
from infra.config import AsyncInference, InferenceSettings, RealtimeInference, ServerlessInference, StageConfig
from infra.config import BatchTransform as BatchTransformSettings
from infra.foundation.removal import removal_policy
from infra.serving.asynchronous import AsyncEndpoint
from infra.serving.batch_transform import BatchTransform
from infra.serving.model import ServingModel
from infra.serving.model_monitor import DriftMonitoring, ModelQualityMonitoring, RetrainTarget
from infra.serving.monitoring import ASYNC_INVOCATIONS_METRIC, ServingDashboard, endpoint_metric, variant_metric
from infra.serving.notifications import NotificationKey
from infra.serving.realtime import RealtimeEndpoint
from infra.serving.role import ServingRole
from infra.serving.serverless import ServerlessEndpoint
from infra.serving.source import ServedModelSource
from training_code.contract import MAX_PAYLOAD_VARIABLE

Built = TypeVar("Built")


@dataclass(frozen=True)
class SharedServing:
    """What the stack builds once for every mode: the stage's config and key, its buckets, the served model and
    its role, the notification key and the alarm topic."""

    config: StageConfig
    model: ServingModel
    role: ServingRole
    key: kms.IKey
    data: s3.IBucket
    artifacts: s3.IBucket
    notification_key: NotificationKey
    alarm_topic: sns.ITopic


@dataclass(frozen=True)
class ServingMode(Generic[Built]):
    # The mode's section of the inference settings (one of infra.config.MODE_NAMES); its `enabled` turns it on.
    section: str
    build: Callable[[Construct, Any, SharedServing], Built]
    add_dashboard_row: Callable[[ServingDashboard, Built], None]
    outputs: Callable[[Built], dict[str, str]]
    summary: Callable[[Built], str]

    def settings(self, inference: InferenceSettings) -> Any:
        return getattr(inference, self.section)


def _realtime(scope: Construct, settings: RealtimeInference, shared: SharedServing) -> RealtimeEndpoint:
    config = shared.config
    realtime = RealtimeEndpoint(
        scope,
        "Realtime",
        settings=settings,
        alarm_settings=config.inference.alarms,
        endpoint_name=naming.realtime_endpoint_name(config),
        model_name=shared.model.model_name,
        role=shared.role,
        key=shared.key,
        artifacts=shared.artifacts,
        alarm_topic=shared.alarm_topic,
    )
    baseline = config.inference.baseline
    if config.monitoring.enabled and baseline is None:
        # A version registered before baselines existed, or rolled back to, still deploys; the summary says why
        # nothing watches it.
        realtime.monitoring_skipped = f"{config.inference.model_package_arn} has no recorded baseline"
    elif config.monitoring.enabled and baseline is not None:
        source = ServedModelSource.of(config)
        realtime.monitoring = DriftMonitoring(
            realtime,
            "DriftMonitoring",
            settings=config.monitoring,
            baseline=baseline,
            drift_threshold=config.pipeline.drift_threshold,
            endpoint=realtime.endpoint,
            endpoint_name=realtime.endpoint_name,
            schedule_name=naming.data_quality_schedule_name(config),
            role=shared.role,
            source=source,
            key=shared.key,
            artifacts=shared.artifacts,
            alarm_topic=shared.alarm_topic,
            # A version of a stage in another account: that account trains the next one.
            retrain=RetrainTarget.of(
                source,
                forwarded=source.resource_prefix != config.resource_prefix
                and config.account is not None
                and source.account != config.account,
            ),
            retrain_alarm_name=naming.retrain_alarm_name(config),
            vpc=config.pipeline.vpc,
        )
        if config.monitoring.model_quality:
            realtime.quality = ModelQualityMonitoring(
                realtime,
                "ModelQualityMonitoring",
                settings=config.monitoring,
                accuracy_threshold=config.pipeline.accuracy_threshold,
                endpoint=realtime.endpoint,
                endpoint_name=realtime.endpoint_name,
                schedule_name=naming.model_quality_schedule_name(config),
                role=shared.role,
                key=shared.key,
                artifacts=shared.artifacts,
                alarm_topic=shared.alarm_topic,
                vpc=config.pipeline.vpc,
                baseline_constraints=baseline.model_constraints,
            )
    return realtime


def _realtime_summary(realtime: RealtimeEndpoint) -> str:
    monitoring = realtime.monitoring
    if realtime.monitoring_skipped:
        return f"real-time endpoint {realtime.endpoint_name} (no drift monitoring: {realtime.monitoring_skipped})"
    if monitoring is None:
        return f"real-time endpoint {realtime.endpoint_name}"
    retrain = monitoring.retrain_alarm_name
    action = f", retraining on {retrain}" if retrain is not None else ""
    quality = f"; model quality {realtime.quality.schedule_name}" if realtime.quality is not None else ""
    return (
        f"real-time endpoint {realtime.endpoint_name} (drift monitoring {monitoring.schedule_name}: "
        f"{len(monitoring.drift_alarms)} feature alarms{action}{quality})"
    )


def _realtime_row(dashboard: ServingDashboard, realtime: RealtimeEndpoint) -> None:
    name = realtime.endpoint_name
    dashboard.add_endpoint("Real-time", name, [variant_metric(name, "InvocationsPerInstance", cloudwatch.Stats.SUM)])


def _serverless(scope: Construct, settings: ServerlessInference, shared: SharedServing) -> ServerlessEndpoint:
    return ServerlessEndpoint(
        scope,
        "Serverless",
        settings=settings,
        alarm_settings=shared.config.inference.alarms,
        endpoint_name=naming.serverless_endpoint_name(shared.config),
        model_name=shared.model.model_name,
        alarm_topic=shared.alarm_topic,
    )


def _serverless_row(dashboard: ServingDashboard, serverless: ServerlessEndpoint) -> None:
    name = serverless.endpoint_name
    dashboard.add_endpoint(
        "Serverless",
        name,
        [
            variant_metric(name, "ModelSetupTime", cloudwatch.Stats.AVERAGE, "cold-start setup time (µs)"),
            variant_metric(name, "ServerlessConcurrentExecutionsUtilization", cloudwatch.Stats.MAXIMUM),
        ],
    )


@dataclass(frozen=True)
class AsyncServing:
    model: ServingModel
    endpoint: AsyncEndpoint


def _asynchronous(scope: Construct, settings: AsyncInference, shared: SharedServing) -> AsyncServing:
    config = shared.config
    # Its own model: the server's payload limit is the 1 GB of an asynchronous request, not 6 MB.
    model = ServingModel(
        scope,
        "AsyncModel",
        model_package_arn=config.inference.model_package_arn,
        role=shared.role,
        vpc=config.pipeline.vpc,
        environment={MAX_PAYLOAD_VARIABLE: str(settings.max_payload_mb)},
    )
    endpoint = AsyncEndpoint(
        scope,
        "Async",
        settings=settings,
        alarm_settings=config.inference.alarms,
        endpoint_name=naming.async_endpoint_name(config),
        model_name=model.model_name,
        key=shared.key,
        artifacts=shared.artifacts,
        notification_key=shared.notification_key,
        role=shared.role,
        alarm_topic=shared.alarm_topic,
    )
    return AsyncServing(model=model, endpoint=endpoint)


def _asynchronous_row(dashboard: ServingDashboard, asynchronous: AsyncServing) -> None:
    name = asynchronous.endpoint.endpoint_name
    dashboard.add_endpoint(
        "Asynchronous",
        name,
        [
            endpoint_metric(name, "ApproximateBacklogSize", cloudwatch.Stats.AVERAGE),
            endpoint_metric(name, "ApproximateBacklogSizePerInstance", cloudwatch.Stats.AVERAGE),
            endpoint_metric(name, "ApproximateAgeOfOldestRequest", cloudwatch.Stats.MAXIMUM),
        ],
        # Asynchronous endpoints publish no Invocations (AWS: "Alarms and logs for tracking metrics from
        # asynchronous endpoints"); they count the requests they processed.
        invocations=endpoint_metric(name, ASYNC_INVOCATIONS_METRIC, cloudwatch.Stats.SUM),
    )


def _asynchronous_outputs(asynchronous: AsyncServing) -> dict[str, str]:
    endpoint = asynchronous.endpoint
    return {
        "AsyncModelName": asynchronous.model.model_name,
        "AsyncEndpointName": endpoint.endpoint_name,
        "AsyncSuccessTopicArn": endpoint.success_topic.topic_arn,
        "AsyncErrorTopicArn": endpoint.error_topic.topic_arn,
    }


def _batch_transform(scope: Construct, settings: BatchTransformSettings, shared: SharedServing) -> BatchTransform:
    config = shared.config
    return BatchTransform(
        scope,
        "BatchTransform",
        settings=settings,
        state_machine_name=naming.batch_transform_state_machine_name(config),
        job_name_prefix=naming.transform_job_name_prefix(config),
        role_description=f"{config.resource_prefix}: the batch transform state machine",
        tags=config.all_tags,
        removal_policy=removal_policy(config),
        model_name=shared.model.model_name,
        key=shared.key,
        data=shared.data,
        artifacts=shared.artifacts,
        role=shared.role,
        notification_key=shared.notification_key,
        alarm_topic=shared.alarm_topic,
    )


SERVING_MODES: tuple[ServingMode[Any], ...] = (
    ServingMode(
        section="realtime",
        build=_realtime,
        add_dashboard_row=_realtime_row,
        outputs=lambda realtime: {"RealtimeEndpointName": realtime.endpoint_name},
        summary=_realtime_summary,
    ),
    ServingMode(
        section="serverless",
        build=_serverless,
        add_dashboard_row=_serverless_row,
        outputs=lambda serverless: {"ServerlessEndpointName": serverless.endpoint_name},
        summary=lambda serverless: f"serverless endpoint {serverless.endpoint_name}",
    ),
    ServingMode(
        section="asynchronous",
        build=_asynchronous,
        add_dashboard_row=_asynchronous_row,
        outputs=_asynchronous_outputs,
        summary=lambda asynchronous: f"asynchronous endpoint {asynchronous.endpoint.endpoint_name}",
    ),
    ServingMode(
        section="batch_transform",
        build=_batch_transform,
        add_dashboard_row=lambda dashboard, batch: dashboard.add_state_machine("Batch transform", batch.state_machine),
        outputs=lambda batch: {
            "BatchTransformStateMachineArn": batch.state_machine.state_machine_arn,
            "BatchTransformFailureTopicArn": batch.failure_topic.topic_arn,
        },
        summary=lambda batch: f"batch transform {batch.state_machine_name}",
    ),
)
