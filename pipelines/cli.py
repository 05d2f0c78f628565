"""`mlops`: the operator's command line. Every error is one line on stderr: exit 2 for a command line that cannot
work as typed (an unknown option, a value out of range, a missing path), exit 1 for a refusal or a failure.

AWS access is plain boto3: credentials, region and endpoint come from the standard settings (AWS_PROFILE,
AWS_REGION, AWS_ENDPOINT_URL), so the same commands work against an account or an embedded AWS.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import logging
import os
import shlex
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import boto3
import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from infra import manifest, naming
from infra.config import (
    RELEASE_SOURCE_STAGE,
    STAGE_NAMES,
    StageConfig,
    StageConfigError,
    cdk_json_context,
    load_stage_configs,
)
from infra.node_runtime import silence_end_of_life_banner
from pipelines import spec
from pipelines.local.aws import (
    DEFAULT_LOCAL_REGION,
    LOCAL_ACCOUNT,
    EmbeddedAwsError,
    Endpoint,
    embedded_aws,
    serve_until_stopped,
)
from pipelines.local.expressions import DefinitionError
from pipelines.local.layout import LOCAL_DIR_VARIABLE, LocalLayout
from pipelines.registry import (
    ApprovalStatus,
    MetricsReport,
    ModelSignature,
    ModelVersion,
    Registry,
    RegistryError,
    checked_reason,
    parse_metrics,
    utc_timestamp,
)
from training_code.contract import CSV, SERVE_COMMAND

if TYPE_CHECKING:
    from pipelines.local.runner import RunResult


class OneLineUsageErrors(TyperGroup):
    """Usage errors as one line on stderr (exit 2), where click would print the usage and a boxed message."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            # Not standalone: usage errors are raised here instead of printed; typer.Exit comes back as its exit
            # code, a finished command as its return value (None).
            outcome = super().main(*args, standalone_mode=False, **kwargs)
        except typer.TyperException as error:
            # A bare group or `mlops`: the help, which typer printed as it made the error, says it all.
            if type(error).__name__ != "NoArgsIsHelpError":
                context = getattr(error, "ctx", None)
                see = f" (see: {context.command_path} --help)" if context is not None else ""
                typer.echo(f"error: {' '.join(error.format_message().split()).rstrip('.')}{see}", err=True)
            sys.exit(error.exit_code)
        except typer.Abort:
            typer.echo("aborted", err=True)
            sys.exit(1)
        sys.exit(outcome if isinstance(outcome, int) else 0)


app = typer.Typer(cls=OneLineUsageErrors, no_args_is_help=True, add_completion=False, help=__doc__)
pipeline_app = typer.Typer(no_args_is_help=True, help="The training pipeline of a stage.")
app.add_typer(pipeline_app, name="pipeline")
models_app = typer.Typer(no_args_is_help=True, help="The model registry: list, show, approve, reject, resolve.")
app.add_typer(models_app, name="models")
local_app = typer.Typer(
    no_args_is_help=True,
    help="The pipeline and the operator's flow on this machine, against an embedded AWS: no account needed.",
)
app.add_typer(local_app, name="local")

Stage = Annotated[str, typer.Option("--stage", "-s", help=f"one of {', '.join(STAGE_NAMES)}")]
OptionalStage = Annotated[str | None, typer.Option("--stage", "-s", help=f"one of {', '.join(STAGE_NAMES)}")]


class CommandError(Exception):
    """A refusal or failure to report as one line."""


