"""Builds the whole CDK app from its context: one stage per selected stage config, security checks on all.

With `delivery.enabled`, the delivery pipeline's stack owns staging and prod (it deploys them); the app itself then
holds only the other stages, so that no stage is synthesized twice.
"""

from __future__ import annotations

from aws_cdk import App

from infra.config import (
    DELIVERED_STAGES,
    DeliveryConfig,
    StageConfig,
    StageConfigError,
    delivered_stage_problems,
    load_delivery_config,
    load_stage_configs,
)
from infra.promotion import DELIVERY_SUMMARY_METADATA
from infra.security import enable_security_checks
from infra.stage import MlopsStage

DELIVERY_CONSTRUCT_ID = "Delivery"
DELIVERY_DISABLED = (
    "disabled (delivery.enabled is false in cdk.json): staging and prod deploy with `cdk deploy` or the GitHub workflow"
)
DELIVERY_NOT_SELECTED = "not synthesized: the stage selection leaves out staging and prod, which the pipeline deploys"


def build_app(app: App) -> list[MlopsStage]:
    """Every selected stage, in stage order, whether at the app level or under the delivery pipeline."""
    context = app.node.get_all_context()
    configs, delivery = _load(context)
    delivered = {config.name: config for config in configs if delivery.enabled and config.name in DELIVERED_STAGES}
    stages = [MlopsStage(app, config) for config in configs if config.name not in delivered]
    if delivered:
        from infra.promotion.stack import DeliveryStack

        pipeline = DeliveryStack(
            app,
            DELIVERY_CONSTRUCT_ID,
            project_name=delivered["staging"].project_name,
            delivery=delivery,
            staging=delivered["staging"],
            prod=delivered["prod"],
        )
        stages += [pipeline.staging, pipeline.prod]
    elif stages:
        reason = DELIVERY_NOT_SELECTED if delivery.enabled else DELIVERY_DISABLED
        stages[0].foundation.node.add_metadata(DELIVERY_SUMMARY_METADATA, reason)
    enable_security_checks(app)
    order = [config.name for config in configs]
    return sorted(stages, key=lambda stage: order.index(stage.config.name))


def _load(context: dict) -> tuple[list[StageConfig], DeliveryConfig]:
    """Both configurations, or every problem of both as one error."""
    problems: list[str] = []
    configs: list[StageConfig] = []
    delivery = DeliveryConfig()
    try:
        configs = load_stage_configs(context)
    except StageConfigError as error:
        problems.append(str(error))
    try:
        delivery = load_delivery_config(context)
    except StageConfigError as error:
        problems.append(str(error))
    if not problems:
        problems += delivered_stage_problems(delivery, configs)
    if problems:
        raise StageConfigError("\n".join(problems))
    return configs, delivery
