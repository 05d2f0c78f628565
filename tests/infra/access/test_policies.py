"""Which statements belong to which principal and which resource, from every kind of policy a template can hold."""

from __future__ import annotations

import json

import pytest

from tests.infra.access.conditions import PolicyError
from tests.infra.access.deployment import Deployment, Environment, TemplateStack
from tests.infra.access.evaluator import AccessModel, UnknownPolicy
from tests.infra.access.handwritten import (
    ACCOUNT,
    OTHER_ACCOUNT,
    REGION,
    access,
    document,
    identity_policy,
    role,
    role_arn,
    root,
    statement,
)
from tests.infra.access.policies import declared_role

LAMBDA_BASIC = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


def test_a_role_has_its_inline_attached_and_managed_policies():
    managed = {
        "Type": "AWS::IAM::ManagedPolicy",
        "Properties": {
            "ManagedPolicyName": "topics",
            "PolicyDocument": document(statement("sns:Publish", "*", Sid="Managed")),
        },
    }
    attaching_managed = {
        "Type": "AWS::IAM::ManagedPolicy",
        "Properties": {
            "ManagedPolicyName": "queues",
            "Roles": [{"Ref": "Worker"}],
            "PolicyDocument": document(statement("sqs:SendMessage", "*", Sid="AttachedManaged")),
        },
    }
    worker = role(
        "worker",
        Policies=[{"PolicyName": "inline", "PolicyDocument": document(statement("s3:GetObject", "*", Sid="Inline"))}],
        ManagedPolicyArns=[{"Ref": "Managed"}],
    )
    model = access(
        {
            "Worker": worker,
            "Managed": managed,
            "AttachingManaged": attaching_managed,
            "Attached": identity_policy([{"Ref": "Worker"}], statement("s3:PutObject", "*", Sid="Attached")),
        }
    )

    worker = model.principal(role_arn("worker"))
    assert sorted(s.origin.sid for s in worker.identity) == ["Attached", "AttachedManaged", "Inline", "Managed"]
    assert worker.source == "Here Worker"
    for action in ("s3:GetObject", "s3:PutObject", "sns:Publish", "sqs:SendMessage"):
        assert model.evaluate(worker, action, "*").allowed, action
    assert not model.evaluate(worker, "s3:DeleteObject", "*").allowed


def test_policies_attach_to_a_role_of_another_stack_by_its_name():
    foundation = TemplateStack(
        "Foundation",
        {
            "Resources": {"Execution": role("execution")},
            "Outputs": {"ExecutionName": {"Value": {"Ref": "Execution"}}},
        },
        stack_name="foundation",
    )
    reference = {"Fn::GetStackOutput": {"StackName": "foundation", "Region": REGION, "OutputName": "ExecutionName"}}
    serving = TemplateStack(
        "Serving", {"Resources": {"Publish": identity_policy([reference], statement("sns:Publish", "*", Sid="Notify"))}}
    )
    deployment = Deployment.of([foundation, serving], default=Environment(ACCOUNT, REGION))

    execution = AccessModel(deployment).principal(role_arn("execution"))
    assert [(s.origin.stack, s.origin.sid) for s in execution.identity] == [("Serving", "Notify")]


def test_a_managed_policy_of_unknown_content_makes_the_role_fail_loudly_unless_supplied():
    resources = {"Function": role("function", ManagedPolicyArns=[LAMBDA_BASIC])}

    with pytest.raises(UnknownPolicy, match="AWSLambdaBasicExecutionRole"):
        access(resources).evaluate(role_arn("function"), "logs:PutLogEvents", "*")
    supplied = {LAMBDA_BASIC: document(statement(["logs:CreateLogStream", "logs:PutLogEvents"], "*"))}
    model = access(resources, managed_policies=supplied)
    assert model.evaluate(role_arn("function"), "logs:PutLogEvents", "*").allowed
    assert not model.evaluate(role_arn("function"), "s3:GetObject", "*").allowed


def test_a_permissions_boundary_is_not_evaluated_and_says_so():
    resources = {"Bounded": role("bounded", PermissionsBoundary=f"arn:aws:iam::{ACCOUNT}:policy/boundary")}

    with pytest.raises(UnknownPolicy, match="permissions boundary"):
        access(resources).evaluate(role_arn("bounded"), "s3:GetObject", "*")


def test_declared_roles_carry_their_own_policies_and_those_the_deployment_attaches_by_name():
    operator = declared_role(role_arn("operator"), document(statement("s3:GetObject", "*", Sid="Declared")))
    attached = identity_policy(["operator"], statement("s3:PutObject", "*", Sid="FromTemplate"))
    model = access({"Attached": attached}, principals=[operator])

    assert sorted(s.origin.sid for s in model.principal(role_arn("operator")).identity) == ["Declared", "FromTemplate"]
    assert model.evaluate(role_arn("operator"), "s3:PutObject", "*").allowed
    with pytest.raises(ValueError, match="a role of the deployment already"):
        access({"Operator": role("operator")}, principals=[declared_role(role_arn("operator"))])
    with pytest.raises(ValueError, match="not an IAM role ARN"):
        declared_role(root())