def one_line_errors(command: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except (
            CommandError,
            RegistryError,
            StageConfigError,
            EmbeddedAwsError,
            DefinitionError,
            ValueError,
            ClientError,
            BotoCoreError,
            OSError,
        ) as error:
            typer.echo(f"error: {' '.join(str(error).split())}", err=True)
            raise typer.Exit(1) from None

    return run


@app.callback()
def use_embedded_aws(
    ctx: typer.Context,
    local: Annotated[
        bool,
        typer.Option(
            "--local",
            help=f"use the embedded AWS of local runs (state in .local/ or ${LOCAL_DIR_VARIABLE}), not an account",
        ),
    ] = False,
) -> None:
    if local:
        try:
            ctx.obj = ctx.with_resource(embedded_aws(LocalLayout.from_environment()))
        except EmbeddedAwsError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(1) from None


def embedded(ctx: typer.Context) -> contextlib.AbstractContextManager[Endpoint]:
    """The embedded AWS: the one --local started for this command, else one for the block."""
    started = ctx.find_root().obj
    if isinstance(started, Endpoint):
        return contextlib.nullcontext(started)
    return embedded_aws(LocalLayout.from_environment())


def is_local(ctx: typer.Context) -> bool:
    """Whether this command runs against the embedded AWS (`mlops --local ...`)."""
    return isinstance(ctx.find_root().obj, Endpoint)


def suggested(ctx: typer.Context, *arguments: str) -> str:
    """A command line to type next, against the AWS this one used."""
    return shlex.join(["mlops", *(["--local"] if is_local(ctx) else []), *arguments])


def within(low: int, high: int | None = None) -> Callable[[int | None], int | None]:
    """An option check that names the value, as typer's min and max do not."""

    def check(value: int | None) -> int | None:
        if value is not None and (value < low or (high is not None and value > high)):
            raise typer.BadParameter(f"{value} is outside {low}-{high}" if high else f"{value} is below {low}")
        return value

    return check


def stage_config(stage: str) -> StageConfig:
    (config,) = load_stage_configs({**cdk_json_context(), "stage": checked_stage(stage)})
    return config


def checked_stage(stage: str) -> str:
    if stage not in STAGE_NAMES:
        raise CommandError(f"unknown stage {stage!r}; allowed: {', '.join(STAGE_NAMES)}")
    return stage


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


@pipeline_app.command("status")
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
            version = record["model_package"].rsplit("/", 1)[-1] if record["model_package"] else ""
            pipeline = record["execution"].split(":pipeline/", 1)[-1].split("/", 1)[0]
            table.add_row(execution_id(record), pipeline, record["status"], record["started"], version)
        print_table(table)


def execution_id(record: dict[str, Any]) -> str:
    return record["execution"].rsplit("/", 1)[-1]


def suggested_local_run(stage: str, parameters: list[str] | tuple[str, ...] = ()) -> str:
    return shlex.join(
        ["mlops", "local", "run", "--stage", stage, *(part for value in parameters for part in ("-p", value))]
    )


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
    ctx: typer.Context,
    model_dir: Annotated[
        Path | None, typer.Option(exists=True, help="the model artifact: a directory, or one holding model.tar.gz")
    ] = None,
    stage: OptionalStage = None,
    version: Annotated[
        str | None, typer.Option("--version", "-v", help="with --stage: this Approved version (default: the latest)")
    ] = None,
    port: Annotated[
        int | None, typer.Option(callback=within(1, 65535), help="default: SAGEMAKER_BIND_TO_PORT, else 8080")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(callback=within(1), help="default: SAGEMAKER_MODEL_SERVER_WORKERS, else 1/core")
    ] = None,
    max_payload_mb: Annotated[
        int | None, typer.Option(callback=within(1), help="larger bodies get 413 (default 6)")
    ] = None,
    host: Annotated[str, typer.Option(help="the serving image listens on 0.0.0.0")] = "127.0.0.1",
) -> None:
    """Serve a model on this machine with the serving image's server: GET /ping, POST /invocations.

    The model is a local artifact (--model-dir) or an Approved version of the stage's registry (--stage)."""
    if (model_dir is None) == (stage is None):
        raise CommandError("give either --model-dir or --stage (with --version for other than the latest Approved)")
    from training_code.serving.server import ServerSettings

    # The server's own settings (flags over SageMaker's variables), checked before a version is downloaded.
    settings = ServerSettings.from_environment(host=host, port=port, workers=workers, max_payload_mb=max_payload_mb)
    check_port_free(settings.host, settings.port)
    if stage is not None:
        registry = Registry()
        model = latest_approved(registry, stage) if version is None else approved_version(registry, stage, version)
        model_dir = served_model_directory(ctx, model.group, model.version)
        registry.download_model(model, model_dir)
        typer.echo(f"serving version {model.label} ({model.arn})")
        # Ends what the command holds (the embedded AWS saves its state) before the server replaces this process.
        ctx.find_root().close()
    options = {"--model-dir": model_dir, "--port": port, "--workers": workers, "--max-payload-mb": max_payload_mb}
    arguments = [str(part) for option, value in options.items() if value is not None for part in (option, value)]
    # The image's own command, started afresh: its workers then import the server alone, not this CLI.
    command = [sys.executable, "-m", "training_code.serving", SERVE_COMMAND, *arguments, "--host", host]
    sys.stdout.flush()
    os.execv(sys.executable, command)


