"""`mlops`: the operator's command line. Every error is one line on stderr and a non-zero exit.

AWS access is plain boto3: credentials, region and endpoint come from the standard settings (AWS_PROFILE,
AWS_REGION, AWS_ENDPOINT_URL), so the same commands work against an account or an embedded AWS.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
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

from infra import manifest, naming
from infra.config import (
    RELEASE_SOURCE_STAGE,
    STAGE_NAMES,
    StageConfig,
    StageConfigError,
    cdk_json_context,
    load_stage_configs,
)
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

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
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
    ctx: typer.Context,
    model_dir: Annotated[
        Path | None, typer.Option(help="the model artifact: a directory, or one holding model.tar.gz")
    ] = None,
    stage: OptionalStage = None,
    version: Annotated[
        str | None, typer.Option("--version", "-v", help="with --stage: this Approved version (default: the latest)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="default: SAGEMAKER_BIND_TO_PORT, else 8080")] = None,
    workers: Annotated[int | None, typer.Option(help="default: SAGEMAKER_MODEL_SERVER_WORKERS, else 1/core")] = None,
    max_payload_mb: Annotated[int | None, typer.Option(help="larger bodies get 413 (default 6)")] = None,
    host: Annotated[str, typer.Option(help="the serving image listens on 0.0.0.0")] = "127.0.0.1",
) -> None:
    """Serve a model on this machine with the serving image's server: GET /ping, POST /invocations.

    The model is a local artifact (--model-dir) or an Approved version of the stage's registry (--stage)."""
    if (model_dir is None) == (stage is None):
        raise CommandError("give either --model-dir or --stage (with --version for other than the latest Approved)")
    if stage is not None:
        registry = Registry()
        model = latest_approved(registry, stage) if version is None else approved_version(registry, stage, version)
        model_dir = Path(tempfile.mkdtemp(prefix=f"mlops-serve-{model.group}-{model.version}-"))
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


def checked_stage(stage: str) -> str:
    if stage not in STAGE_NAMES:
        raise CommandError(f"unknown stage {stage!r}; allowed: {', '.join(STAGE_NAMES)}")
    return stage


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
        typer.echo(f"next: mlops promote --to staging --version {outcome.version.version}")


@models_app.command("reject")
@one_line_errors
def reject_model(
    version: VersionArgument, stage: Stage, reason: Reason = None, manifest_dir: ManifestDir = None
) -> None:
    """Reject a version (also an Approved one, to withdraw it); says which stages still serve it."""
    reason = checked_reason(reason)  # before any AWS call
    registry = Registry()
    outcome = registry.reject(registry.version_arn(stage_group(stage), version), reason)
    typer.echo(outcome.message)
    for served_stage in STAGE_NAMES:
        if manifest.deployed_model_package_arn(served_stage, manifest_dir) == outcome.version.arn:
            typer.echo(f"warning: {served_stage} still serves it; roll back: mlops rollback --stage {served_stage}")


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


def record_deployment(
    stage: str,
    model: ModelVersion,
    action: Literal["promote", "rollback"],
    reason: str,
    registry: Registry,
    manifest_dir: Path | None,
) -> None:
    """Append the deployment to the stage's manifest and print the change and how to ship it."""
    current = manifest.load(stage, manifest_dir)
    before = f"version {current.current.version}" if current.current else "nothing"
    deployment = manifest.Deployment(
        model.arn, action, at=utc_timestamp(), by=registry.caller(), reason=" ".join(reason.split())
    )
    path = display_path(manifest.save(current.with_deployment(deployment), manifest_dir))
    typer.echo(f"{stage}: {before} -> version {model.version}{' (rollback)' if action == 'rollback' else ''}")
    typer.echo(f"  {model.arn}")
    typer.echo(f"wrote {path}; deploy it by committing: git add {path} && git commit")


@app.command("promote")
@one_line_errors
def promote(
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
    manifest_dir: ManifestDir = None,
) -> None:
    """Point a stage's deployment manifest at an Approved version; committing the manifest deploys it."""
    if to not in PROMOTION_TARGETS:
        raise CommandError(f"--to {to!r}: promote to one of {', '.join(PROMOTION_TARGETS)}")
    registry = Registry()
    if version is not None:
        target = approved_version(registry, PROMOTION_SOURCE_STAGE, version)
    elif to == "staging":
        target = latest_approved(registry, PROMOTION_SOURCE_STAGE)
    else:
        staged = manifest.load(PROMOTION_SOURCE_STAGE, manifest_dir).current
        if staged is None:
            raise CommandError("staging serves no version yet; promote to staging (and smoke-test it) first")
        target = registry.describe(staged.model_package_arn)
        if target.status != ApprovalStatus.APPROVED:
            raise CommandError(f"staging serves version {target.label}, which is {target.status} now; not promoted")
    current = manifest.load(to, manifest_dir).current
    if current is not None and current.model_package_arn == target.arn:
        typer.echo(f"{to} already serves version {target.version}; nothing changed")
        return
    record_deployment(to, target, "promote", reason, registry, manifest_dir)


