"""What a local run shows on the terminal: a line per step, a progress bar per tuning trial, and the summary."""

from __future__ import annotations

import threading
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipelines import spec
from pipelines.local.aws import Endpoint, stop_signals_kept_from_new_threads
from pipelines.local.runner import BEFORE_FIRST_STEP, RunObserver, RunResult
from pipelines.local.tuning import Trial, TrialResult
from training_code.contract import MULTICLASS_METRICS
from training_code.metrics import TRAIN_LOSS, VALIDATION_ACCURACY, parse_metrics

SUMMARY_METRICS = ("accuracy", "macro_f1", "weighted_f1", "macro_precision", "macro_recall")


class ConsoleObserver(RunObserver):
    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress: Progress | None = None
        self.tasks: dict[str, Any] = {}
        self.finished: set[str] = set()
        self.lock = threading.Lock()

    def step_started(self, name: str, step_type: str) -> None:
        self.console.print(f"[bold]▶ {name}[/bold] [dim]({step_type})[/dim]")

    def step_finished(self, name: str, seconds: float, detail: str) -> None:
        self.console.print(f"[green]✓ {name}[/green] {seconds:.1f} s  [dim]{detail}[/dim]")

    def trials_planned(self, trials: list[Trial], epochs: int) -> None:
        self.progress = Progress(
            TextColumn("  {task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("epochs  {task.fields[accuracy]}"),
            TimeElapsedColumn(),
            console=self.console,
        )
        for trial in trials:
            self.tasks[trial.name] = self.progress.add_task(
                f"trial {trial.number}/{len(trials)}", total=epochs or None, accuracy=""
            )
        self.finished = set()
        with stop_signals_kept_from_new_threads():  # the bars' refresh thread
            self.progress.start()

    def trial_line(self, trial: Trial, line: str) -> None:
        metrics = parse_metrics(line)
        if self.progress is None or not metrics[TRAIN_LOSS]:
            return
        self.progress.update(
            self.tasks[trial.name], advance=1, accuracy=f"{VALIDATION_ACCURACY}={metrics[VALIDATION_ACCURACY][0]:.4f}"
        )

    def close(self) -> None:
        """Stop the trial bars of a run that ended inside its tuning step: trials that did not finish were stopped."""
        if self.progress is not None and self.progress.live.is_started:
            for name, task in self.tasks.items():
                if name not in self.finished:
                    self.progress.update(task, accuracy="[yellow]stopped[/yellow]")
            self.progress.stop()

    def trial_finished(self, result: TrialResult) -> None:
        assert self.progress is not None
        task = self.tasks[result.trial.name]
        with self.lock:
            if result.objective is None:
                self.progress.update(task, accuracy=f"[red]failed: {result.failure}[/red]")
            else:
                # Early stopping ends a trial before its epoch budget: the bar shows it done.
                done = self.progress.tasks[task].completed
                self.progress.update(task, total=done, accuracy=f"final {VALIDATION_ACCURACY}={result.objective:.4f}")
            self.finished.add(result.trial.name)
            if len(self.finished) == len(self.tasks):
                self.progress.stop()
        tuned = " ".join(f"{name}={value.strip(chr(34))}" for name, value in result.trial.tuned.items())
        outcome = (
            f"[red]failed: {result.failure}[/red]"
            if result.objective is None
            else f"{VALIDATION_ACCURACY}={result.objective:.4f}"
        )
        self.console.print(f"  {result.trial.name}: {outcome}  [dim]{tuned}[/dim]")


def evaluation_report(result: RunResult) -> dict[str, Any] | None:
    return result.reports.get(f"{spec.StepName.EVALUATE}.{spec.EVALUATION_PROPERTY_FILE}")


def stopped_message(result: RunResult, endpoint: Endpoint) -> str:
    """The one line a stopped run ends with: where it stopped, what it stopped, and that nothing is lost."""
    where = "before the first step" if result.stopped_in == BEFORE_FIRST_STEP else f"in step {result.stopped_in}"
    jobs = f" (stopped {', '.join(result.stopped_jobs)})" if result.stopped_jobs else ""
    return (
        f"stopped {where}{jobs}: execution {result.execution_id} is recorded as Stopped in {result.record_file}; "
        f"{endpoint.state_note()}"
    )


def print_summary(console: Console, result: RunResult) -> None:
    steps = Table(title=f"Local execution {result.execution_id}")
    for column in ("step", "type", "seconds"):
        steps.add_column(column)
    for step in result.steps:
        steps.add_row(step["name"], step["type"], f"{step['seconds']:.1f}")
    console.print(steps)
    if result.best_trial:
        best = Table(title="Best trial")
        best.add_column("hyperparameter")
        best.add_column("value")
        best.add_row("training job", result.best_trial["name"])
        for name, value in result.best_trial["hyperparameters"].items():
            best.add_row(name, str(value))
        objective = result.best_trial["objective"]
        best.add_row(f"[bold]{objective['MetricName']}[/bold]", f"[bold]{objective['Value']:.4f}[/bold]")
        console.print(best)
    report = evaluation_report(result)
    if report:
        metrics = Table(title="Test metrics (evaluation.json)")
        for column in ("metric", "value", "bootstrap sd"):
            metrics.add_column(column)
        section = report[MULTICLASS_METRICS]
        for name in SUMMARY_METRICS:
            if name in section:
                metrics.add_row(name, f"{section[name]['value']:.4f}", f"{section[name]['standard_deviation']:.4f}")
        console.print(metrics)
    if result.model_package_arn:
        console.print(
            f"Registered: [bold]{result.model_package_arn}[/bold] ({result.parameters['ModelApprovalStatus']})"
        )
    console.print(f"Jobs, logs and container trees: {result.run_dir}")
