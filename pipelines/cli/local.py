"""`mlops local`: the pipeline definition executed on this machine against an embedded AWS, and the operator's
flow after it."""

from __future__ import annotations

import contextlib
import logging
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import boto3
import typer
from rich.console import Console

from infra import naming
from pipelines import spec
from pipelines.cli.common import (
    CommandError,
    Stage,
    approved_version,
    embedded,
    is_local,
    latest_approved,
    one_line_errors,
    parse_parameters,
    stage_config,
    within,
)
from pipelines.local.aws import DEFAULT_LOCAL_REGION, LOCAL_ACCOUNT, Endpoint, serve_until_stopped
from pipelines.local.layout import LocalLayout
from pipelines.registry import Registry, parse_metrics

if TYPE_CHECKING:
    from infra.config import StageConfig
    from pipelines.local.replay import Client, MonitoringExecution, Replay, Timings, Traffic
    from pipelines.local.runner import RunResult

app = typer.Typer(
    no_args_is_help=True,
    help="The pipeline and the operator's flow on this machine, against an embedded AWS: no account needed.",
)

DataDirectory = Annotated[
    Path | None,
    typer.Option("--data", help="a directory of CSV files to train on (default: the bundled digits sample)"),
]
SampleRows = Annotated[
    int | None,
    # Fewer rows leave some digit with under 3 distinct rows, which the stratified split refuses.
    typer.Option(min=100, help="use only this many distinct rows of the sample (quick runs, tests)"),
]
Seed = Annotated[int, typer.Option(help="seed of the local trials' random search")]
LabelColumn = Annotated[
    str | None,
    typer.Option(help="the column of --data that holds the classes (default: label); sets -p LabelColumn"),
]
Parameters = Annotated[list[str], typer.Option("--param", "-p", help="NAME=VALUE, repeatable")]


def with_label_column(assignments: list[str], label_column: str | None) -> list[str]:
    if label_column is None:
        return assignments
    if any(assignment.split("=", 1)[0].strip() == spec.ParameterName.LABEL_COLUMN for assignment in assignments):
        raise CommandError(f"--label-column and -p {spec.ParameterName.LABEL_COLUMN} both name the label; keep one")
    return [*assignments, f"{spec.ParameterName.LABEL_COLUMN}={label_column}"]


def dataset_files(data: Path | None, sample_rows: int | None, overrides: dict[str, Any]) -> list[Path] | None:
    """The files to put under the data bucket's raw/ prefix; None when InputDataUri names other data."""
    if spec.ParameterName.INPUT_DATA_URI in overrides:
        if data is not None or sample_rows is not None:
            raise CommandError("-p InputDataUri names the data already; drop --data and --sample-rows")
        return None
    if data is None:
        from pipelines.local.runner import sample_files

        return sample_files(sample_rows)
    if sample_rows is not None:
        raise CommandError("--sample-rows applies to the bundled sample, not to --data")
    files = sorted(path for path in data.glob("*.csv") if path.is_file()) if data.is_dir() else []
    if not files:
        raise CommandError(f"--data {data}: not a directory with .csv files")
    return files


def local_console() -> Console:
    """Tables and progress lines keep their width when the output goes to a file or CI log."""
    return Console(width=None if sys.stdout.isatty() else 120)


