"""The app is synthesized once per test session, offline and without credentials; tests share it read-only."""

from __future__ import annotations

import os

from infra.node_runtime import silence_end_of_life_banner

silence_end_of_life_banner()
os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")

from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

from infra.cloud_assembly import SynthesizedStack, synthesized_stacks  # noqa: E402
from infra.config import (  # noqa: E402
    StageConfig,
    cdk_json_context,  # noqa: E402
    load_stage_configs,
)
from tests.offline import offline_without_credentials  # noqa: E402

# Skips asset bundling: templates and asset hashes stay the same, and tests need no Docker.
NO_BUNDLING = {"aws:cdk:bundling-stacks": []}
# cdk.json names no model package (one exists only after a pipeline run), so no stage would serve. As an operator
# would on the command line: staging serves in every mode (serverless with provisioned concurrency, batch on upload
# and on a schedule), prod in its cdk.json modes the version staging served before, and dev stays without a serving
# stack.
MODEL_PACKAGES = "arn:aws:sagemaker:eu-west-1:123456789012:model-package"
SERVING_CONTEXT = {
    "staging.inference.model_package_arn": f"{MODEL_PACKAGES}/mlopskit-staging-models/3",
    "staging.inference.serverless.enabled": "true",
    "staging.inference.serverless.provisioned_concurrency": "2",
    "staging.inference.serverless.max_provisioned_concurrency": "4",
    "staging.inference.batch_transform.schedule": "cron(0 4 ? * MON-FRI *)",
    "prod.inference.model_package_arn": f"{MODEL_PACKAGES}/mlopskit-staging-models/2",
}


# The same app with the delivery pipeline enabled (tests/infra/promotion): the pipeline in a tooling account, staging
# in that account too (the approval rule and smoke test live beside the pipeline), prod in its own account. The
# pipeline's synth passes the approved staging version to both stages, as here.
PIPELINE_ACCOUNT = "111111111111"
PROD_ACCOUNT = "222222222222"
DELIVERY_REGION = "eu-west-1"
DELIVERED_MODEL_PACKAGE = (
    f"arn:aws:sagemaker:{DELIVERY_REGION}:{PIPELINE_ACCOUNT}:model-package/mlopskit-staging-models/3"
)
DELIVERY_CONTEXT = {
    "delivery.enabled": "true",
    "delivery.account": PIPELINE_ACCOUNT,
    "delivery.region": DELIVERY_REGION,
    "delivery.source.kind": "codecommit",
    "delivery.source.repository": "mlopskit",
    "staging.account": PIPELINE_ACCOUNT,
    "staging.region": DELIVERY_REGION,
    "prod.account": PROD_ACCOUNT,
    "prod.region": DELIVERY_REGION,
    "staging.inference.model_package_arn": DELIVERED_MODEL_PACKAGE,
    "prod.inference.model_package_arn": DELIVERED_MODEL_PACKAGE,
}


@dataclass(frozen=True)
class SynthesizedApp:
    assembly_dir: Path
    stacks: dict[str, SynthesizedStack]
    connection_attempts: list[object]

    def stack(self, stage: str, unit: str) -> SynthesizedStack:
        return self.stacks[f"{stage}/{unit}"]

    def template(self, stage: str, unit: str) -> dict[str, Any]:
        return self.stack(stage, unit).template


def synthesize(context: dict[str, Any], outdir: Path) -> Path:
    from aws_cdk import App

    from infra.assembly import build_app

    app = App(context={**context, **NO_BUNDLING}, outdir=str(outdir))
    build_app(app)
    return Path(app.synth().directory)


@pytest.fixture(scope="session")
def cdk_context() -> dict[str, Any]:
    return {**cdk_json_context(), **SERVING_CONTEXT}


@pytest.fixture(scope="session")
def stage_configs(cdk_context: dict[str, Any]) -> dict[str, StageConfig]:
    return {config.name: config for config in load_stage_configs(cdk_context)}


@pytest.fixture(scope="session")
def synthesized_app(cdk_context: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    outdir = tmp_path_factory.mktemp("cdk.out")
    with offline_without_credentials() as attempts:
        assembly_dir = synthesize(cdk_context, outdir)
    stacks = {stack.display_name: stack for stack in synthesized_stacks(assembly_dir)}
    return SynthesizedApp(assembly_dir=assembly_dir, stacks=stacks, connection_attempts=attempts)


@pytest.fixture(scope="session")
def delivery_context(cdk_context: dict[str, Any]) -> dict[str, Any]:
    return {**cdk_context, **DELIVERY_CONTEXT}


@pytest.fixture(scope="session")
def delivery_app(delivery_context: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    """The app synthesized with `delivery.enabled`: dev at the app level, staging and prod under the pipeline."""
    outdir = tmp_path_factory.mktemp("cdk.out.delivery")
    with offline_without_credentials() as attempts:
        assembly_dir = synthesize(delivery_context, outdir)
    stacks = {stack.display_name: stack for stack in synthesized_stacks(assembly_dir)}
    return SynthesizedApp(assembly_dir=assembly_dir, stacks=stacks, connection_attempts=attempts)


@pytest.fixture(scope="session")
def resources_of(synthesized_app: SynthesizedApp) -> Callable[[str, str, str], dict[str, dict[str, Any]]]:
    """resources_of(stage, unit, type) -> {logical id: resource} of that CloudFormation type."""

    def select(stage: str, unit: str, resource_type: str) -> dict[str, dict[str, Any]]:
        resources = synthesized_app.template(stage, unit)["Resources"]
        return {logical_id: r for logical_id, r in resources.items() if r["Type"] == resource_type}

    return select
