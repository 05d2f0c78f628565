"""`mlops smoke-test`: one request to a stage's endpoint, which must answer one of the model's classes."""

from __future__ import annotations

from typing import Annotated, Any

import boto3
import typer
from botocore.exceptions import ClientError

from infra import manifest, naming
from pipelines.cli.common import (
    CommandError,
    ManifestDir,
    Stage,
    is_local,
    manifest_directory,
    one_line_errors,
    stage_config,
)
from pipelines.registry import ModelSignature, Registry
from training_code.contract import CSV


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
