"""Local tuning: trials drawn from the definition's ranges, ranked by the objective read with its regexes."""

from __future__ import annotations

import math
import random
import tarfile
from collections import Counter

import pytest

from pipelines.local import tuning
from pipelines.local.jobs import JobFailed, TrainingOutcome
from pipelines.local.tuning import TuningFailed, draw, metric_reader, plan_trials, run_tuning
from training_code.metrics import METRIC_DEFINITIONS, epoch_line, final_line

RANGES = {
    "ContinuousParameterRanges": [
        {"Name": "learning-rate", "MinValue": "0.0001", "MaxValue": "0.01", "ScalingType": "Logarithmic"},
        {"Name": "dropout", "MinValue": "0.0", "MaxValue": "0.4", "ScalingType": "Linear"},
    ],
    "IntegerParameterRanges": [{"Name": "epochs", "MinValue": "2", "MaxValue": "4"}],
    "CategoricalParameterRanges": [{"Name": "optimizer", "Values": ['"adam"', '"sgd"']}],
}


def test_draws_stay_in_range_and_log_ranges_spread_over_decades():
    generator = random.Random(0)
    points = draw(RANGES, 400, generator)
    rates = [float(point["learning-rate"]) for point in points]
    assert all(1e-4 <= rate <= 1e-2 for rate in rates)
    assert 0.35 < sum(rate < 1e-3 for rate in rates) / len(rates) < 0.65  # half below the geometric middle
    assert all(0.0 <= float(point["dropout"]) <= 0.4 for point in points)
    assert {point["epochs"] for point in points} == {"2", "3", "4"}
    assert {point["optimizer"] for point in points} == {'"adam"', '"sgd"'}


SEARCH = {
    "ContinuousParameterRanges": [
        {"Name": "learning-rate", "MinValue": "0.0001", "MaxValue": "0.01", "ScalingType": "Logarithmic"}
    ],
    "CategoricalParameterRanges": [
        {"Name": "optimizer", "Values": ['"adam"', '"adamw"', '"sgd"', '"rmsprop"']},
        {"Name": "batch-size", "Values": ['"32"', '"64"', '"128"']},
    ],
}


@pytest.mark.parametrize("seed", range(20))
def test_few_trials_try_every_category_about_equally_often_and_span_each_range(seed):
    """Independent draws gave all 4 default trials optimizer=sgd; balanced draws give each optimizer one."""
    config = {"ResourceLimits": {"MaxNumberOfTrainingJobs": 4}, "ParameterRanges": SEARCH}
    trials = plan_trials("tune", config, seed)
    assert sorted(trial.tuned["optimizer"] for trial in trials) == sorted(
        SEARCH["CategoricalParameterRanges"][0]["Values"]
    )
    batch_sizes = Counter(trial.tuned["batch-size"] for trial in trials)
    assert len(batch_sizes) == 3 and max(batch_sizes.values()) == 2
    # One learning rate in each quarter of the log range.
    quarters = sorted(int(4 * math.log(float(t.tuned["learning-rate"]) / 1e-4) / math.log(100)) for t in trials)
    assert quarters == [0, 1, 2, 3]


def test_plans_are_repeatable_per_seed_with_sagemaker_style_names():
    config = {"ResourceLimits": {"MaxNumberOfTrainingJobs": 3}, "ParameterRanges": RANGES}
    first, again, other = (plan_trials("tune-1", config, seed) for seed in (0, 0, 1))
    assert first == again and first != other
    assert [trial.name[: len("tune-1-001")] for trial in first] == ["tune-1-001", "tune-1-002", "tune-1-003"]
    assert len({trial.name for trial in first}) == 3


def test_the_objective_is_the_last_value_the_regexes_find():
    log = "\n".join([epoch_line(1, 1.0, 0.9, 0.50), epoch_line(2, 0.8, 0.7, 0.75), final_line(2, 0.7, 0.74)])
    assert metric_reader(METRIC_DEFINITIONS)(log) == {
        "train:loss": 0.8,
        "validation:loss": 0.7,
        "validation:accuracy": 0.74,
    }


ARGUMENTS = {
    "HyperParameterTuningJobConfig": {
        "HyperParameterTuningJobObjective": {"MetricName": "validation:accuracy", "Type": "Maximize"},
        "ResourceLimits": {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 2},
        "ParameterRanges": RANGES,
    },
    "TrainingJobDefinition": {
        "AlgorithmSpecification": {"MetricDefinitions": METRIC_DEFINITIONS},
        "StaticHyperParameters": {"seed": '"42"'},
    },
}