def served_model_directory(ctx: typer.Context, group: str, version: int) -> Path:
    """One directory per served version, emptied before each download: the server replaces this process and cannot
    remove what it serves, so temporary directories would pile up, one per `serve`."""
    local = isinstance(ctx.find_root().obj, Endpoint)
    root = LocalLayout.from_environment().root if local else Path(tempfile.gettempdir()) / "mlops-serve"
    directory = root / "serve" / f"{group}-{version}" if local else root / f"{group}-{version}"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return directory


def check_port_free(host: str, port: int) -> None:
    """The server would find a taken port only after loading the model, and report it in its own log format."""
    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as error:
        raise CommandError(f"--host {host}: {error.strerror}") from None
    with socket.socket(family, kind) as probe:
        # As the server binds: a port whose last connections are still closing is free to it.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            taken = error.errno in (errno.EADDRINUSE, errno.EACCES)
            raise CommandError(
                f"cannot listen on {host}:{port}: {error.strerror}{'; choose another --port' if taken else ''}"
            ) from None


# The model registry, promotion and rollback.

PROMOTION_TARGETS = ("staging", "prod")
# Every stage deploys versions of the staging stage's group: prod serves what staging has served.
PROMOTION_SOURCE_STAGE = RELEASE_SOURCE_STAGE

VersionArgument = Annotated[str, typer.Argument(help="a version number of the stage's group, or a version's ARN")]
Reason = Annotated[str | None, typer.Option("--reason", "-r", help="why; recorded with the decision (required)")]
AsJson = Annotated[bool, typer.Option("--json", help="machine-readable output")]
ManifestDir = Annotated[
    Path | None, typer.Option("--manifest-dir", hidden=True, help="where the deployment manifests are (tests)")
]


def stage_group(stage: str) -> str:
    return naming.model_package_group_name(stage_config(stage))


def stage_group_reference(stage: str) -> str:
    """The stage's group by ARN where the stage names its account and region (a caller in another account, such as
    the delivery pipeline's synth, finds a group only by ARN); else by name."""
    config = stage_config(stage)
    name = naming.model_package_group_name(config)
    if config.account and config.region:
        return f"arn:aws:sagemaker:{config.region}:{config.account}:model-package-group/{name}"
    return name


def iso(moment: datetime | None) -> str | None:
    return utc_timestamp(moment) if moment else None


def short_identity(arn: str) -> str:
    """`arn:aws:sts::123456789012:assumed-role/Operator/alice` -> `assumed-role/Operator/alice`."""
    return arn.rsplit(":", 1)[-1]


def version_row(version: ModelVersion, report: MetricsReport) -> dict[str, Any]:
    decision = version.last_decision
    return {
        "version": version.version,
        "arn": version.arn,
        "status": version.status,
        "created": iso(version.created),
        "accuracy": report.accuracy,
        "metrics_problem": report.problem,
        "decided_by": decision.by if decision else None,
        "decided_at": decision.at if decision else None,
    }


# Long cells wrap (fold) rather than being cut where the output is no terminal; the other columns keep one line.
WRAPPING_COLUMNS = ("decided by", "by", "reason")


def folding_table(title: str, *columns: str) -> Table:
    table = Table(title=title)
    for column in columns:
        wraps = column in WRAPPING_COLUMNS
        table.add_column(column, overflow="fold" if wraps else "ellipsis", no_wrap=not wraps)
    return table


def print_table(table: Table) -> None:
    # Created per call: it writes to whatever sys.stdout is now (the test runner swaps it).
    Console(highlight=False).print(table)


