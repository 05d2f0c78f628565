"""The serving stack of a stage: the approved model package in every enabled inference mode, with its alarms,
dashboard and outputs."""

from __future__ import annotations

from typing import Any

from aws_cdk import Aws, CfnOutput, Stack
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import naming
from infra.config import StageConfig
from infra.foundation.removal import removal_policy
from infra.foundation.stack import FoundationStack
from infra.naming import BucketPurpose
from infra.serving import SERVING_SUMMARY_METADATA
from infra.serving.model import ServingModel
from infra.serving.modes import SERVING_MODES, SharedServing
from infra.serving.monitoring import ServingDashboard
from infra.serving.notifications import NotificationKey, alarm_topic
from infra.serving.role import ServingRole
from infra.serving.source import ServedModelSource

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
        key = foundation.encryption.key
        data = self._stage_bucket(config, BucketPurpose.DATA)
        artifacts = self._stage_bucket(config, BucketPurpose.ARTIFACTS)
        notification_key = NotificationKey(
            self, "NotificationKey", resource_prefix=config.resource_prefix, removal_policy=removal_policy(config)
        )
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
            model_package_arn=config.inference.model_package_arn,
            role=self.role,
            vpc=config.pipeline.vpc,
        )
        dashboard_name = naming.serving_dashboard_name(config)
        dashboard = ServingDashboard(self, "Dashboard", dashboard_name=dashboard_name)
        outputs = {
            "ModelName": self.model.model_name,
            "ServingRoleArn": self.role.role_arn,
            "AlarmTopicArn": self.alarm_topic.topic_arn,
            "DashboardName": dashboard_name,
        }
        shared = SharedServing(
            config=config,
            model=self.model,
            role=self.role,
            key=key,
            data=data,
            artifacts=artifacts,
            notification_key=notification_key,
            alarm_topic=self.alarm_topic,
        )
        served: list[str] = []
        for mode in SERVING_MODES:
            settings = mode.settings(config.inference)
            if not settings.enabled:
                continue
            built = mode.build(self, settings, shared)
            mode.add_dashboard_row(dashboard, built)
            outputs.update(mode.outputs(built))
            served.append(mode.summary(built))

        for output_name, value in outputs.items():
            CfnOutput(self, output_name, value=value)
        self.node.add_metadata(SERVING_SUMMARY_METADATA, "; ".join(served))

    def _stage_bucket(self, config: StageConfig, purpose: BucketPurpose) -> s3.IBucket:
        """The foundation's bucket by its deterministic name: the serving role's statements on it then render, and are
        acknowledged, as cdk-nag reads them (a cross-stack reference resolves only at synth)."""
        name = naming.bucket_name(config.resource_prefix, purpose, Aws.ACCOUNT_ID, Aws.REGION)
        return s3.Bucket.from_bucket_name(self, f"{purpose.capitalize()}Bucket", name)
