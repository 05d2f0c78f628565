"""What the `mlops` commands share: one-line errors, the stage options, the embedded AWS of `--local`, the stage's
config and pipeline parameters, approved versions, tables and paths."""

from __future__ import annotations

import contextlib
import functools
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from infra import naming
from infra.config import STAGE_NAMES, StageConfig, StageConfigError, cdk_json_context, load_stage_configs
from pipelines import spec
from pipelines.local.aws import EmbeddedAwsError, Endpoint, embedded_aws
from pipelines.local.expressions import DefinitionError
from pipelines.local.layout import LocalLayout
from pipelines.registry import ModelVersion, Registry, RegistryError
from pipelines.spec import ApprovalStatus


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


Stage = Annotated[str, typer.Option("--stage", "-s", help=f"one of {', '.join(STAGE_NAMES)}")]
OptionalStage = Annotated[str | None, typer.Option("--stage", "-s", help=f"one of {', '.join(STAGE_NAMES)}")]
AsJson = Annotated[bool, typer.Option("--json", help="machine-readable output")]
ManifestDir = Annotated[
    Path | None, typer.Option("--manifest-dir", hidden=True, help="where the deployment manifests are (tests)")
]


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


def suggested_local_run(stage: str, parameters: list[str] | tuple[str, ...] = ()) -> str:
    return shlex.join(
        ["mlops", "local", "run", "--stage", stage, *(part for value in parameters for part in ("-p", value))]
    )


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


def short_identity(arn: str) -> str:
    """`arn:aws:sts::123456789012:assumed-role/Operator/alice` -> `assumed-role/Operator/alice`."""
    return arn.rsplit(":", 1)[-1]


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
