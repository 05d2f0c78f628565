"""`mlops promote`, `mlops rollback`, `mlops deployed`: what each stage serves, per its deployment manifest, and
changes to it. Every stage deploys versions of the staging stage's group: prod serves what staging has served."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal

import typer

from infra import manifest
from infra.config import RELEASE_SOURCE_STAGE, STAGE_NAMES
from pipelines.cli.common import (
    CommandError,
    ManifestDir,
    OptionalStage,
    Stage,
    approved_version,
    checked_stage,
    display_path,
    is_local,
    latest_approved,
    manifest_directory,
    one_line_errors,
    short_identity,
    stage_group_reference,
    suggested,
    suggested_local_run,
)
from pipelines.registry import ModelVersion, Registry, RegistryError, utc_timestamp
from pipelines.spec import ApprovalStatus

PROMOTION_TARGETS = ("staging", "prod")
PROMOTION_SOURCE_STAGE = RELEASE_SOURCE_STAGE


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
        model.arn,
        action,
        at=utc_timestamp(),
        by=registry.caller(),
        reason=" ".join(reason.split()),
        forced=forced,
        baseline=registry.drift_baseline(model),
    )
    path = display_path(manifest.save(history.with_deployment(deployment), manifest_dir))
    how = " (rollback)" if action == "rollback" else f" (forced: {forced})" if forced else ""
    typer.echo(f"{stage}: {before} -> version {model.version}{how}")
    typer.echo(f"  {model.arn}")
    if deployment.baseline is not None:
        features = len(deployment.baseline.features)
        typer.echo(f"  drift baseline {deployment.baseline.uri} ({features} features), which monitoring compares with")
    if is_local(ctx):
        typer.echo(f"wrote {path}, the embedded AWS's manifest (cdk synth reads only infra/deployments/)")
    else:
        typer.echo(f"wrote {path}; deploy it by committing: git add {path} && git commit")


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
