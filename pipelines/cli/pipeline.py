"""`mlops pipeline`: start a stage's pipeline, show an execution's status (the local ones with `--local`), print the
definition as deployed."""

from __future__ import annotations

import json
from typing import Annotated, Any

import boto3
import typer

from infra import naming
from infra.manifest import MODEL_PACKAGE_ARN
from pipelines.cli.common import (
    CommandError,
    Stage,
    display_path,
    folding_table,
    is_local,
    one_line_errors,
    parse_parameters,
    print_table,
    stage_config,
    suggested_local_run,
)
from pipelines.local.layout import LocalLayout

app = typer.Typer(no_args_is_help=True, help="The training pipeline of a stage.")


@app.command("start")
@one_line_errors
def start(
    ctx: typer.Context,
    stage: Stage,
    param: Annotated[list[str], typer.Option("--param", "-p", help="NAME=VALUE, repeatable")] = [],  # noqa: B006
) -> None:
    """Start the stage's pipeline, optionally overriding parameters; prints the execution ARN."""
    config = stage_config(stage)
    values = parse_parameters(config, param)
    if is_local(ctx):
        # The embedded AWS has no deployed pipeline to start: the local runner executes its definition instead.
        raise CommandError(
            "--local has no deployed pipeline to start; local executions are started with: "
            f"{suggested_local_run(stage, param)}"
        )
    response = boto3.client("sagemaker").start_pipeline_execution(
        PipelineName=naming.pipeline_name(config),
        PipelineParameters=[{"Name": name, "Value": str(value)} for name, value in values.items()],
    )
    typer.echo(response["PipelineExecutionArn"])


@app.command("status")
@one_line_errors
def status(
    ctx: typer.Context,
    execution_arn: Annotated[str | None, typer.Argument(help="an execution ARN; default: the stage's latest")] = None,
    stage: Annotated[str | None, typer.Option("--stage", "-s", help="whose latest execution to show")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Show an execution's status (the latest of --stage when no ARN is given).

    With --local: the local executions (`mlops local run`), from their records; all of them without ARN or stage."""
    if is_local(ctx):
        local_status(execution_arn, stage, as_json)
        return
    client = boto3.client("sagemaker")
    if execution_arn is None:
        if stage is None:
            raise CommandError("give an EXECUTION_ARN or --stage to show that stage's latest execution")
        name = naming.pipeline_name(stage_config(stage))
        executions = client.list_pipeline_executions(
            PipelineName=name, SortBy="CreationTime", SortOrder="Descending", MaxResults=1
        )["PipelineExecutionSummaries"]
        if not executions:
            raise CommandError(
                f"pipeline {name} has no executions yet; start one with: mlops pipeline start -s {stage}"
            )
        execution_arn = max(executions, key=lambda summary: summary["StartTime"])["PipelineExecutionArn"]
    execution = client.describe_pipeline_execution(PipelineExecutionArn=execution_arn)
    summary = {
        "execution": execution_arn,
        "status": execution["PipelineExecutionStatus"],
        "created": str(execution.get("CreationTime", "")),
        "last_modified": str(execution.get("LastModifiedTime", "")),
        "failure_reason": execution.get("FailureReason", ""),
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=1))
    else:
        typer.echo("\n".join(f"{key:>14}: {value}" for key, value in summary.items() if value))


def local_executions() -> list[dict[str, Any]]:
    """What the records of local executions say, the latest started first. Runs whose command was killed outright
    are settled first (as Failed, in their step), as the next `mlops local run` would settle them."""
    from pipelines.local.runner import EXECUTING, RUN_RECORD, read_run_record, settle_abandoned_runs

    layout = LocalLayout.from_environment()
    settle_abandoned_runs(layout)
    records = []
    for path in layout.runs_dir.glob(f"*/{RUN_RECORD}"):
        try:
            record = read_run_record(path)
        except FileNotFoundError:  # pruned meanwhile by a run that started
            continue
        failure = record.get("failure") or {}
        records.append(
            {
                "execution": record["execution_arn"],
                "status": record["status"],
                "started": record.get("started") or "",
                "ended": record.get("ended") or "",
                "current_step": (record.get("current_step") or "") if record["status"] == EXECUTING else "",
                "failure_reason": f"step {failure['step']}: {failure['reason']}" if failure else "",
                "stopped_in": record.get("stopped_in") or "",
                "model_package": record.get("model_package_arn") or "",
                "record": display_path(path),
            }
        )
    return sorted(records, key=lambda record: record["started"], reverse=True)


def local_status(execution_arn: str | None, stage: str | None, as_json: bool) -> None:
    """`pipeline status` for the executions that `mlops local run` recorded (there is no deployed pipeline)."""
    records = local_executions()
    start_one = suggested_local_run(stage or "dev")
    if execution_arn is not None:
        records = [record for record in records if execution_arn in (record["execution"], execution_id(record))]
        if not records:
            raise CommandError(f"no local execution {execution_arn}; `mlops --local pipeline status` lists them")
    elif stage is not None:
        name = naming.pipeline_name(stage_config(stage))
        records = [record for record in records if f":pipeline/{name}/execution/" in record["execution"]][:1]
        if not records:
            raise CommandError(f"pipeline {name} has no local executions yet; start one with: {start_one}")
    elif not records:
        raise CommandError(f"no local executions yet; start one with: {start_one}")
    if as_json:
        typer.echo(json.dumps(records if execution_arn is None and stage is None else records[0], indent=1))
    elif len(records) == 1:
        typer.echo("\n".join(f"{key:>14}: {value}" for key, value in records[0].items() if value))
    else:
        table = folding_table("local executions", "execution", "pipeline", "status", "started", "version")
        for record in records:
            registered = MODEL_PACKAGE_ARN.match(record["model_package"])
            version = registered["version"] if registered else ""
            pipeline = record["execution"].split(":pipeline/", 1)[-1].split("/", 1)[0]
            table.add_row(execution_id(record), pipeline, record["status"], record["started"], version)
        print_table(table)


def execution_id(record: dict[str, Any]) -> str:
    return record["execution"].rsplit("/", 1)[-1]


@app.command("definition")
@one_line_errors
def definition(stage: Stage) -> None:
    """Print the stage's pipeline definition, with the ${...} placeholders CloudFormation fills in at deploy."""
    from infra.pipeline.stack import definition_body, substitution_targets

    config = stage_config(stage)
    body = definition_body(config, substitution_targets("<code-bundle>.tar.gz", "<step-runner>.py"))
    typer.echo(json.dumps(json.loads(body), indent=1))