@models_app.command("list")
@one_line_errors
def list_models(
    stage: OptionalStage = None,
    group: Annotated[str | None, typer.Option("--group", "-g", help="a model package group (not --stage)")] = None,
    status: Annotated[str | None, typer.Option(help=f"only this status: {', '.join(ApprovalStatus)}")] = None,
    as_json: AsJson = False,
) -> None:
    """The versions of the stage's model package group, newest first, with their accuracy and who decided."""
    if (stage is None) == (group is None):
        raise CommandError("give either --stage or --group")
    group = group or stage_group(str(stage))
    registry = Registry()
    rows = []
    for summary in registry.list_versions(group, status):
        version = registry.describe(summary.arn)
        rows.append(version_row(version, registry.metrics(version)))
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    if not rows:
        typer.echo(f"model package group {group} has no {f'{status} ' if status else ''}versions yet")
        return
    table = folding_table(group, "version", "status", "created", "accuracy", "decided by")
    for row in rows:
        accuracy = "unknown" if row["accuracy"] is None else f"{row['accuracy']:.4f}"
        decided_by = short_identity(row["decided_by"]) if row["decided_by"] else ""
        created = row["created"].replace("T", " ")[: len("2026-01-01 00:00")]
        table.add_row(str(row["version"]), row["status"], created, accuracy, decided_by)
    print_table(table)


@models_app.command("show")
@one_line_errors
def show_model(version: VersionArgument, stage: Stage, as_json: AsJson = False) -> None:
    """Everything about one version: status, lineage, artifacts, metrics per class, approval history."""
    registry = Registry()
    model = registry.describe(registry.version_arn(stage_group(stage), version))
    report = registry.metrics(model)
    document = {
        "arn": model.arn,
        "group": model.group,
        "version": model.version,
        "status": model.status,
        "created": iso(model.created),
        "last_modified": iso(model.last_modified),
        "description": model.description,
        "approval_description": model.approval_description,
        "lineage": model.lineage,
        "containers": [{"image": c.image, "model_data_url": c.model_data_url} for c in model.containers],
        "metadata": model.other_metadata,
        "metrics": asdict(report),
        "decisions": [asdict(decision) for decision in model.decisions],
    }
    if as_json:
        typer.echo(json.dumps(document, indent=1))
        return
    lines = {key: document[key] for key in ("arn", "status", "created", "last_modified", "description")}
    lines["approval"] = model.approval_description
    lines.update({f"lineage {key}": value for key, value in model.lineage.items()})
    for number, container in enumerate(model.containers, start=1):
        lines[f"image {number}"] = container.image
        lines[f"model data {number}"] = container.model_data_url
    lines.update({f"metadata {key}": value for key, value in model.other_metadata.items()})
    lines["metrics report"] = report.uri or "none attached"
    if report.accuracy is None:
        lines["accuracy"] = f"unknown: {report.problem}"
    else:
        deviation = report.accuracy_standard_deviation
        lines["accuracy"] = f"{report.accuracy:.4f}" + ("" if deviation is None else f" (sd {deviation:.4f})")
    shown = {key: value for key, value in lines.items() if value}
    width = max(map(len, shown))
    typer.echo("\n".join(f"{key:>{width}}: {value}" for key, value in shown.items()))
    if report.per_class:
        table = folding_table("metrics per class", "class", "precision", "recall", "f1", "support")
        for label, values in report.per_class.items():
            scores = [
                "" if values.get(name) is None else f"{values[name]:.4f}" for name in ("precision", "recall", "f1")
            ]
            support = "" if values.get("support") is None else str(int(values["support"]))
            table.add_row(label, *scores, support)
        print_table(table)
    if model.decisions:
        table = folding_table("approval history", "#", "status", "at", "by", "reason")
        for decision in model.decisions:
            reason = decision.reason + (f" (forced: {decision.forced})" if decision.forced else "")
            table.add_row(str(decision.number), decision.status, decision.at, decision.by, reason)
        print_table(table)
    else:
        typer.echo("no approval decisions recorded")


@models_app.command("approve")
@one_line_errors
def approve_model(
    ctx: typer.Context,
    version: VersionArgument,
    stage: Stage,
    reason: Reason = None,
    force: Annotated[bool, typer.Option(help="approve although accuracy is below the threshold or unreadable")] = False,
) -> None:
    """Approve a version: its accuracy must reach the stage's pipeline.accuracy_threshold (unless --force).

    Approving starts a deployment (the approval event), so an already Approved version is left untouched."""
    reason = checked_reason(reason)  # before any AWS call
    config = stage_config(stage)
    registry = Registry()
    arn = registry.version_arn(naming.model_package_group_name(config), version)
    outcome = registry.approve(arn, reason, accuracy_threshold=config.pipeline.accuracy_threshold, force=force)
    typer.echo(outcome.message)
    if outcome.changed and stage == PROMOTION_SOURCE_STAGE:
        typer.echo(f"next: {suggested(ctx, 'promote', '--to', 'staging', '--version', str(outcome.version.version))}")


