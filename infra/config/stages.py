"""The deployment stages and how they relate: which stage's versions each one serves."""

from __future__ import annotations

from typing import Literal

STAGE_NAMES: tuple[str, ...] = ("dev", "staging", "prod")
StageName = Literal["dev", "staging", "prod"]

# A stage serves versions of its own model package group, except prod, which serves what staging served: staging
# grants prod its model data, serving image and registry (infra/foundation, infra/pipeline).
RELEASE_SOURCE_STAGE = "staging"
PROMOTION_SOURCE_STAGES = {"prod": RELEASE_SOURCE_STAGE}


def serving_source_stage(stage: str) -> str:
    """The stage whose model package group this stage serves."""
    return PROMOTION_SOURCE_STAGES.get(stage, stage)


def serving_consumer_stages(stage: str) -> tuple[str, ...]:
    """The other stages that serve this stage's model package versions."""
    return tuple(other for other in STAGE_NAMES if other != stage and serving_source_stage(other) == stage)
