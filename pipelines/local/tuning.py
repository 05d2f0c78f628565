"""A tuning step run locally: trials drawn from the definition's parameter ranges, run side by side up to its
parallel limit, ranked by the final value of its objective metric read from each trial's log with the definition's
own metric regexes, as SageMaker ranks them.

SageMaker's Bayesian strategy and its automatic early stopping of trials are services, not code this project owns;
locally the trials are drawn at random (seeded, so a run is repeatable), stratified so that even a few trials span
every range and try every category about equally often, and each runs to its own early stopping.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pipelines.local.jobs import ContainerRoot, JobFailed, TrainingOutcome, run_training_job

Client = Any
# SageMaker passes the objective's name to every trial as this hyperparameter.
TUNING_OBJECTIVE_HYPERPARAMETER = "_tuning_objective_metric"


@dataclass(frozen=True)
class Trial:
    number: int
    name: str
    tuned: dict[str, str]  # as SageMaker passes tuned values: plain strings, categories as their encoded values


@dataclass(frozen=True)
class TrialResult:
    trial: Trial
    outcome: TrainingOutcome | None
    objective: float | None
    failure: str | None = None


class TuningFailed(Exception):
    pass


def _scaled(low: float, high: float, scaling: str | None, position: float) -> float:
    """The value at `position` (in [0, 1)) of [low, high] on the range's scale ("Auto" and "Linear": the values)."""
    if scaling == "Logarithmic":
        return math.exp(math.log(low) + position * (math.log(high) - math.log(low)))
    if scaling == "ReverseLogarithmic":  # dense near 1, for ranges inside [0, 1)
        return 1 - math.exp(math.log(1 - high) + position * (math.log(1 - low) - math.log(1 - high)))
    return low + position * (high - low)


def _strata(count: int, generator: random.Random) -> list[float]:
    """One position in each of `count` equal slices of [0, 1), in random order: few trials still span the range."""
    slices = generator.sample(range(count), count)
    return [(index + generator.random()) / count for index in slices]


def _balanced(values: list[str], count: int, generator: random.Random) -> list[str]:
    """`count` draws in which every value comes up as often as any other, give or take one, in random order: with
    4 trials and 4 optimizers, each optimizer gets one trial (independent draws would repeat some, and skip some)."""
    drawn: list[str] = []
    while len(drawn) < count:
        drawn += generator.sample(values, len(values))
    return drawn[:count]


def draw(ranges: Mapping[str, list[dict[str, Any]]], count: int, generator: random.Random) -> list[dict[str, str]]:
    """`count` points of the search space, scaled as each range says, stratified per dimension."""
    points: list[dict[str, str]] = [{} for _ in range(count)]
    for dimension in ranges.get("ContinuousParameterRanges", []):
        low, high = float(dimension["MinValue"]), float(dimension["MaxValue"])
        for point, position in zip(points, _strata(count, generator), strict=True):
            point[dimension["Name"]] = f"{_scaled(low, high, dimension.get('ScalingType'), position):.6g}"
    for dimension in ranges.get("IntegerParameterRanges", []):
        low, high = int(dimension["MinValue"]), int(dimension["MaxValue"])
        logarithmic = dimension.get("ScalingType") == "Logarithmic"
        for point, position in zip(points, _strata(count, generator), strict=True):
            if logarithmic:
                value = min(high, max(low, round(_scaled(low, high, "Logarithmic", position))))
            else:
                value = min(high, low + int(position * (high - low + 1)))
            point[dimension["Name"]] = str(value)
    for dimension in ranges.get("CategoricalParameterRanges", []):
        for point, value in zip(points, _balanced(dimension["Values"], count, generator), strict=True):
            point[dimension["Name"]] = value
    return points


def plan_trials(tuning_job_name: str, config: Mapping[str, Any], seed: int) -> list[Trial]:
    count = int(config["ResourceLimits"]["MaxNumberOfTrainingJobs"])
    trials = []
    for number, tuned in enumerate(draw(config["ParameterRanges"], count, random.Random(seed)), start=1):
        digest = hashlib.sha256(json.dumps([tuning_job_name, number, tuned]).encode()).hexdigest()[:8]
        trials.append(Trial(number, f"{tuning_job_name}-{number:03d}-{digest}", tuned))
    return trials