@models_app.command("reject")
@one_line_errors
def reject_model(
    ctx: typer.Context,
    version: VersionArgument,
    stage: Stage,
    reason: Reason = None,
    manifest_dir: ManifestDir = None,
) -> None:
    """Reject a version (also an Approved one, to withdraw it); says which stages still serve it, and what to run."""
    reason = checked_reason(reason)  # before any AWS call
    manifest_dir = manifest_directory(ctx, manifest_dir)
    registry = Registry()
    outcome = registry.reject(registry.version_arn(stage_group(stage), version), reason)
    typer.echo(outcome.message)
    for served_stage in STAGE_NAMES:
        if manifest.deployed_model_package_arn(served_stage, manifest_dir) == outcome.version.arn:
            typer.echo(
                f"warning: {served_stage} still serves it; {replacement(ctx, registry, served_stage, manifest_dir)}"
            )


@models_app.command("resolve")
@one_line_errors
def resolve_model(
    stage: Stage,
    version: Annotated[str | None, typer.Option("--version", "-v", help="this version, if Approved")] = None,
) -> None:
    """Print only the ARN of the stage's latest Approved version (by creation time), or of --version if Approved."""
    registry = Registry()
    model = latest_approved(registry, stage) if version is None else approved_version(registry, stage, version)
    typer.echo(model.arn)


def latest_approved(registry: Registry, stage: str) -> ModelVersion:
    group = stage_group_reference(stage)
    latest = registry.latest_approved(group)
    if latest is None:
        raise CommandError(f"model package group {group} has no Approved version; approve one first")
    return registry.describe(latest.arn)


def approved_version(registry: Registry, stage: str, reference: str) -> ModelVersion:
    model = registry.describe(registry.version_arn(stage_group_reference(stage), reference))
    if model.status != ApprovalStatus.APPROVED:
        raise CommandError(
            f"version {model.label} is {model.status}, not Approved; approve it first: "
            f"mlops models approve {model.version} --stage {stage} --reason ..."
        )
    return model


def display_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# With --local, the manifests live beside the embedded AWS's state: the synth reads only infra/deployments/, so it never
# deploys a version of the embedded account.
LOCAL_MANIFEST_DIR = "deployments"


def manifest_directory(ctx: typer.Context, given: Path | None) -> Path | None:
    """Where this command's deployment manifests are: --manifest-dir, else the local one with --local, else None
    (the committed infra/deployments/)."""
    if given is not None or not is_local(ctx):
        return given
    return LocalLayout.from_environment().root / LOCAL_MANIFEST_DIR


def promotion_target(registry: Registry, to: str, version: str | None, manifest_dir: Path | None) -> ModelVersion:
    """The version that `mlops promote --to TO [--version V]` serves; raises CommandError where it refuses."""
    if version is not None:
        return approved_version(registry, PROMOTION_SOURCE_STAGE, version)
    if to == PROMOTION_SOURCE_STAGE:
        return latest_approved(registry, PROMOTION_SOURCE_STAGE)
    staged = manifest.load(PROMOTION_SOURCE_STAGE, manifest_dir).current
    if staged is None:
        raise CommandError("staging serves no version yet; promote to staging (and smoke-test it) first")
    target = registry.describe(staged.model_package_arn)
    if target.status != ApprovalStatus.APPROVED:
        raise CommandError(f"staging serves version {target.label}, which is {target.status} now; not promoted")
    return target


def skipped_staging(to: str, target: ModelVersion, manifest_dir: Path | None) -> str | None:
    """Why promoting `target` to `to` would skip staging (prod takes what staging has served), or None."""
    if to == PROMOTION_SOURCE_STAGE:
        return None
    staging = manifest.load(PROMOTION_SOURCE_STAGE, manifest_dir)
    if staging.ever_served(target.arn):
        return None
    path = display_path(manifest.manifest_path(PROMOTION_SOURCE_STAGE, manifest_dir))
    return f"staging never served version {target.label} (per {path})"


