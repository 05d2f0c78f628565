"""Readers of the delivery stack's template in the session's delivery-enabled assembly."""

from __future__ import annotations

from typing import Any

import pytest

from infra.assembly import DELIVERY_CONSTRUCT_ID
from infra.cloud_assembly import SynthesizedStack


@pytest.fixture(scope="session")
def delivery_stack(delivery_app) -> SynthesizedStack:
    return delivery_app.stacks[DELIVERY_CONSTRUCT_ID]


@pytest.fixture(scope="session")
def delivery_template(delivery_stack) -> dict[str, Any]:
    return delivery_stack.template


def of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {logical_id: r for logical_id, r in template["Resources"].items() if r["Type"] == resource_type}


@pytest.fixture(scope="session")
def pipeline_properties(delivery_template) -> dict[str, Any]:
    (pipeline,) = of_type(delivery_template, "AWS::CodePipeline::Pipeline").values()
    return pipeline["Properties"]


@pytest.fixture(scope="session")
def stages(pipeline_properties) -> dict[str, list[dict[str, Any]]]:
    """{stage name: its actions in run order}, stages in pipeline order."""
    return {
        stage["Name"]: sorted(stage["Actions"], key=lambda action: action.get("RunOrder", 1))
        for stage in pipeline_properties["Stages"]
    }


def project_of(template: dict[str, Any], action: dict[str, Any]) -> dict[str, Any]:
    """The CodeBuild project that a CodeBuild action runs."""
    return template["Resources"][action["Configuration"]["ProjectName"]["Ref"]]


def policy_statements_of(template: dict[str, Any], project: dict[str, Any]) -> list[dict[str, Any]]:
    """Every statement of the policies attached to the project's service role."""
    role_id = project["Properties"]["ServiceRole"]["Fn::GetAtt"][0]
    return [
        statement
        for policy in of_type(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
