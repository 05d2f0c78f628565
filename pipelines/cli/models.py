"""`mlops models`: the versions of a stage's model package group; list, show, approve, reject, resolve."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

import typer

from infra import manifest, naming
from infra.config import STAGE_NAMES
from pipelines.cli.common import (
    AsJson,
    CommandError,
    ManifestDir,
    OptionalStage,
    Stage,
    approved_version,
    folding_table,
    latest_approved,
    manifest_directory,
    one_line_errors,
    print_table,
    short_identity,
    stage_config,
    stage_group,
    suggested,
)
from pipelines.cli.promotion import PROMOTION_SOURCE_STAGE, replacement
from pipelines.registry import MetricsReport, ModelVersion, Registry, checked_reason, utc_timestamp
from pipelines.spec import ApprovalStatus

app = typer.Typer(no_args_is_help=True, help="The model registry: list, show, approve, reject, resolve.")

VersionArgument = Annotated[str, typer.Argument(help="a version number of the stage's group, or a version's ARN")]
Reason = Annotated[str | None, typer.Option("--reason", "-r", help="why; recorded with the decision (required)")]


def iso(moment: datetime | None) -> str | None:
    return utc_timestamp(moment) if moment else None


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


@app.command("list")
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


@app.command("show")
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


@app.command("approve")
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


@app.command("reject")
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


@app.command("resolve")
@one_line_errors
def resolve_model(
    stage: Stage,
    version: Annotated[str | None, typer.Option("--version", "-v", help="this version, if Approved")] = None,
) -> None:
    """Print only the ARN of the stage's latest Approved version (by creation time), or of --version if Approved."""
    registry = Registry()
    model = latest_approved(registry, stage) if version is None else approved_version(registry, stage, version)
    typer.echo(model.arn)