# The local runner and its console pull in the SageMaker SDK: imported when a local command runs, so that the other
# commands start fast.
def run_locally(
    ctx: typer.Context,
    console: Console,
    stage: str,
    assignments: list[str],
    data: Path | None,
    sample_rows: int | None,
    seed: int,
) -> RunResult:
    from pipelines.local.console import ConsoleObserver, print_summary, stopped_message
    from pipelines.local.jobs import RunStopped
    from pipelines.local.runner import LocalPipelineRun, LocalStage, local_definition

    config = stage_config(stage)
    overrides = parse_parameters(config, assignments)
    files = dataset_files(data, sample_rows, overrides)
    layout = LocalLayout.from_environment()
    # The SageMaker SDK turns botocore's INFO logging on; a local run reports its own steps.
    logging.getLogger("botocore").setLevel(logging.WARNING)
    with embedded(ctx) as endpoint:
        console.print(
            f"Embedded AWS at {endpoint.url} (account {LOCAL_ACCOUNT}, {endpoint.region}); state in {layout.root}"
        )
        local_stage = LocalStage(config, endpoint.region)
        s3, sagemaker = boto3.client("s3"), boto3.client("sagemaker")
        with console.status("Provisioning the stage and building its pipeline definition (SageMaker SDK)"):
            definition = local_definition(local_stage, s3, sagemaker)
        observer = ConsoleObserver(console)
        run = LocalPipelineRun(local_stage, definition, overrides, layout, observer, seed, files)
        console.print(f"Pipeline {naming.pipeline_name(config)}, execution {run.result.execution_arn}")
        if files is not None:
            console.print(f"Data: {', '.join(path.name for path in files)} -> {run.result.input_data_uri}")
        stopped = None
        try:
            result = run.run()
        except RunStopped as stop:
            stopped = stop
        finally:
            observer.close()
    if stopped is not None:  # here, after the embedded AWS that the block started has saved its state
        typer.echo(stopped_message(run.result, endpoint), err=True)
        raise typer.Exit(stopped.code)
    print_summary(console, result)
    if result.failure:
        log = f" (log: {result.failure.log})" if result.failure.log else ""
        raise CommandError(f"{users_file_names(str(result.failure), result.input_data_uri, files)}{log}")
    return result


def users_file_names(message: str, input_data_uri: str | None, files: list[Path] | None) -> str:
    """Preprocess names the files where the run uploaded them; the user knows them by their own paths."""
    for path in files or ():
        message = message.replace(f"{(input_data_uri or '').rstrip('/')}/{path.name}", str(path))
    return message


def print_next(console: Console, stage: str, result: RunResult, approved: bool) -> None:
    from pipelines.local.walkthrough import next_commands

    console.print("\nNext, try:")
    for command in next_commands(stage, result, approved):
        console.print(f"  {command}", highlight=False, soft_wrap=True)


@app.command("run")
@one_line_errors
def local_run(
    ctx: typer.Context,
    stage: Stage = "dev",
    param: Parameters = [],  # noqa: B006
    data: DataDirectory = None,
    label_column: LabelColumn = None,
    sample_rows: SampleRows = None,
    seed: Seed = 0,
) -> None:
    """Run the stage's SageMaker Pipeline definition here, each job as a local process; registers the model."""
    console = local_console()
    assignments = with_label_column(param, label_column)
    result = run_locally(ctx, console, stage, assignments, data, sample_rows, seed)
    print_next(console, stage, result, approved=False)


@app.command("loop")
@one_line_errors
def local_loop(
    ctx: typer.Context,
    stage: Stage = "dev",
    param: Parameters = [],  # noqa: B006
    data: DataDirectory = None,
    label_column: LabelColumn = None,
    sample_rows: SampleRows = None,
    seed: Seed = 0,
) -> None:
    """`local run`, then the operator's flow on its model: list, approve, serve, and one example request."""
    from pipelines.local.console import evaluation_report
    from pipelines.local.walkthrough import WalkthroughFailed, walk_through

    if is_local(ctx):
        raise CommandError("`local loop` runs its own commands against the embedded AWS; drop --local")
    console = local_console()
    result = run_locally(ctx, console, stage, with_label_column(param, label_column), data, sample_rows, seed)
    accuracy = parse_metrics("evaluation.json", evaluation_report(result)).accuracy
    if result.model_package_arn is None or accuracy is None:
        raise CommandError(f"execution {result.execution_id} registered no version with a readable accuracy")
    reason = f"reviewed local execution {result.execution_id}: test accuracy {accuracy:.4f}"
    # A run whose AccuracyThreshold was lowered below the stage's can register a model the stage would not approve.
    below_stage_threshold = accuracy < stage_config(stage).pipeline.accuracy_threshold
    try:
        walk_through(console, stage, result, reason, force=below_stage_threshold)
    except WalkthroughFailed as error:
        raise CommandError(str(error)) from None
    print_next(console, stage, result, approved=True)