@app.command("rollback")
@one_line_errors
def rollback(
    stage: Stage,
    reason: Annotated[str, typer.Option("--reason", "-r", help="recorded in the manifest")] = "",
    manifest_dir: ManifestDir = None,
) -> None:
    """Serve the version the current one replaced again (if it is still Approved)."""
    history = manifest.load(checked_stage(stage), manifest_dir)
    if history.current is None:
        raise CommandError(f"{stage} serves no version yet; nothing to roll back")
    previous = history.serving_before()
    if previous is None:
        raise CommandError(f"{stage} serves version {history.current.version} and served nothing before it")
    registry = Registry()
    target = registry.describe(previous.model_package_arn)
    if target.status != ApprovalStatus.APPROVED:
        raise CommandError(
            f"the previous version {target.label} is {target.status} now; not rolled back "
            f"(promote an Approved version instead: mlops promote --to {stage} --version N)"
        )
    record_deployment(stage, target, "rollback", reason, registry, manifest_dir)


@app.command("deployed")
@one_line_errors
def deployed(
    stage: OptionalStage = None,
    check: Annotated[bool, typer.Option(help="fail unless every served version is still Approved")] = False,
    manifest_dir: ManifestDir = None,
) -> None:
    """What each stage serves, per its deployment manifest."""
    stages = [checked_stage(stage)] if stage else list(STAGE_NAMES)
    registry = Registry() if check else None
    problems = []
    for name in stages:
        current = manifest.load(name, manifest_dir).current
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
        typer.echo(f"{name}: version {current.version} of {current.group}{status} ({current.action} {current.at})")
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
    arn = (
        model_package_arn
        or manifest.deployed_model_package_arn(stage, manifest_dir)
        or config.inference.model_package_arn
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
Parameters = Annotated[list[str], typer.Option("--param", "-p", help="NAME=VALUE, repeatable")]


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
    from pipelines.local.console import ConsoleObserver, print_summary
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
            if files is not None:
                uri = local_stage.replace_raw_data(s3, files)
                console.print(f"Data: {', '.join(path.name for path in files)} -> {uri}")
        observer = ConsoleObserver(console)
        run = LocalPipelineRun(local_stage, definition, overrides, layout, observer, seed)
        console.print(f"Pipeline {naming.pipeline_name(config)}, execution {run.result.execution_arn}")
        try:
            result = run.run()
        finally:
            observer.close()
    print_summary(console, result)
    if result.failure:
        log = f" (log: {result.failure.log})" if result.failure.log else ""
        raise CommandError(f"{result.failure}{log}")
    return result


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
    sample_rows: SampleRows = None,
    seed: Seed = 0,
) -> None:
    """Run the stage's SageMaker Pipeline definition here, each job as a local process; registers the model."""
    console = local_console()
    print_next(console, stage, run_locally(ctx, console, stage, param, data, sample_rows, seed), approved=False)


@local_app.command("loop")
@one_line_errors
def local_loop(
    ctx: typer.Context,
    stage: Stage = "dev",
    param: Parameters = [],  # noqa: B006
    data: DataDirectory = None,
    sample_rows: SampleRows = None,
    seed: Seed = 0,
) -> None:
    """`local run`, then the operator's flow on its model: list, approve, serve, and one example request."""
    from pipelines.local.console import evaluation_report
    from pipelines.local.walkthrough import WalkthroughFailed, walk_through

    if isinstance(ctx.find_root().obj, Endpoint):
        raise CommandError("`local loop` runs its own commands against the embedded AWS; drop --local")
    console = local_console()
    result = run_locally(ctx, console, stage, param, data, sample_rows, seed)
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
def local_aws(ctx: typer.Context, port: Annotated[int, typer.Option(help="loopback port to listen on")] = 4566) -> None:
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
    app()


if __name__ == "__main__":
    main()