def metric_reader(definitions: list[Mapping[str, str]]) -> Callable[[str], dict[str, float]]:
    """The final value of each metric in a log, read with the job's metric regexes."""
    patterns = {definition["Name"]: re.compile(definition["Regex"]) for definition in definitions}

    def final_values(log: str) -> dict[str, float]:
        values = {}
        for name, pattern in patterns.items():
            matches = pattern.findall(log)
            if matches:
                values[name] = float(matches[-1])
        return values

    return final_values


def run_tuning(
    tuning_job_name: str,
    arguments: Mapping[str, Any],
    job_root: Callable[[str], ContainerRoot],
    s3: Client,
    seed: int,
    on_trial_line: Callable[[Trial, str], None],
    on_trial_done: Callable[[TrialResult], None],
) -> list[TrialResult]:
    """Run every trial; results best first (failed trials last). Raises TuningFailed when no trial succeeds."""
    config = arguments["HyperParameterTuningJobConfig"]
    definition = arguments["TrainingJobDefinition"]
    objective = config["HyperParameterTuningJobObjective"]
    read_metrics = metric_reader(definition["AlgorithmSpecification"]["MetricDefinitions"])
    trials = plan_trials(tuning_job_name, config, seed)
    parallel = max(1, min(int(config["ResourceLimits"]["MaxParallelTrainingJobs"]), len(trials)))
    cores = max(1, (os.cpu_count() or 1) // parallel)

    def run(trial: Trial) -> TrialResult:
        hyperparameters = {
            **definition["StaticHyperParameters"],
            **trial.tuned,
            TUNING_OBJECTIVE_HYPERPARAMETER: objective["MetricName"],
        }
        try:
            outcome = run_training_job(
                trial.name,
                definition,
                hyperparameters,
                job_root(trial.name),
                s3,
                cores,
                on_line=lambda line: on_trial_line(trial, line),
                read_metrics=read_metrics,
            )
        except JobFailed as failure:
            result = TrialResult(trial, None, None, failure.reason)
        except Exception as error:  # SageMaker fails that training job alone, whatever went wrong in it
            result = TrialResult(trial, None, None, f"{type(error).__name__}: {error}")
        else:
            value = outcome.final_metrics.get(objective["MetricName"])
            if value is None:
                result = TrialResult(trial, None, None, f"its log has no {objective['MetricName']} value")
            elif not math.isfinite(value):
                result = TrialResult(trial, None, None, f"its final {objective['MetricName']} is {value}")
            else:
                result = TrialResult(trial, outcome, value)
        on_trial_done(result)
        return result

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        results = list(pool.map(run, trials))
    succeeded = [result for result in results if result.objective is not None]
    if not succeeded:
        reasons = "; ".join(f"{result.trial.name}: {result.failure}" for result in results)
        raise TuningFailed(f"all {len(results)} training jobs failed: {reasons}")
    sign = -1 if objective["Type"] == "Maximize" else 1
    ranked = sorted(succeeded, key=lambda result: (sign * result.objective, result.trial.number))
    return ranked + [result for result in results if result.objective is None]


def summaries(results: list[TrialResult], objective_name: str) -> list[dict[str, Any]]:
    """TrainingJobSummaries as DescribeHyperParameterTuningJob's callers read them: best first."""
    return [
        {
            "TrainingJobName": result.trial.name,
            "TrainingJobStatus": "Completed" if result.objective is not None else "Failed",
            "TunedHyperParameters": result.trial.tuned,
            **(
                {
                    "FinalHyperParameterTuningJobObjectiveMetric": {
                        "MetricName": objective_name,
                        "Value": result.objective,
                    }
                }
                if result.objective is not None
                else {"FailureReason": result.failure}
            ),
        }
        for result in results
    ]
