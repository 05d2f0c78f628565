"""Helpers for the serving stacks' templates: resources per mode, rendered intrinsics, and one variant stage."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra.config import StageConfig, load_stage_configs
from tests.conftest import MODEL_PACKAGES, NO_BUNDLING, once_per_run

# A stage unlike staging and prod, built without the rest of the app: endpoints in a VPC, no data capture, a GPU type
# with local storage, serverless without provisioned concurrency, batch transform without triggers.
VARIANT_CONTEXT = {
    "stage": "dev",
    "dev.inference.model_package_arn": f"{MODEL_PACKAGES}/mlopskit-dev-models/1",
    "dev.pipeline.vpc.subnet_ids": "subnet-0123456789abcdef0",
    "dev.pipeline.vpc.security_group_ids": "sg-0123456789abcdef0",
    "dev.inference.realtime.instance_type": "ml.g5.xlarge",
    "dev.inference.realtime.data_capture_percent": "0",
    "dev.inference.serverless.enabled": "true",
    "dev.inference.batch_transform.enabled": "true",
    "dev.inference.batch_transform.run_on_upload": "false",
}


def render(value: Any) -> Any:
    """A CloudFormation value as text with placeholders: `${Logical}`, `${Logical.Attr}`, `${stack:Output}`."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return [render(item) for item in value]
    if "Ref" in value:
        return "${" + value["Ref"] + "}"
    if "Fn::GetAtt" in value:
        return "${" + ".".join(value["Fn::GetAtt"]) + "}"
    if "Fn::GetStackOutput" in value:
        reference = value["Fn::GetStackOutput"]
        return "${" + f"{reference['StackName']}:{reference['OutputName']}" + "}"
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(render(part) for part in parts)
    if "Fn::Sub" in value:
        return value["Fn::Sub"]
    return {key: render(item) for key, item in value.items()}


def only(resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    (resource,) = resources.values()
    return resource


def starting_with(resources: dict[str, dict[str, Any]], prefix: str) -> dict[str, dict[str, Any]]:
    """Resources of one construct: CDK starts their logical ids with the construct path."""
    return {logical_id: r for logical_id, r in resources.items() if logical_id.startswith(prefix)}


@pytest.fixture
def serving(resources_of) -> Callable[..., dict[str, dict[str, Any]]]:
    """serving(stage, type, prefix="") -> {logical id: resource} of the stage's serving stack."""

    def select(stage: str, resource_type: str, prefix: str = "") -> dict[str, dict[str, Any]]:
        return starting_with(resources_of(stage, "Serving", resource_type), prefix)

    return select


@pytest.fixture(scope="session")
def variant_context(cdk_context) -> dict[str, Any]:
    return {**cdk_context, **VARIANT_CONTEXT, **NO_BUNDLING}


@pytest.fixture(scope="session")
def variant_config(variant_context) -> StageConfig:
    (config,) = load_stage_configs(variant_context)
    return config


@pytest.fixture(scope="session")
def variant_template(variant_context, variant_config, tmp_path_factory) -> dict[str, Any]:
    """Its foundation and serving stacks only (the pipeline is not needed, and the slowest to build); built once per
    test run, as the app is, and shared by the workers."""

    def build(_directory: Path) -> dict[str, Any]:
        from aws_cdk import App
        from aws_cdk.assertions import Template

        from infra.foundation.stack import FoundationStack
        from infra.serving.stack import ServingStack

        app = App(context=variant_context)
        foundation = FoundationStack(app, "Foundation", config=variant_config)
        return Template.from_stack(ServingStack(app, "Serving", config=variant_config, foundation=foundation)).to_json()

    _, template = once_per_run(tmp_path_factory, "variant", build)
    return template


@pytest.fixture
def variant(variant_template) -> Callable[..., dict[str, dict[str, Any]]]:
    """variant(type, prefix="") -> {logical id: resource} of the variant stage's serving stack."""

    def select(resource_type: str, prefix: str = "") -> dict[str, dict[str, Any]]:
        resources = variant_template["Resources"]
        return starting_with({i: r for i, r in resources.items() if r["Type"] == resource_type}, prefix)

    return select