@app.command("aws")
@one_line_errors
def local_aws(
    ctx: typer.Context,
    port: Annotated[
        int, typer.Option(callback=within(0, 65535), help="loopback port to listen on (0: any free port)")
    ] = 4566,
) -> None:
    """Keep the embedded AWS up in the foreground (Ctrl-C stops it), for the AWS CLI, boto3 or a notebook."""
    if is_local(ctx):
        raise CommandError("`local aws` starts the embedded AWS itself; drop --local")
    layout = LocalLayout.from_environment()

    def ready(endpoint: Endpoint) -> None:
        typer.echo(f"embedded AWS at {endpoint.url}; state in {layout.aws_state_file}; Ctrl-C stops it")
        typer.echo("in another shell:")
        for name, value in endpoint.environment().items():
            typer.echo(f"  export {name}={value}")
        sys.stdout.flush()

    serve_until_stopped(layout, port, DEFAULT_LOCAL_REGION, ready)


@app.command("replay")
@one_line_errors
def local_replay(
    ctx: typer.Context,
    stage: Stage = "dev",
    version: Annotated[
        str | None, typer.Option("--version", "-v", help="this Approved version (default: the latest, as serve picks)")
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            exists=True,
            help="a CSV file (or a directory of them) of request rows, with a header naming the model's features "
            "(default: the test split of the run that registered the version)",
        ),
    ] = None,
    shift: Annotated[
        float,
        typer.Option(
            min=0,
            help="then replay a copy with numeric features moved by this many standard deviations of the baseline and "
            "categorical ones by as much (0: no shifted copy)",
        ),
    ] = 1.0,
    rows_per_request: Annotated[int, typer.Option(min=1, help="rows in each request")] = 10,
    retrain: Annotated[
        bool,
        typer.Option(
            help="start a local run when a feature drifts beyond the stage's monitoring.retrain_drift_threshold"
        ),
    ] = True,
    retrain_data: Annotated[
        Path | None,
        typer.Option(
            exists=True, help="a directory of CSV files to retrain on (default: the data the served version trained on)"
        ),
    ] = None,
    label_column: Annotated[
        str | None,
        typer.Option(help="the column of the retraining data that holds the classes (default: the served run's)"),
    ] = None,
    param: Parameters = [],  # noqa: B006
) -> None:
    """Replay traffic (the test split, then a shifted copy) to the served version with capture on, run the monitor on
    the captured requests, show the drift per feature, and retrain when a feature drifts beyond the threshold.

    The stage's thresholds apply whether or not its cdk.json turns monitoring or retrain_on_drift on in AWS: the
    baseline's drift threshold (pipeline.drift_threshold) flags a feature, monitoring.retrain_drift_threshold
    retrains. The retraining run registers the next version PendingManualApproval, with the drift report attached."""
    from pipelines.local.replay import ReplayError
    from pipelines.local.walkthrough import WalkthroughFailed

    if is_local(ctx):
        raise CommandError("`local replay` serves the version with its own `--local` commands; drop --local")
    try:
        replay_to_served_version(
            ctx, stage, version, data, shift, rows_per_request, retrain, retrain_data, label_column, param
        )
    except (ReplayError, WalkthroughFailed) as error:
        raise CommandError(str(error)) from None


