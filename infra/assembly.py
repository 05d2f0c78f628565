"""Builds the whole CDK app from its context: one stage per selected stage config, security checks on all.

With `delivery.enabled`, the delivery pipeline's stack owns staging and prod (it deploys them); the app itself then
holds only the other stages, so that no stage is synthesized twice.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import App, Aws

from infra import naming
from infra.config import (
    DELIVERED_STAGES,
    RELEASE_SOURCE_STAGE,
    AppSettings,
    DeliveryConfig,
    StageConfig,
    load_app_settings,
    serving_consumer_stages,
)
from infra.foundation.sharing import DriftRetraining, ModelConsumer
from infra.layout import ArtifactPrefix
from infra.naming import BucketPurpose
from infra.promotion import DELIVERY_SUMMARY_METADATA
from infra.security import enable_security_checks
from infra.stage import MlopsStage, StageSharing

DELIVERY_CONSTRUCT_ID = "Delivery"
DELIVERY_DISABLED = (
    "disabled (delivery.enabled is false in cdk.json): staging and prod deploy with `cdk deploy` or the GitHub workflow"
)
DELIVERY_NOT_SELECTED = "not synthesized: the stage selection leaves out staging and prod, which the pipeline deploys"


def build_app(app: App, settings: AppSettings | None = None) -> list[MlopsStage]:
    """Every selected stage, in stage order, whether at the app level or under the delivery pipeline; `settings`
    are the app context's, loaded here unless the caller has loaded them already."""
    configs, every_stage, delivery = settings or load_app_settings(app.node.get_all_context())
    sharing = {config.name: stage_sharing(config, every_stage, delivery) for config in configs}
    delivered = {config.name: config for config in configs if delivery.enabled and config.name in DELIVERED_STAGES}
    stages = [
        MlopsStage(app, config, sharing=sharing[config.name]) for config in configs if config.name not in delivered
    ]
    if delivered:
        from infra.promotion.stack import DeliveryStack

        pipeline = DeliveryStack(
            app,
            DELIVERY_CONSTRUCT_ID,
            project_name=delivered["staging"].project_name,
            delivery=delivery,
            staging=delivered["staging"],
            prod=delivered["prod"],
            sharing=sharing,
        )
        stages += [pipeline.staging, pipeline.prod]
    elif stages:
        reason = DELIVERY_NOT_SELECTED if delivery.enabled else DELIVERY_DISABLED
        stages[0].foundation.node.add_metadata(DELIVERY_SUMMARY_METADATA, reason)
    enable_security_checks(app)
    order = [config.name for config in configs]
    return sorted(stages, key=lambda stage: order.index(stage.config.name))


def drift_retraining(consumer: StageConfig) -> DriftRetraining | None:
    """Where the consumer monitors its endpoint and retrains on drift, what this stage's retraining rule matches."""
    monitoring = consumer.monitoring
    if not (monitoring.enabled and monitoring.retrain_on_drift and consumer.inference.baseline is not None):
        return None
    endpoint = naming.realtime_endpoint_name(consumer)
    bucket = naming.bucket_name(
        consumer.resource_prefix, BucketPurpose.ARTIFACTS, consumer.account, consumer.region or Aws.REGION
    )
    return DriftRetraining(
        alarm_name=naming.retrain_alarm_name(consumer),
        threshold=monitoring.retrain_drift_threshold,
        endpoint_name=endpoint,
        reports_uri=f"s3://{bucket}/{ArtifactPrefix.MONITORING}{endpoint}/",
    )


def stage_sharing(
    config: StageConfig, every_stage: Mapping[str, StageConfig], delivery: DeliveryConfig
) -> StageSharing:
    """Which other accounts the stage admits: a stage that serves its versions from another account, and the
    delivery pipeline's account, which resolves the approved staging version."""
    consumers = tuple(
        ModelConsumer(stage, consumer.account, naming.serving_role_name(consumer), drift_retraining(consumer))
        for stage in serving_consumer_stages(config.name)
        if (consumer := every_stage[stage]).account and consumer.account != config.account
    )
    readers = (
        (delivery.account,)
        if delivery.enabled
        and config.name == RELEASE_SOURCE_STAGE
        and delivery.account
        and config.account not in (None, delivery.account)
        else ()
    )
    return StageSharing(model_consumers=consumers, registry_reader_accounts=readers)
