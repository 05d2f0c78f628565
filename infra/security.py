"""cdk-nag AwsSolutions checks on the whole app, and the acknowledgements that each carry their reason."""

from __future__ import annotations

import weakref
from typing import Any

from aws_cdk import Acknowledgment, App, CfnResource, Stack, Validations
from aws_cdk import aws_iam as iam
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

MINIMUM_REASON_LENGTH = 30

# What each construct acknowledged so far: reading a construct's metadata back through jsii costs tens of milliseconds
# a call (a quarter of a synth, measured), and a rule must be recorded once per construct.
_acknowledged: weakref.WeakKeyDictionary[IConstruct, set[tuple[str, str]]] = weakref.WeakKeyDictionary()


def enable_security_checks(app: App) -> None:
    """Synth fails on any AwsSolutions finding that is not acknowledged where it occurs."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def default_event_bus_arn(stack: Stack, account: str | None = None, region: str | None = None) -> str:
    """The default event bus of `account` in `region` (the stack's own where not given)."""
    return stack.format_arn(
        service="events", resource="event-bus", resource_name="default", account=account, region=region
    )


def admit_events_from(scope: IConstruct, construct_id: str, *, account: str, statement_id: str) -> CfnResource:
    """A statement on the default event bus of `scope`'s account and region that lets `account` put events on it.

    A plain resource rather than events.CfnEventBusPolicy: that class reads its deprecated Principal property as it
    renders, which prints a deprecation warning into every synth."""
    stack = Stack.of(scope)
    return CfnResource(
        scope,
        construct_id,
        type="AWS::Events::EventBusPolicy",
        properties={
            "EventBusName": "default",
            "StatementId": statement_id,
            "Statement": {
                "Sid": statement_id,
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{stack.partition}:iam::{account}:root"},
                "Action": "events:PutEvents",
                "Resource": default_event_bus_arn(stack),
            },
        },
    )


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge a finding on `construct` and everything under it; `rule` may name one finding, `Rule[Finding]`."""
    if len(reason) < MINIMUM_REASON_LENGTH:
        raise ValueError(f"acknowledgement of {rule} at {construct.node.path}: the reason must say why ({reason!r})")
    already = _acknowledged.setdefault(construct, set())
    if (rule, reason) not in already:
        Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))
        already.add((rule, reason))


def acknowledge_wildcard_resources(construct: IConstruct, resources: list[str], reason: str) -> None:
    """Acknowledge AwsSolutions-IAM5 for exactly the wildcard ones of these resources (a reason is then required)."""
    stack = Stack.of(construct)
    for resource in resources:
        rendered = _as_nag_renders(stack.resolve(resource))
        if "*" in rendered:
            acknowledge(construct, f"AwsSolutions-IAM5[Resource::{rendered}]", reason)


def allow(
    target: iam.Role | iam.Policy,
    sid: str,
    actions: list[str] | tuple[str, ...],
    resources: list[str],
    *,
    conditions: dict[str, Any] | None = None,
    wildcard_reason: str = "",
) -> None:
    """Add an Allow statement to a role or policy; a wildcard in a resource must say why, and is acknowledged for
    cdk-nag with that reason."""
    statement = iam.PolicyStatement(sid=sid, actions=list(actions), resources=resources, conditions=conditions)
    if isinstance(target, iam.Policy):
        target.add_statements(statement)
    else:
        target.add_to_policy(statement)
    acknowledge_wildcard_resources(target, resources, wildcard_reason)


def _as_nag_renders(value: Any) -> str:
    """A resolved CloudFormation value as cdk-nag writes it in finding ids: `<Logical.Attr>`, `<AWS::Region>`."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        logical_id, attribute = value["Fn::GetAtt"]
        return f"<{logical_id}.{attribute}>"
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_as_nag_renders(part) for part in parts)
    raise ValueError(f"cannot render {value!r} as a cdk-nag finding id")
