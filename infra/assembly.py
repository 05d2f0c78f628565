"""Builds the whole CDK app from its context: one stage per selected stage config, security checks on all.

With `delivery.enabled`, the delivery pipeline's stack owns staging and prod (it deploys them); the app itself then
holds only the other stages, so that no stage is synthesized twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import App

from infra import naming
from infra.config import (
    DELIVERED_STAGES,
    RELEASE_SOURCE_STAGE,
    STAGE_SELECTION_CONTEXT_KEY,
    DeliveryConfig,
    StageConfig,
    StageConfigError,
    cross_stage_problems,
    delivered_stage_problems,
    load_delivery_config,
    load_stage_configs,
    serving_consumer_stages,
)
from infra.foundation.sharing import ModelConsumer
from infra.promotion import DELIVERY_SUMMARY_METADATA
from infra.security import enable_security_checks
from infra.stage import MlopsStage, StageSharing

DELIVERY_CONSTRUCT_ID = "Delivery"
DELIVERY_DISABLED = (
    "disabled (delivery.enabled is false in cdk.json): staging and prod deploy with `cdk deploy` or the GitHub workflow"
)
DELIVERY_NOT_SELECTED = "not synthesized: the stage selection leaves out staging and prod, which the pipeline deploys"


def build_app(app: App) -> list[MlopsStage]:
    """Every selected stage, in stage order, whether at the app level or under the delivery pipeline."""
    context = app.node.get_all_context()
    configs, every_stage, delivery = _load(context)
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


def stage_sharing(
    config: StageConfig, every_stage: Mapping[str, StageConfig], delivery: DeliveryConfig
) -> StageSharing:
    """Which other accounts the stage admits: a stage that serves its versions from another account, and the
    delivery pipeline's account, which resolves the approved staging version."""
    consumers = tuple(
        ModelConsumer(stage, consumer.account, naming.serving_role_name(consumer))
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


def _load(context: Mapping[str, Any]) -> tuple[list[StageConfig], dict[str, StageConfig], DeliveryConfig]:
    """The selected stages, every stage (what a stage shares depends on the others), and the delivery settings;
    or every problem of all of them as one error."""
    problems: list[str] = []
    configs: list[StageConfig] = []
    every_stage: dict[str, StageConfig] = {}
    delivery = DeliveryConfig()
    try:
        configs = load_stage_configs(context)
        unselected = {key: value for key, value in context.items() if key != STAGE_SELECTION_CONTEXT_KEY}
        every_stage = {config.name: config for config in load_stage_configs(unselected)}
    except StageConfigError as error:
        problems.append(str(error))
    try:
        delivery = load_delivery_config(context)
    except StageConfigError as error:
        problems.append(str(error))
    if not problems:
        problems += delivered_stage_problems(delivery, configs)
        problems += cross_stage_problems(every_stage)
    if problems:
        raise StageConfigError("\n".join(problems))
    return configs, every_stage, delivery
