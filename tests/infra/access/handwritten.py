"""Small hand-written templates for the engine's own tests: named roles, policies, buckets and keys in two accounts."""

from __future__ import annotations

from typing import Any

from tests.infra.access.deployment import Deployment, Environment, TemplateStack
from tests.infra.access.evaluator import AccessModel

ACCOUNT = "111122223333"
OTHER_ACCOUNT = "444455556666"
REGION = "eu-west-1"
Resources = dict[str, dict[str, Any]]


def role_arn(name: str, account: str = ACCOUNT) -> str:
    return f"arn:aws:iam::{account}:role/{name}"


def root(account: str = ACCOUNT) -> str:
    return f"arn:aws:iam::{account}:root"


def statement(action: str | list[str], resource: Any = None, effect: str = "Allow", **elements: Any) -> dict[str, Any]:
    """A policy statement; `elements` adds Principal, Condition, Sid, NotAction, ... as written in a policy."""
    written = {"Effect": effect, "Action": action, **elements}
    if resource is not None:
        written["Resource"] = resource
    return {key: value for key, value in written.items() if value is not None}


def document(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def role(name: str, trust: dict[str, Any] | None = None, **properties: Any) -> dict[str, Any]:
    """A named role that Lambda may assume unless `trust` says otherwise."""
    trust = trust or document(statement("sts:AssumeRole", Principal={"Service": "lambda.amazonaws.com"}))
    return {"Type": "AWS::IAM::Role", "Properties": {"RoleName": name, "AssumeRolePolicyDocument": trust, **properties}}


def identity_policy(role_names: list[Any], *statements: dict[str, Any]) -> dict[str, Any]:
    return {
        "Type": "AWS::IAM::Policy",
        "Properties": {"PolicyName": "p", "Roles": role_names, "PolicyDocument": document(*statements)},
    }


def bucket(name: str) -> dict[str, Any]:
    return {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": name}}


def bucket_policy(bucket_name: str, *statements: dict[str, Any]) -> dict[str, Any]:
    return {
        "Type": "AWS::S3::BucketPolicy",
        "Properties": {"Bucket": bucket_name, "PolicyDocument": document(*statements)},
    }


def key(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": document(*statements)}}


def alias(name: str, key_logical_id: str) -> dict[str, Any]:
    return {
        "Type": "AWS::KMS::Alias",
        "Properties": {"AliasName": name, "TargetKeyId": {"Fn::GetAtt": [key_logical_id, "Arn"]}},
    }


def deployment(*stacks: tuple[str, Resources, str]) -> Deployment:
    """(display name, resources, account) of each stack, all in REGION."""
    return Deployment(
        (TemplateStack(name, {"Resources": resources}), Environment(account, REGION))
        for name, resources, account in stacks
    )


def access(resources: Resources, other_account_resources: Resources | None = None, **model: Any) -> AccessModel:
    """An access model of one stack in ACCOUNT and, optionally, one in OTHER_ACCOUNT."""
    stacks = [("Here", resources, ACCOUNT)]
    if other_account_resources is not None:
        stacks.append(("There", other_account_resources, OTHER_ACCOUNT))
    return AccessModel(deployment(*stacks), **model)