def rollback_target(registry: Registry, stage: str, manifest_dir: Path | None) -> ModelVersion:
    """The version that `mlops rollback --stage STAGE` serves again; raises CommandError where it refuses."""
    history = manifest.load(stage, manifest_dir)
    if history.current is None:
        raise CommandError(f"{stage} serves no version yet; nothing to roll back")
    previous = history.serving_before()
    if previous is None:
        raise CommandError(f"{stage} serves version {history.current.version} and served nothing before it")
    target = registry.describe(previous.model_package_arn)
    if target.status != ApprovalStatus.APPROVED:
        raise CommandError(f"the previous version {target.label} is {target.status} now; not rolled back")
    return target


def replacement(
    ctx: typer.Context, registry: Registry, stage: str, manifest_dir: Path | None, roll_back: bool = True
) -> str:
    """What to run so that `stage` serves another Approved version: a command that succeeds if typed next (each
    candidate is planned as the command itself would plan it), else where to find a version to approve."""
    candidates: list[tuple[str, Callable[[], ModelVersion], list[str], str]] = []
    if roll_back:
        plan = functools.partial(rollback_target, registry, stage, manifest_dir)
        candidates.append(("to roll back", plan, ["rollback", "--stage", stage], stage))
    if stage in PROMOTION_TARGETS:
        plan = functools.partial(promotion_target, registry, stage, None, manifest_dir)
        candidates.append(("to serve another Approved version", plan, ["promote", "--to", stage], stage))
    if stage in PROMOTION_TARGETS and stage != PROMOTION_SOURCE_STAGE:
        # Prod takes what staging serves: a new version reaches it through staging.
        plan = functools.partial(promotion_target, registry, PROMOTION_SOURCE_STAGE, None, manifest_dir)
        arguments = ["promote", "--to", PROMOTION_SOURCE_STAGE]
        candidates.append((f"to stage a new version for {stage} first", plan, arguments, PROMOTION_SOURCE_STAGE))
    for purpose, plan, arguments, changed_stage in candidates:
        try:
            target = plan()
        except (CommandError, RegistryError):
            continue
        if manifest.deployed_model_package_arn(changed_stage, manifest_dir) != target.arn:
            return f"{purpose}, run: {suggested(ctx, *arguments)}"
    try:
        pending = registry.list_versions(stage_group_reference(PROMOTION_SOURCE_STAGE), ApprovalStatus.PENDING)
    except RegistryError as missing_group:
        if not is_local(ctx):
            return f"no other Approved version to serve: {missing_group}"
        pending = []  # an embedded AWS before its first local run: that run creates the group
    if pending:
        listing = suggested(
            ctx, "models", "list", "--stage", PROMOTION_SOURCE_STAGE, "--status", ApprovalStatus.PENDING.value
        )
        return f"no other Approved version to serve yet; to find one to approve, run: {listing}"
    train = (
        suggested_local_run(PROMOTION_SOURCE_STAGE)
        if is_local(ctx)
        else suggested(ctx, "pipeline", "start", "--stage", PROMOTION_SOURCE_STAGE)
    )
    return f"no other Approved version to serve, and none awaits approval; to train one, run: {train}"


def record_deployment(
    ctx: typer.Context,
    stage: str,
    model: ModelVersion,
    action: Literal["promote", "rollback"],
    reason: str,
    registry: Registry,
    manifest_dir: Path | None,
    forced: str = "",
) -> None:
    """Append the deployment to the stage's manifest and print the change and how to ship it."""
    history = manifest.load(stage, manifest_dir)
    before = f"version {history.current.version}" if history.current else "nothing"
    deployment = manifest.Deployment(
        model.arn, action, at=utc_timestamp(), by=registry.caller(), reason=" ".join(reason.split()), forced=forced
    )
    path = display_path(manifest.save(history.with_deployment(deployment), manifest_dir))
    how = " (rollback)" if action == "rollback" else f" (forced: {forced})" if forced else ""
    typer.echo(f"{stage}: {before} -> version {model.version}{how}")
    typer.echo(f"  {model.arn}")
    if is_local(ctx):
        typer.echo(f"wrote {path}, the embedded AWS's manifest (cdk synth reads only infra/deployments/)")
    else:
        typer.echo(f"wrote {path}; deploy it by committing: git add {path} && git commit")


