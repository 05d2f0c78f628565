"""`mlops`: the operator's command line. Every error is one line on stderr: exit 2 for a command line that cannot
work as typed (an unknown option, a value out of range, a missing path), exit 1 for a refusal or a failure.

AWS access is plain boto3: credentials, region and endpoint come from the standard settings (AWS_PROFILE,
AWS_REGION, AWS_ENDPOINT_URL), so the same commands work against an account or an embedded AWS.
"""

from __future__ import annotations

from typing import Annotated

import typer

from infra.node_runtime import silence_end_of_life_banner
from pipelines.cli import local, models, monitor, pipeline, promotion, serve, smoke_test
from pipelines.cli.common import OneLineUsageErrors
from pipelines.local.aws import EmbeddedAwsError, embedded_aws
from pipelines.local.layout import LOCAL_DIR_VARIABLE, LocalLayout
from pipelines.sdk import collect_less_often, quiet_sdk

# One module per command group; the root adds them, and the commands of its own, in the order `mlops --help` lists.
app = typer.Typer(cls=OneLineUsageErrors, no_args_is_help=True, add_completion=False, help=__doc__)
app.add_typer(pipeline.app, name="pipeline")
app.add_typer(models.app, name="models")
app.add_typer(local.app, name="local")
app.add_typer(monitor.app, name="monitor")
app.command("serve")(serve.serve)
app.command("promote")(promotion.promote)
app.command("rollback")(promotion.rollback)
app.command("deployed")(promotion.deployed)
app.command("smoke-test")(smoke_test.smoke_test)


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


def main() -> None:
    # The console script's start: before `pipeline definition` imports aws_cdk and jsii starts Node, and before it or
    # a local run imports the SageMaker SDK, which announces itself as it is imported.
    collect_less_often()
    silence_end_of_life_banner()
    quiet_sdk()
    app()
