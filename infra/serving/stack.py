"""The serving stack of a stage: the approved model package in every enabled inference mode, with its alarms,
dashboard and outputs."""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, CfnOutput, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import naming
from infra.config import StageConfig
from infra.foundation.stack import FoundationStack
from infra.naming import BucketPurpose
from infra.serving import SERVING_SUMMARY_METADATA
from infra.serving.asynchronous import AsyncEndpoint
from infra.serving.batch_transform import BatchTransform
from infra.serving.model import ServingModel
from infra.serving.monitoring import ASYNC_INVOCATIONS_METRIC, ServingDashboard, endpoint_metric, variant_metric
from infra.serving.notifications import NotificationKey, alarm_topic
from infra.serving.realtime import RealtimeEndpoint
from infra.serving.role import ServingRole
from infra.serving.serverless import ServerlessEndpoint
from infra.serving.source import ServedModelSource
from training_code.contract import MAX_PAYLOAD_VARIABLE

NO_MODEL_PACKAGE = "no approved model package configured (inference.model_package_arn)"
NO_MODE_ENABLED = "no inference mode enabled (inference.<mode>.enabled)"


def serving_skip_reason(config: StageConfig) -> str | None:
    """Why the stage gets no serving stack, or None when it gets one."""
    if not config.inference.model_package_arn:
        return NO_MODEL_PACKAGE
    if not config.inference.enabled_modes:
        return NO_MODE_ENABLED
    return None


class ServingStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: StageConfig, foundation: FoundationStack, **kwargs: Any
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"{config.resource_prefix}: endpoints and batch transform of the approved model package",
            **kwargs,
        )
        inference = config.inference
        key = foundation.encryption.key
        data = self._stage_bucket(config, BucketPurpose.DATA)
        artifacts = self._stage_bucket(config, BucketPurpose.ARTIFACTS)
        notification_key = NotificationKey(self, "NotificationKey", config=config)
        self.alarm_topic = alarm_topic(
            self, "AlarmTopic", key=notification_key.key, display_name=f"{config.resource_prefix}: serving alarms"
        )
        source = ServedModelSource.of(config)
        own_version = source.resource_prefix == config.resource_prefix
        self.role = ServingRole(
            self,
            "ServingRole",
            role_name=naming.serving_role_name(config),
            description=f"{config.resource_prefix}: the served model in every inference mode",
            source=source,
            source_key=key if own_version else None,
            key=key,
            in_vpc=config.pipeline.vpc is not None,
        )
        self.model = ServingModel(
            self,
            "Model",
            model_package_arn=inference.model_package_arn,
            role=self.role,
            vpc=config.pipeline.vpc,
        )
        dashboard = ServingDashboard(self, "Dashboard", config=config)
        served: list[str] = []
        outputs = {
            "ModelName": self.model.model_name,
            "ServingRoleArn": self.role.role_arn,
            "AlarmTopicArn": self.alarm_topic.topic_arn,
            "DashboardName": naming.serving_dashboard_name(config),
        }

        if inference.realtime.enabled:
            realtime = RealtimeEndpoint(
                self,
                "Realtime",
                config=config,
                model=self.model,
                role=self.role,
                key=key,
                artifacts=artifacts,
                alarm_topic=self.alarm_topic,
            )
            name = realtime.endpoint_name
            dashboard.add_endpoint(
                "Real-time", name, [variant_metric(name, "InvocationsPerInstance", cloudwatch.Stats.SUM)]
            )
            outputs["RealtimeEndpointName"] = name
            served.append(f"real-time endpoint {name}")

        if inference.serverless.enabled:
            serverless = ServerlessEndpoint(
                self, "Serverless", config=config, model=self.model, alarm_topic=self.alarm_topic
            )
            name = serverless.endpoint_name
            dashboard.add_endpoint(
                "Serverless",
                name,
                [
                    variant_metric(name, "ModelSetupTime", cloudwatch.Stats.AVERAGE, "cold-start setup time (µs)"),
                    variant_metric(name, "ServerlessConcurrentExecutionsUtilization", cloudwatch.Stats.MAXIMUM),
                ],
            )
            outputs["ServerlessEndpointName"] = name
            served.append(f"serverless endpoint {name}")

        if inference.asynchronous.enabled:
            # Its own model: the server's payload limit is the 1 GB of an asynchronous request, not 6 MB.
            async_model = ServingModel(
                self,
                "AsyncModel",
                model_package_arn=inference.model_package_arn,
                role=self.role,
                vpc=config.pipeline.vpc,
                environment={MAX_PAYLOAD_VARIABLE: str(inference.asynchronous.max_payload_mb)},
            )
            outputs["AsyncModelName"] = async_model.model_name
            asynchronous = AsyncEndpoint(
                self,
                "Async",
                config=config,
                model=async_model,
                key=key,
                artifacts=artifacts,
                notification_key=notification_key,
                role=self.role,
                alarm_topic=self.alarm_topic,
            )
            name = asynchronous.endpoint_name
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
            outputs["AsyncEndpointName"] = name
            outputs["AsyncSuccessTopicArn"] = asynchronous.success_topic.topic_arn
            outputs["AsyncErrorTopicArn"] = asynchronous.error_topic.topic_arn
            served.append(f"asynchronous endpoint {name}")

        if inference.batch_transform.enabled:
            batch = BatchTransform(
                self,
                "BatchTransform",
                config=config,
                model=self.model,
                key=key,
                data=data,
                artifacts=artifacts,
                role=self.role,
                notification_key=notification_key,
                alarm_topic=self.alarm_topic,
            )
            dashboard.add_state_machine("Batch transform", batch.state_machine)
            outputs["BatchTransformStateMachineArn"] = batch.state_machine.state_machine_arn
            outputs["BatchTransformFailureTopicArn"] = batch.failure_topic.topic_arn
            served.append(f"batch transform {batch.state_machine_name}")

        for output_name, value in outputs.items():
            CfnOutput(self, output_name, value=value)
        self.node.add_metadata(SERVING_SUMMARY_METADATA, "; ".join(served))

    def _stage_bucket(self, config: StageConfig, purpose: BucketPurpose) -> s3.IBucket:
        """The foundation's bucket by its deterministic name: the serving role's statements on it then render, and are
        acknowledged, as cdk-nag reads them (a cross-stack reference resolves only at synth)."""
        name = naming.bucket_name(config.resource_prefix, purpose, Aws.ACCOUNT_ID, Aws.REGION)
        return s3.Bucket.from_bucket_name(self, f"{purpose.capitalize()}Bucket", name)
