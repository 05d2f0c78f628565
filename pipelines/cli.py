"""`mlops`: the operator's command line. Every error is one line on stderr and a non-zero exit.

AWS access is plain boto3: credentials, region and endpoint come from the standard settings (AWS_PROFILE,
AWS_REGION, AWS_ENDPOINT_URL), so the same commands work against an account or an embedded AWS.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import boto3
import typer
from botocore.exceptions import BotoCoreError, ClientError

from infra import naming
from infra.config import STAGE_NAMES, StageConfig, StageConfigError, cdk_json_context, load_stage_configs
from pipelines import spec
from training_code.contract import SERVE_COMMAND

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
pipeline_app = typer.Typer(no_args_is_help=True, help="The training pipeline of a stage.")
app.add_typer(pipeline_app, name="pipeline")

Stage = Annotated[str, typer.Option("--stage", "-s", help=f"one of {', '.join(STAGE_NAMES)}")]


class CommandError(Exception):
    """A refusal or failure to report as one line."""


def one_line_errors(command: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except (CommandError, StageConfigError, ValueError, ClientError, BotoCoreError) as error:
            typer.echo(f"error: {' '.join(str(error).split())}", err=True)
            raise typer.Exit(1) from None

    return run


def stage_config(stage: str) -> StageConfig:
    (config,) = load_stage_configs({**cdk_json_context(), "stage": stage})
    return config


def parse_parameters(config: StageConfig, assignments: list[str]) -> dict[str, str | int | float]:
    """NAME=VALUE pairs checked against the pipeline's parameters: known names, right types, allowed values."""
    specs = {parameter.name: parameter for parameter in spec.parameter_specs(config, "<data bucket>", "<image>")}
    values: dict[str, str | int | float] = {}
    for assignment in assignments:
        name, separator, text = assignment.partition("=")
        if not separator:
            raise CommandError(f"--param {assignment!r}: expected NAME=VALUE")
        if name not in specs:
            raise CommandError(f"unknown pipeline parameter {name!r}; known: {', '.join(specs)}")
        values[name] = specs[name].parse(text)
    effective = {name: values.get(name, parameter.default) for name, parameter in specs.items()}
    ordered = [
        (spec.ParameterName.MAX_RUNTIME_SECONDS, spec.ParameterName.MAX_WAIT_SECONDS, "for spot training"),
        (spec.ParameterName.TUNING_MAX_PARALLEL_JOBS, spec.ParameterName.TUNING_MAX_JOBS, "in one tuning job"),
    ]
    for smaller, larger, why in ordered:
        if larger in effective and effective[larger] < effective[smaller]:
            raise CommandError(f"{larger} ({effective[larger]}) must be >= {smaller} ({effective[smaller]}) {why}")
    return values


@pipeline_app.command("start")
@one_line_errors
def start(
    stage: Stage,
    param: Annotated[list[str], typer.Option("--param", "-p", help="NAME=VALUE, repeatable")] = [],  # noqa: B006
) -> None:
    """Start the stage's pipeline, optionally overriding parameters; prints the execution ARN."""
    config = stage_config(stage)
    values = parse_parameters(config, param)
    response = boto3.client("sagemaker").start_pipeline_execution(
        PipelineName=naming.pipeline_name(config),
        PipelineParameters=[{"Name": name, "Value": str(value)} for name, value in values.items()],
    )
    typer.echo(response["PipelineExecutionArn"])


@pipeline_app.command("status")
@one_line_errors
def status(
    execution_arn: Annotated[str | None, typer.Argument(help="an execution ARN; default: the stage's latest")] = None,
    stage: Annotated[str | None, typer.Option("--stage", "-s", help="whose latest execution to show")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Show an execution's status (the latest of --stage when no ARN is given)."""
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


@pipeline_app.command("definition")
@one_line_errors
def definition(stage: Stage) -> None:
    """Print the stage's pipeline definition, with the ${...} placeholders CloudFormation fills in at deploy."""
    from infra.pipeline.stack import definition_body, substitution_targets

    config = stage_config(stage)
    body = definition_body(config, substitution_targets("<code-bundle>.tar.gz", "<step-runner>.py"))
    typer.echo(json.dumps(json.loads(body), indent=1))


@app.command("serve")
@one_line_errors
def serve(
    model_dir: Annotated[Path, typer.Option(help="the model artifact: a directory, or one holding model.tar.gz")],
    port: Annotated[int | None, typer.Option(help="default: SAGEMAKER_BIND_TO_PORT, else 8080")] = None,
    workers: Annotated[int | None, typer.Option(help="default: SAGEMAKER_MODEL_SERVER_WORKERS, else 1/core")] = None,
    max_payload_mb: Annotated[int | None, typer.Option(help="larger bodies get 413 (default 6)")] = None,
    host: Annotated[str, typer.Option(help="the serving image listens on 0.0.0.0")] = "127.0.0.1",
) -> None:
    """Serve a model on this machine with the serving image's server: GET /ping, POST /invocations."""
    options = {"--model-dir": model_dir, "--port": port, "--workers": workers, "--max-payload-mb": max_payload_mb}
    arguments = [str(part) for option, value in options.items() if value is not None for part in (option, value)]
    # The image's own command, started afresh: its workers then import the server alone, not this CLI.
    command = [sys.executable, "-m", "training_code.serving", SERVE_COMMAND, *arguments, "--host", host]
    os.execv(sys.executable, command)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