def replay_to_served_version(
    ctx: typer.Context,
    stage: str,
    version: str | None,
    data: Path | None,
    shift: float,
    rows_per_request: int,
    retrain: bool,
    retrain_data: Path | None,
    label_column: str | None,
    param: list[str],
) -> None:
    """Served version and traffic, capture and monitoring, the report, and the retraining when drift calls for it."""
    from pipelines.local import replay
    from pipelines.local.runner import LocalStage

    config = stage_config(stage)
    assignments = retraining_assignments(config, retrain, retrain_data, label_column, param)
    console = local_console()
    layout = LocalLayout.from_environment()
    timings = replay.Timings()
    with timings.measure("served version, baseline and traffic"), embedded(ctx) as endpoint:
        registry = Registry()
        model = latest_approved(registry, stage) if version is None else approved_version(registry, stage, version)
        baseline = registry.drift_baseline(model)
        if baseline is None:
            raise CommandError(f"version {model.label} was registered without a data-quality baseline to monitor")
        session = replay.Replay.prepare(layout, LocalStage(config, endpoint.region), model, baseline, registry.s3)
        run = replay.registering_run(layout, model)
        if data is not None:
            base = replay.Traffic("data", f"the rows of {data}", replay.request_rows(data, baseline.features))
        elif run is not None:
            base = replay.holdout_traffic(run, baseline.features)
        else:
            raise CommandError(
                f"the local run that registered {model.label} is no longer kept in {layout.runs_dir}; give --data FILE"
            )
        traffic = replay.traffic_sets(base, session.statistics, shift)
        if retrain:
            retrain_data, assignments = served_training_data(session, run, retrain_data, assignments, registry.s3)
    console.print(
        f"Replaying to version {model.label} as endpoint {session.endpoint} would serve it; its baseline: "
        f"{baseline.uri}",
        highlight=False,
        soft_wrap=True,
    )
    for item in traffic:
        console.print(f"  {item.name}: {len(item.rows)} rows, {item.description}", highlight=False, soft_wrap=True)
    executions = capture_and_monitor(ctx, console, timings, stage, session, traffic, rows_per_request)
    threshold = config.monitoring.retrain_drift_threshold
    with timings.measure("report and plot"):
        for execution in executions:
            console.print(replay.drift_table(execution, baseline.features, threshold))
        title = (
            f"Drift per feature of the traffic to {model.label}\n(endpoint {session.endpoint}, replay {session.name})"
        )
        plot = replay.plot_drift(executions, baseline.features, threshold, title, session.plot_file)
    console.print(f"Drift plot: {plot}", highlight=False, soft_wrap=True)

    trigger = next((execution for execution in executions if execution.beyond(threshold)), None)
    if trigger is None:
        console.print(f"No feature drifted beyond monitoring.retrain_drift_threshold {threshold:g}: no retraining")
    else:
        drifted = replay.most_drifted(trigger, threshold, baseline.features)
        console.print(
            f"Drift beyond monitoring.retrain_drift_threshold {threshold:g}{monitoring_in_aws(config)}: {drifted} in "
            f"{trigger.name}",
            highlight=False,
            soft_wrap=True,
        )
    if trigger is None or not retrain:
        if trigger is not None:
            console.print("--no-retrain: no retraining run")
        console.print(timings.table())
        return
    trigger_text = spec.drift_trigger(threshold, session.endpoint, trigger.report_uri)
    console.rule(f"Retraining: a local run of {naming.pipeline_name(config)}")
    with timings.measure("retraining run (mlops local run)"):
        assignments = [*assignments, f"{spec.ParameterName.TRIGGERED_BY}={trigger_text}"]
        result = run_locally(ctx, console, stage, assignments, retrain_data, sample_rows=None, seed=0)
    if result.model_package_arn is None:
        raise CommandError(f"retraining execution {result.execution_id} registered no version")
    console.print(
        f"Version {result.registered_version} records {spec.TRIGGER_METADATA_KEY}: {trigger_text}",
        highlight=False,
        soft_wrap=True,
    )
    console.print(timings.table())
    print_retrained_next(console, stage, result, model.version)


def retraining_assignments(
    config: StageConfig, retrain: bool, retrain_data: Path | None, label_column: str | None, param: list[str]
) -> list[str]:
    """The retraining run's -p assignments, checked before anything is served."""
    assignments = with_label_column(param, label_column)
    overrides = parse_parameters(config, assignments)
    if not retrain and (retrain_data is not None or assignments):
        raise CommandError("--retrain-data, --label-column and -p set the retraining run; drop them with --no-retrain")
    for name, why in (
        (spec.ParameterName.MODEL_APPROVAL_STATUS, f"registers its version {spec.ApprovalStatus.PENDING}"),
        (spec.ParameterName.TRIGGERED_BY, "records the drift that started it"),
    ):
        if name in overrides:
            raise CommandError(f"the retraining run {why}; drop -p {name}")
    if retrain_data is not None:
        if spec.ParameterName.INPUT_DATA_URI in overrides:
            raise CommandError(
                f"-p {spec.ParameterName.INPUT_DATA_URI} names the data to retrain on; drop --retrain-data"
            )
        dataset_files(retrain_data, None, overrides)
    return assignments