@app.command("promote")
@one_line_errors
def promote(
    ctx: typer.Context,
    to: Annotated[str, typer.Option("--to", help="staging or prod")],
    version: Annotated[
        str | None,
        typer.Option(
            "--version",
            "-v",
            help="a version of the staging group; default: staging's latest Approved (for staging), "
            "what staging serves (for prod)",
        ),
    ] = None,
    reason: Annotated[str, typer.Option("--reason", "-r", help="recorded in the manifest")] = "",
    force: Annotated[
        bool, typer.Option(help="promote to prod a version that staging never served (recorded in the manifest)")
    ] = False,
    manifest_dir: ManifestDir = None,
) -> None:
    """Point a stage's deployment manifest at an Approved version; committing the manifest deploys it.

    With --local, the manifest is the embedded AWS's (under .local/), which no synth reads."""
    if to not in PROMOTION_TARGETS:
        raise CommandError(f"--to {to!r}: promote to one of {', '.join(PROMOTION_TARGETS)}")
    manifest_dir = manifest_directory(ctx, manifest_dir)
    registry = Registry()
    target = promotion_target(registry, to, version, manifest_dir)
    current = manifest.load(to, manifest_dir).current
    if current is not None and current.model_package_arn == target.arn:
        typer.echo(f"{to} already serves version {target.version}; nothing changed")
        return
    skipped = skipped_staging(to, target, manifest_dir)
    if skipped and not force:
        staging_first = suggested(ctx, "promote", "--to", PROMOTION_SOURCE_STAGE, "--version", str(target.version))
        raise CommandError(
            f"{skipped}; give --force to promote it to {to} anyway, or to stage it first, run: {staging_first}"
        )
    record_deployment(ctx, to, target, "promote", reason, registry, manifest_dir, forced=skipped or "")


@app.command("rollback")
@one_line_errors
def rollback(
    ctx: typer.Context,
    stage: Stage,
    reason: Annotated[str, typer.Option("--reason", "-r", help="recorded in the manifest")] = "",
    manifest_dir: ManifestDir = None,
) -> None:
    """Serve the version the current one replaced again (if it is still Approved)."""
    checked_stage(stage)
    manifest_dir = manifest_directory(ctx, manifest_dir)
    registry = Registry()
    try:
        target = rollback_target(registry, stage, manifest_dir)
    except CommandError as refusal:
        raise CommandError(f"{refusal}; {replacement(ctx, registry, stage, manifest_dir, roll_back=False)}") from None
    record_deployment(ctx, stage, target, "rollback", reason, registry, manifest_dir)


def deployment_story(history: manifest.Manifest) -> str:
    """How the current version came to be served: when, by whom, and what it replaced."""
    current, replaced = history.current, history.replaced
    assert current is not None, "a stage that serves nothing has no story"
    verb = "rolled back" if current.action == "rollback" else "promoted"
    story = f"{verb} {current.at} by {short_identity(current.by)}"
    if replaced is not None:
        story += f", replacing version {replaced.version}"
    return story + (f", forced: {current.forced}" if current.forced else "")


@app.command("deployed")
@one_line_errors
def deployed(
    ctx: typer.Context,
    stage: OptionalStage = None,
    check: Annotated[bool, typer.Option(help="fail unless every served version is still Approved")] = False,
    manifest_dir: ManifestDir = None,
) -> None:
    """What each stage serves, per its deployment manifest."""
    stages = [checked_stage(stage)] if stage else list(STAGE_NAMES)
    manifest_dir = manifest_directory(ctx, manifest_dir)
    registry = Registry() if check else None
    problems = []
    for name in stages:
        history = manifest.load(name, manifest_dir)
        current = history.current
        if current is None:
            typer.echo(f"{name}: nothing promoted")
            continue
        status = ""
        if registry is not None:
            try:
                status = registry.describe(current.model_package_arn).status
            except RegistryError:
                status = "not in the registry"
            if status != ApprovalStatus.APPROVED:
                problems.append(f"{name} serves {current.group}/{current.version}, which is {status}")
            status = f" [{status}]"
        typer.echo(f"{name}: version {current.version} of {current.group}{status} ({deployment_story(history)})")
        typer.echo(f"  {current.model_package_arn}")
    if problems:
        raise CommandError("; ".join(problems))


