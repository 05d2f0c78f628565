"""The settings of a whole app: the selected stages, every stage and the delivery pipeline's, checked together."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from infra.config.delivery import DeliveryConfig, delivered_stage_problems, load_delivery_config
from infra.config.loading import (
    STAGE_SELECTION_CONTEXT_KEY,
    StageConfigError,
    cross_stage_problems,
    load_stage_configs,
)
from infra.config.sections import StageConfig


class AppSettings(NamedTuple):
    selected: list[StageConfig]
    every_stage: dict[str, StageConfig]  # what a stage shares depends on the others, selected or not
    delivery: DeliveryConfig


def load_app_settings(context: Mapping[str, Any]) -> AppSettings:
    """The app's settings from its CDK context, or every problem of all of them as one error."""
    problems: list[str] = []
    selected: list[StageConfig] = []
    every_stage: dict[str, StageConfig] = {}
    delivery = DeliveryConfig()
    try:
        selected = load_stage_configs(context)
        unselected = {key: value for key, value in context.items() if key != STAGE_SELECTION_CONTEXT_KEY}
        every_stage = {config.name: config for config in load_stage_configs(unselected)}
    except StageConfigError as error:
        problems.append(str(error))
    try:
        delivery = load_delivery_config(context)
    except StageConfigError as error:
        problems.append(str(error))
    if not problems:
        problems += delivered_stage_problems(delivery, selected)
        problems += cross_stage_problems(every_stage)
    if problems:
        raise StageConfigError("\n".join(problems))
    return AppSettings(selected, every_stage, delivery)
