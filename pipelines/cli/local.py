"""`mlops local`: the pipeline definition executed on this machine against an embedded AWS, and the operator's
flow after it."""

from __future__ import annotations

import logging
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
    embedded,
    is_local,
    one_line_errors,
    parse_parameters,
    stage_config,
    within,
)
from pipelines.local.aws import DEFAULT_LOCAL_REGION, LOCAL_ACCOUNT, Endpoint, serve_until_stopped
from pipelines.local.layout import LocalLayout
from pipelines.registry import parse_metrics

if TYPE_CHECKING:
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