def smoke_test_body(feature_count: int) -> bytes:
    """One CSV row of zeros: any model accepts it, and it needs no test data."""
    return (",".join(["0"] * feature_count) + "\n").encode()


def invoke_with_zeros(runtime: Any, endpoint: str, signature: ModelSignature) -> str:
    """The label the endpoint answers for one row of zeros; raises unless it is 200 and one of the classes."""
    try:
        response = runtime.invoke_endpoint(
            EndpointName=endpoint, ContentType=CSV, Accept=CSV, Body=smoke_test_body(len(signature.feature_names))
        )
    except ClientError as error:
        raise CommandError(f"smoke test of endpoint {endpoint} failed: {error}") from None
    status = response["ResponseMetadata"]["HTTPStatusCode"]
    answer = response["Body"].read().decode(errors="replace").strip()
    label = answer.splitlines()[0].strip() if answer else ""
    if status != 200 or label not in signature.classes:
        shown = ", ".join(signature.classes[:10]) + (", ..." if len(signature.classes) > 10 else "")
        raise CommandError(
            f"smoke test of endpoint {endpoint} failed: HTTP {status}, answer {answer[:80]!r} is not one of the "
            f"model's classes ({shown})"
        )
    return label


@app.command("smoke-test")
@one_line_errors
def smoke_test(
    ctx: typer.Context,
    stage: Stage,
    endpoint: Annotated[str | None, typer.Option(help="default: the stage's real-time endpoint")] = None,
    model_package_arn: Annotated[
        str | None,
        typer.Option(help="the version the endpoint serves; default: the stage's manifest, else its config"),
    ] = None,
    manifest_dir: ManifestDir = None,
) -> None:
    """Invoke the stage's endpoint once with a row of zeros; passes on a 200 naming one of the model's classes."""
    config = stage_config(stage)
    # The config's version comes from infra/deployments/ or cdk.json: one of an account, never of the embedded AWS.
    configured = None if is_local(ctx) else config.inference.model_package_arn
    arn = (
        model_package_arn
        or manifest.deployed_model_package_arn(stage, manifest_directory(ctx, manifest_dir))
        or configured
    )
    if not arn:
        raise CommandError(
            f"{stage} serves no model package (none promoted, no inference.model_package_arn); "
            "name it with --model-package-arn"
        )
    if endpoint is None:
        if not config.inference.realtime.enabled:
            raise CommandError(f"{stage} has no real-time endpoint (inference.realtime.enabled is false); --endpoint")
        endpoint = naming.realtime_endpoint_name(config)
    registry = Registry()
    signature = registry.signature(registry.describe(arn))
    label = invoke_with_zeros(boto3.client("sagemaker-runtime"), endpoint, signature)
    typer.echo(
        f"smoke test passed: {endpoint} answered {label!r} (one of {len(signature.classes)} classes) "
        f"for a row of {len(signature.feature_names)} zeros"
    )


# Local runs: the pipeline definition executed here, and the operator's flow after it.

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


@local_app.command("run")
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


@local_app.command("loop")
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

    if isinstance(ctx.find_root().obj, Endpoint):
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


@local_app.command("aws")
@one_line_errors
def local_aws(
    ctx: typer.Context,
    port: Annotated[
        int, typer.Option(callback=within(0, 65535), help="loopback port to listen on (0: any free port)")
    ] = 4566,
) -> None:
    """Keep the embedded AWS up in the foreground (Ctrl-C stops it), for the AWS CLI, boto3 or a notebook."""
    if isinstance(ctx.find_root().obj, Endpoint):
        raise CommandError("`local aws` starts the embedded AWS itself; drop --local")
    layout = LocalLayout.from_environment()

    def ready(endpoint: Endpoint) -> None:
        typer.echo(f"embedded AWS at {endpoint.url}; state in {layout.aws_state_file}; Ctrl-C stops it")
        typer.echo("in another shell:")
        for name, value in endpoint.environment().items():
            typer.echo(f"  export {name}={value}")
        sys.stdout.flush()

    serve_until_stopped(layout, port, DEFAULT_LOCAL_REGION, ready)


def main() -> None:
    # The console script's start: before `pipeline definition` imports aws_cdk and jsii starts Node.
    silence_end_of_life_banner()
    app()


if __name__ == "__main__":
    main()