def fake_training(objectives: dict[int, float | None]):
    """Trial number -> objective (None: the job fails)."""

    def run(name, definition, hyperparameters, root, s3, cores, on_line=None, read_metrics=None):
        number = int(name.split("-")[-2])
        assert hyperparameters["_tuning_objective_metric"] == "validation:accuracy"
        assert hyperparameters["seed"] == '"42"'
        if objectives[number] is None:
            raise JobFailed(name, f"trial {number} broke", root)
        return TrainingOutcome(name, hyperparameters, read_metrics(final_line(1, 0.1, objectives[number])), "s3://m")

    return run


def test_trials_rank_best_first_and_failures_last(monkeypatch):
    monkeypatch.setattr(tuning, "run_training_job", fake_training({1: 0.9, 2: None, 3: 0.95, 4: 0.9}))
    done = []
    results = run_tuning("tune", ARGUMENTS, lambda name: name, None, 0, lambda *_: None, done.append)
    assert [result.trial.number for result in results] == [3, 1, 4, 2]  # ties keep trial order
    assert results[-1].failure == "trial 2 broke"
    assert len(done) == 4
    summaries = tuning.summaries(results, "validation:accuracy")
    assert summaries[0]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == 0.95
    assert summaries[-1]["TrainingJobStatus"] == "Failed"


def test_minimize_objectives_rank_the_lowest_first(monkeypatch):
    monkeypatch.setattr(tuning, "run_training_job", fake_training({1: 0.3, 2: 0.1, 3: 0.2, 4: 0.4}))
    arguments = {
        **ARGUMENTS,
        "HyperParameterTuningJobConfig": {
            **ARGUMENTS["HyperParameterTuningJobConfig"],
            "HyperParameterTuningJobObjective": {"MetricName": "validation:accuracy", "Type": "Minimize"},
        },
    }
    results = run_tuning("tune", arguments, lambda name: name, None, 0, lambda *_: None, lambda _: None)
    assert [result.trial.number for result in results] == [2, 3, 1, 4]


def test_all_trials_failing_fails_the_step_with_every_reason(monkeypatch):
    monkeypatch.setattr(tuning, "run_training_job", fake_training(dict.fromkeys(range(1, 5))))
    with pytest.raises(TuningFailed, match="all 4 training jobs failed: .*trial 1 broke.*trial 4 broke"):
        run_tuning("tune", ARGUMENTS, lambda name: name, None, 0, lambda *_: None, lambda _: None)


def test_a_trial_that_breaks_unexpectedly_fails_alone_and_a_nan_objective_never_wins(monkeypatch):
    trained = fake_training({1: 0.9, 2: 0.8, 3: float("nan"), 4: 0.7})

    def run(name, *arguments, **options):
        if name.split("-")[-2] == "002":
            raise tarfile.ReadError("file could not be opened successfully")
        return trained(name, *arguments, **options)

    monkeypatch.setattr(tuning, "run_training_job", run)
    done = []
    results = run_tuning("tune", ARGUMENTS, lambda name: name, None, 0, lambda *_: None, done.append)
    assert [(result.trial.number, result.objective) for result in results] == [(1, 0.9), (4, 0.7), (2, None), (3, None)]
    assert results[2].failure == "ReadError: file could not be opened successfully"
    assert results[3].failure == "its final validation:accuracy is nan"
    assert len(done) == 4  # every trial reported, so the progress display ends


def test_reverse_logarithmic_ranges_crowd_near_one_and_integer_log_ranges_stay_integral():
    ranges = {
        "ContinuousParameterRanges": [
            {"Name": "momentum", "MinValue": "0.5", "MaxValue": "0.999", "ScalingType": "ReverseLogarithmic"}
        ],
        "IntegerParameterRanges": [
            {"Name": "width", "MinValue": "8", "MaxValue": "1024", "ScalingType": "Logarithmic"}
        ],
    }
    generator = random.Random(0)
    points = draw(ranges, 400, generator)
    momenta = [float(point["momentum"]) for point in points]
    assert all(0.5 <= value <= 0.999 for value in momenta)
    # Uniform in log(1 - value): half the draws lie above 1 - sqrt(0.5 * 0.001), about 0.978.
    assert 0.35 < sum(value > 1 - (0.5 * 0.001) ** 0.5 for value in momenta) / len(momenta) < 0.65
    widths = [int(point["width"]) for point in points]
    assert all(8 <= width <= 1024 for width in widths)
    assert 0.35 < sum(width < 91 for width in widths) / len(widths) < 0.65  # the geometric middle is about 90.5