def served_training_data(
    session: Replay, run: RunResult | None, retrain_data: Path | None, assignments: list[str], s3: Client
) -> tuple[Path | None, list[str]]:
    """What the retraining run trains on: --retrain-data or -p InputDataUri where given, else a copy of the data the
    served version trained on (a copy: the retraining run may prune that run's uploaded data); and the label column
    of that run unless given."""
    from pipelines.local import replay

    given = {assignment.split("=", 1)[0].strip() for assignment in assignments}
    if run is not None and spec.ParameterName.LABEL_COLUMN not in given:
        label = run.parameters.get(spec.ParameterName.LABEL_COLUMN)
        assignments = [*assignments, f"{spec.ParameterName.LABEL_COLUMN}={label}"] if label else assignments
    if retrain_data is not None or spec.ParameterName.INPUT_DATA_URI in given:
        return retrain_data, assignments
    trained_on = run.parameters.get(spec.ParameterName.INPUT_DATA_URI) if run is not None else None
    if trained_on is None:
        raise CommandError(
            f"the data that {session.model.label} trained on is unknown (its local run is no longer kept); give "
            "--retrain-data DIR, or --no-retrain"
        )
    return replay.download_training_data(s3, trained_on, session.root / "retrain-data"), assignments


def capture_and_monitor(
    ctx: typer.Context,
    console: Console,
    timings: Timings,
    stage: str,
    session: Replay,
    traffic: list[Traffic],
    rows_per_request: int,
) -> list[MonitoringExecution]:
    """Serve the version, replay each traffic set to it with capture on, and run a monitoring execution on each."""
    from pipelines.local.walkthrough import served

    executions = []
    # The server starts outside the embedded AWS: `mlops --local serve` takes the embedded AWS's state for a moment.
    with contextlib.ExitStack() as serving:
        with timings.measure("server start (mlops --local serve)"):
            url = serving.enter_context(served(console, stage, session.model.version))
        with embedded(ctx):
            s3 = boto3.client("s3")
            captures = []
            for item in traffic:
                requests = -(-len(item.rows) // rows_per_request)
                with timings.measure(f"replay {item.name}: {requests} requests, {len(item.rows)} rows, capture"):
                    captures.append(session.capture(s3, url, item, rows_per_request))
                console.print(f"Captured {item.name}: {captures[-1].uri}", highlight=False, soft_wrap=True)
            for capture in captures:
                with timings.measure(f"monitoring execution {capture.traffic.name}"):
                    executions.append(session.monitor(s3, capture))
                console.print(
                    f"Monitored {capture.traffic.name}: {executions[-1].report_uri}", highlight=False, soft_wrap=True
                )
    return executions


def monitoring_in_aws(config: StageConfig) -> str:
    """Where the stage's AWS monitoring would not retrain: the replay applies the thresholds all the same."""
    if not config.monitoring.enabled:
        return f" ({config.name} monitors no endpoint in AWS, monitoring.enabled being false; here it applies)"
    if not config.monitoring.retrain_on_drift:
        return f" ({config.name} does not retrain on drift in AWS, retrain_on_drift being false; it does here)"
    return ""


def print_retrained_next(console: Console, stage: str, result: RunResult, served_version: int) -> None:
    from pipelines.local.console import evaluation_report
    from pipelines.local.walkthrough import mlops_program

    program = mlops_program()
    version = result.registered_version
    reason = f"retrained on drift of version {served_version}: reviewed the test metrics"
    approve = f"{program} --local models approve {version} --stage {stage} --reason {shlex.quote(reason)}"
    accuracy = parse_metrics("evaluation.json", evaluation_report(result)).accuracy
    threshold = stage_config(stage).pipeline.accuracy_threshold
    below = accuracy is not None and accuracy < threshold
    show = f"{program} --local models show {version} --stage {stage}"
    again = f"{program} local replay --stage {stage} --version {version}"
    width = max(len(show), len(again))
    console.print("\nNext, try:")
    console.print(f"  {show:<{width}}  # its metrics; triggered-by names the drift", highlight=False, soft_wrap=True)
    if below:
        approve += f" --force  # accuracy {accuracy:.4f} is below the stage's {threshold}"
    console.print(f"  {approve}", highlight=False, soft_wrap=True)
    console.print(f"  {again:<{width}}  # once approved, replay to it", highlight=False, soft_wrap=True)
