"""The pipeline's parameters and the stage config share their limits: a stage default is a value a run accepts."""

from __future__ import annotations

import pytest

from pipelines import spec
from pipelines.spec import ParameterName

# (config section, key, the parameter whose default it is)
SHARED = [
    ("training", "instance_count", ParameterName.TRAINING_INSTANCE_COUNT),
    ("training", "max_runtime_seconds", ParameterName.MAX_RUNTIME_SECONDS),
    ("training", "max_wait_seconds", ParameterName.MAX_WAIT_SECONDS),
    ("pipeline", "tuning_max_jobs", ParameterName.TUNING_MAX_JOBS),
    ("pipeline", "tuning_max_parallel_jobs", ParameterName.TUNING_MAX_PARALLEL_JOBS),
    ("pipeline", "accuracy_threshold", ParameterName.ACCURACY_THRESHOLD),
]


def config_limits(config, section: str, key: str) -> dict[str, float]:
    """The field's pydantic limits, e.g. {"ge": 1, "le": 16}."""
    field = type(getattr(config, section)).model_fields[key]
    return {
        name: getattr(limit, name) for limit in field.metadata for name in ("ge", "gt", "le") if hasattr(limit, name)
    }


@pytest.mark.parametrize(("section", "key", "parameter"), SHARED)
def test_config_and_parameter_limits_are_the_same_bounds(stage_configs, section, key, parameter):
    config = stage_configs["dev"]
    bounds = {p.name: p for p in spec.parameter_specs(config, "bucket", "image")}[parameter].bounds
    limits = config_limits(config, section, key)
    assert limits.get("ge", limits.get("gt")) == bounds.minimum
    assert limits["le"] == bounds.maximum
    assert getattr(getattr(config, section), key) in bounds


@pytest.mark.parametrize(("section", "key", "parameter"), SHARED)
def test_a_run_accepts_the_bounds_and_refuses_beyond_them(stage_configs, section, key, parameter):
    parameters = {p.name: p for p in spec.parameter_specs(stage_configs["dev"], "bucket", "image")}
    bounds = parameters[parameter].bounds
    for inside in (bounds.minimum, bounds.maximum):
        assert parameters[parameter].parse(str(inside)) == inside
    with pytest.raises(ValueError, match="is outside"):
        parameters[parameter].parse(str(bounds.maximum + 1))
