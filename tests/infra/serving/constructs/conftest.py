"""Each serving construct on its own, in a bare stack with hand-made props: no stage config, no app synth.

The pieces a construct takes from the serving stack are stand-ins here, with fixed names, so that tests can say
exactly which key, bucket, topic or role a resource refers to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from aws_cdk import App, Aws, RemovalPolicy, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template
from constructs import Construct

from infra.config import cdk_json_context
from infra.serving.notifications import NotificationKey
from infra.serving.role import ServingRole
from infra.serving.source import ServedModelSource

# The app's feature flags, so that constructs render here as they do in the app; nothing else of cdk.json.
FEATURE_FLAGS = {key: value for key, value in cdk_json_context().items() if key.startswith("@aws-cdk/")}
DATA_BUCKET = "unit-data"
ARTIFACTS_BUCKET = "unit-artifacts"
RESOURCE_PREFIX = "unit"
MODEL_NAME = "unit-model"


@dataclass(frozen=True)
class BareStack:
    """A stack holding only the shared pieces that serving constructs take; add one construct, then read it."""

    stack: Stack
    key: kms.Key
    data: s3.IBucket
    artifacts: s3.IBucket
    alarm_topic: sns.Topic
    notification_key: NotificationKey
    role: ServingRole

    def template(self) -> dict[str, Any]:
        return Template.from_stack(self.stack).to_json()

    def logical_id(self, construct: Construct) -> str:
        """The logical id of the construct's CloudFormation resource, or of the construct when it is one."""
        return self.stack.get_logical_id(construct.node.default_child or construct)

    def serving_role_statements(self, template: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return policy_statements(template, self.logical_id(self.role.policy))


@pytest.fixture
def bare() -> BareStack:
    stack = Stack(App(context=FEATURE_FLAGS), "Bare")
    key = kms.Key(stack, "StageKey")
    return BareStack(
        stack=stack,
        key=key,
        data=s3.Bucket.from_bucket_name(stack, "Data", DATA_BUCKET),
        artifacts=s3.Bucket.from_bucket_name(stack, "Artifacts", ARTIFACTS_BUCKET),
        alarm_topic=sns.Topic(stack, "AlarmTopic"),
        notification_key=NotificationKey(
            stack, "NotificationKey", resource_prefix=RESOURCE_PREFIX, removal_policy=RemovalPolicy.RETAIN
        ),
        role=ServingRole(
            stack,
            "ServingRole",
            role_name=f"{RESOURCE_PREFIX}-serving",
            description="the served model",
            source=ServedModelSource(resource_prefix=RESOURCE_PREFIX, account=Aws.ACCOUNT_ID, region=Aws.REGION),
            source_key=key,
            key=key,
            in_vpc=False,
        ),
    )


def of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {i: r for i, r in template["Resources"].items() if r["Type"] == resource_type}


def properties_of(template: dict[str, Any], resource_type: str) -> list[dict[str, Any]]:
    return [r["Properties"] for r in of_type(template, resource_type).values()]


def policy_statements(template: dict[str, Any], policy_id: str) -> dict[str, dict[str, Any]]:
    """The statements of an IAM policy by Sid."""
    policy = of_type(template, "AWS::IAM::Policy")[policy_id]
    return {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
