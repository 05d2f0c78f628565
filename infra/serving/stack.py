"""The serving stack of a stage: the approved model package in every enabled inference mode, with its alarms,
dashboard and outputs."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from infra import naming
from infra.config import StageConfig
from infra.foundation.stack import FoundationStack
from infra.serving import SERVING_SUMMARY_METADATA
from infra.serving.asynchronous import AsyncEndpoint
from infra.serving.batch_transform import BatchTransform
from infra.serving.model import ServingModel
from infra.serving.monitoring import ServingDashboard, endpoint_metric, variant_metric
from infra.serving.notifications import NotificationKey, alarm_topic
from infra.serving.realtime import RealtimeEndpoint
from infra.serving.serverless import ServerlessEndpoint

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
        storage = foundation.storage
        execution_role = foundation.roles.sagemaker_execution
        notification_key = NotificationKey(self, "NotificationKey", config=config)
        self.alarm_topic = alarm_topic(
            self, "AlarmTopic", key=notification_key.key, display_name=f"{config.resource_prefix}: serving alarms"
        )
        self.model = ServingModel(self, "Model", config=config, execution_role=execution_role)
        dashboard = ServingDashboard(self, "Dashboard", config=config)
        served: list[str] = []
        outputs = {
            "ModelName": self.model.model_name,
            "AlarmTopicArn": self.alarm_topic.topic_arn,
            "DashboardName": naming.serving_dashboard_name(config),
        }

        if inference.realtime.enabled:
            realtime = RealtimeEndpoint(
                self,
                "Realtime",
                config=config,
                model=self.model,
                key=key,
                artifacts=storage.artifacts,
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
            asynchronous = AsyncEndpoint(
                self,
                "Async",
                config=config,
                model=self.model,
                key=key,
                artifacts=storage.artifacts,
                notification_key=notification_key,
                execution_role=execution_role,
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
                data=storage.data,
                artifacts=storage.artifacts,
                execution_role=execution_role,
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
