"""What a local run shows: a line per step, a bar per trial that follows the trial's epoch lines, and the summary
(best hyperparameters, test metrics, the registered version)."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from pipelines import spec
from pipelines.local.aws import Endpoint
from pipelines.local.console import ConsoleObserver, print_summary, stopped_message
from pipelines.local.runner import RunResult
from pipelines.local.tuning import Trial, TrialResult
from training_code.contract import MULTICLASS_METRICS
from training_code.metrics import epoch_line, final_line

ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/mlopskit-dev-models/3"


def recording_console() -> Console:
    return Console(file=io.StringIO(), width=200, record=True, color_system=None)


def test_steps_are_announced_and_finished_with_their_time_and_detail():
    console = recording_console()
    observer = ConsoleObserver(console)
    observer.step_started("Preprocess", "Processing")
    observer.step_finished("Preprocess", 2.04, "4 outputs under s3://bucket/run/")
    text = console.export_text()
    assert "▶ Preprocess (Processing)" in text
    assert "✓ Preprocess 2.0 s  4 outputs under s3://bucket/run/" in text


def test_each_trial_bar_advances_per_epoch_line_and_ends_at_the_trials_own_early_stop():
    console = recording_console()
    observer = ConsoleObserver(console)
    trials = [Trial(1, "tune-001", {"dropout": "0.1"}), Trial(2, "tune-002", {"dropout": "0.4"})]
    observer.trials_planned(trials, epochs=10)
    for epoch in range(1, 4):
        observer.trial_line(trials[0], epoch_line(epoch, 0.5, 0.4, 0.80 + epoch / 100))
    observer.trial_line(trials[0], "a line of the script that is no metric")
    observer.trial_line(trials[0], final_line(3, 0.4, 0.83))
    assert observer.progress.tasks[0].completed == 3
    assert observer.progress.tasks[0].fields["accuracy"] == "validation:accuracy=0.8300"
    observer.trial_finished(TrialResult(trials[0], None, 0.83))
    assert observer.progress.tasks[0].total == 3  # stopped early: the bar shows it done
    observer.trial_finished(TrialResult(trials[1], None, None, "DataError: no rows"))
    assert not observer.progress.live.is_started  # the last trial stops the bars
    text = console.export_text()
    assert "tune-001: validation:accuracy=0.8300  dropout=0.1" in text
    assert "tune-002: failed: DataError: no rows" in text


def test_the_summary_names_the_best_trial_its_hyperparameters_the_test_metrics_and_the_version(tmp_path: Path):
    report = {
        MULTICLASS_METRICS: {
            "accuracy": {"value": 0.9556, "standard_deviation": 0.0126},
            "macro_f1": {"value": 0.9559, "standard_deviation": 0.0123},
        }
    }
    result = RunResult(
        "e1",
        "arn:execution",
        {"ModelApprovalStatus": "PendingManualApproval"},
        tmp_path,
        steps=[{"name": "Tune", "type": "Tuning", "seconds": 9.61}],
        best_trial={
            "name": "mlopskit-dev-tune-e1-001-abcd",
            "objective": {"MetricName": "validation:accuracy", "Value": 0.9741},
            "hyperparameters": {"learning-rate": 0.0049, "optimizer": "sgd"},
        },
        model_package_arn=ARN,
        reports={f"{spec.StepName.EVALUATE}.{spec.EVALUATION_PROPERTY_FILE}": report},
    )
    console = recording_console()
    print_summary(console, result)
    lines = [" ".join(line.replace("│", " ").split()) for line in console.export_text().splitlines()]
    assert "Tune Tuning 9.6" in lines
    assert "training job mlopskit-dev-tune-e1-001-abcd" in lines
    assert {"learning-rate 0.0049", "optimizer sgd", "validation:accuracy 0.9741"} <= set(lines)
    assert {"accuracy 0.9556 0.0126", "macro_f1 0.9559 0.0123"} <= set(lines)
    assert f"Registered: {ARN} (PendingManualApproval)" in lines


def test_closing_the_bars_of_a_stopped_tuning_step_shows_its_unfinished_trials_as_stopped():
    console = recording_console()
    observer = ConsoleObserver(console)
    trials = [Trial(number, f"tune-00{number}", {}) for number in (1, 2, 3)]
    observer.trials_planned(trials, epochs=10)
    observer.trial_line(trials[0], epoch_line(1, 0.5, 0.4, 0.81))
    observer.trial_finished(TrialResult(trials[1], None, None, "DataError: no rows"))
    observer.close()
    assert not observer.progress.live.is_started
    shown = [task.fields["accuracy"] for task in observer.progress.tasks]
    assert shown == ["[yellow]stopped[/yellow]", "[red]failed: DataError: no rows[/red]", "[yellow]stopped[/yellow]"]


def test_a_stopped_run_ends_with_one_line_naming_its_step_its_stopped_jobs_its_record_and_the_state(tmp_path: Path):
    result = RunResult("e1", "arn:execution", {}, tmp_path, stopped_in="Tune", stopped_jobs=["tune-001", "tune-002"])
    own = stopped_message(result, Endpoint("http://127.0.0.1:1", "us-east-1", tmp_path / "aws-state.pickle"))
    assert own == (
        f"stopped in step Tune (stopped tune-001, tune-002): execution e1 is recorded as Stopped in "
        f"{tmp_path / 'run.json'}; the embedded AWS state is saved in {tmp_path / 'aws-state.pickle'}"
    )
    shared = stopped_message(result, Endpoint("http://127.0.0.1:4566", "us-east-1"))
    assert shared.endswith("; the embedded AWS at http://127.0.0.1:4566 keeps its state")
    early = RunResult("e2", "arn:execution", {}, tmp_path, stopped_in="(before the first step)")
    assert stopped_message(early, Endpoint("http://x", "us-east-1")).startswith("stopped before the first step: ")
    assert "\n" not in own
