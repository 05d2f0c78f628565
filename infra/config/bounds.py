"""Limits that the stage config and the pipeline's parameters share, defined once: a value the config accepts as a
stage's default is one the pipeline accepts for an execution (pipelines/spec.py), and the other way round."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field


@dataclass(frozen=True)
class Bounds:
    minimum: int | float
    maximum: int | float

    def __contains__(self, value: int | float) -> bool:
        return self.minimum <= value <= self.maximum

    def field(self, default: int | float) -> Any:
        """A config field with this default, validated against these bounds."""
        return Field(default=default, ge=self.minimum, le=self.maximum)


TRAINING_INSTANCE_COUNT = Bounds(1, 16)
# MaxRuntimeInSeconds and MaxWaitTimeInSeconds of a training job: SageMaker allows at most 28 days.
JOB_SECONDS = Bounds(60, 28 * 24 * 3600)
TUNING_MAX_JOBS = Bounds(1, 500)
TUNING_MAX_PARALLEL_JOBS = Bounds(1, 100)
ACCURACY_THRESHOLD = Bounds(0.0, 1.0)