@pytest.mark.parametrize(
    ("written", "problem"),
    [
        (statement("s3:GetObject", "*", Principal={"AWS": root()}), "Principal belongs in resource policies"),
        (statement("s3:GetObject"), "needs Resource or NotResource"),
        (statement("s3:GetObject", "*", NotAction="s3:PutObject"), "both Action and NotAction"),
        (statement("s3:GetObject", "*", effect="Permit"), "Effect must be Allow or Deny"),
        (statement("s3:GetObject", "arn:aws:s3:::b/${aws:username}/*"), "policy variables"),
    ],
)
def test_identity_statements_iam_would_reject_or_that_are_unsupported_raise(written, problem):
    with pytest.raises(PolicyError, match=problem):
        access({"User": role("user"), "Policy": identity_policy(["user"], written)})


def test_a_principal_arn_cannot_hold_a_wildcard():
    trust = document(statement("sts:AssumeRole", Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:role/ci-*"}))

    with pytest.raises(PolicyError, match="wildcard"):
        access({"Target": role("target", trust)})


def test_one_topic_policy_governs_each_topic_it_lists():
    topics = {
        name: {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": name.lower()}} for name in ("Alarms", "Errors")
    }
    publish = statement("sns:Publish", "*", Principal={"Service": "cloudwatch.amazonaws.com"})
    policy = {
        "Type": "AWS::SNS::TopicPolicy",
        "Properties": {"Topics": [{"Ref": "Alarms"}, {"Ref": "Errors"}], "PolicyDocument": document(publish)},
    }
    model = access({**topics, "Policy": policy, "Unguarded": {"Type": "AWS::SNS::Topic"}})
    stack = model.deployment.stack("Here")

    for topic in ("Alarms", "Errors"):
        assert model.evaluate("cloudwatch.amazonaws.com", "sns:Publish", stack.arn(topic)).allowed
    assert not model.evaluate("cloudwatch.amazonaws.com", "sns:Publish", stack.arn("Unguarded")).allowed


def test_repository_policies_as_text_or_object():
    pull = document(statement(["ecr:BatchGetImage"], Principal={"AWS": root(OTHER_ACCOUNT)}))
    repositories = {
        "AsText": {
            "Type": "AWS::ECR::Repository",
            "Properties": {"RepositoryName": "text", "RepositoryPolicyText": json.dumps(pull)},
        },
        "AsObject": {
            "Type": "AWS::ECR::Repository",
            "Properties": {"RepositoryName": "object", "RepositoryPolicyText": pull},
        },
        "Private": {"Type": "AWS::ECR::Repository", "Properties": {"RepositoryName": "private"}},
    }
    puller = {"Puller": role("puller"), "Pull": identity_policy(["puller"], statement("ecr:BatchGetImage", "*"))}
    model = access(repositories, puller)
    stack = model.deployment.stack("Here")

    for repository in ("AsText", "AsObject"):
        assert model.evaluate(role_arn("puller", OTHER_ACCOUNT), "ecr:BatchGetImage", stack.arn(repository)).allowed
    assert not model.evaluate(role_arn("puller", OTHER_ACCOUNT), "ecr:BatchGetImage", stack.arn("Private")).allowed


@pytest.mark.parametrize(
    "bus_policy",
    [
        {"StatementId": "Partner", "Action": "events:PutEvents", "Principal": OTHER_ACCOUNT},
        {
            "StatementId": "Partner",
            "Statement": statement(
                "events:PutEvents",
                f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default",
                Principal={"AWS": root(OTHER_ACCOUNT)},
            ),
        },
    ],
)
def test_event_bus_policies_in_both_forms(bus_policy):
    sender = {"Sender": role("sender"), "Send": identity_policy(["sender"], statement("events:*", "*"))}
    model = access({"BusPolicy": {"Type": "AWS::Events::EventBusPolicy", "Properties": bus_policy}}, sender)
    bus = f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/default"

    assert model.evaluate(role_arn("sender", OTHER_ACCOUNT), "events:PutEvents", bus).allowed
    assert not model.evaluate(role_arn("sender", OTHER_ACCOUNT), "events:PutRule", bus).allowed


def test_a_key_without_a_key_policy_gets_the_default_one_which_delegates_to_iam():
    model = access(
        {
            "Key": {"Type": "AWS::KMS::Key", "Properties": {}},
            "User": role("user"),
            "Bystander": role("bystander"),
            "Policy": identity_policy(["user"], statement("kms:Decrypt", "*")),
        }
    )
    key_arn = model.deployment.stack("Here").arn("Key")

    decision = model.evaluate(role_arn("user"), "kms:Decrypt", key_arn)
    assert decision.allowed
    assert [origin.policy for origin in decision.account_allows] == ["default key policy"]
    assert not model.evaluate(role_arn("bystander"), "kms:Decrypt", key_arn).allowed
