"""The approval trigger: an approval in the staging registry, and nothing else, starts the delivery pipeline."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk.assertions import Template
from moto import mock_aws

from infra.config import DeliveryConfig, StageConfig
from infra.promotion import APPROVAL_EVENT_DETAIL_TYPE, APPROVAL_EVENT_SOURCE, approval_event_pattern
from infra.promotion.approval import (
    ApprovalForwardingStack,
    ApprovalTrigger,
    approvals_are_forwarded,
    forwarding_account,
)
from tests.conftest import DELIVERY_REGION, PIPELINE_ACCOUNT
from tests.infra.promotion.conftest import of_type

STAGING_GROUP = "mlopskit-staging-models"


@pytest.fixture(scope="module")
def approval_rule(delivery_template) -> dict[str, Any]:
    (rule,) = [
        rule
        for rule in of_type(delivery_template, "AWS::Events::Rule").values()
        if rule["Properties"]["EventPattern"].get("source") == [APPROVAL_EVENT_SOURCE]
    ]
    return rule["Properties"]


def test_the_rule_matches_approvals_of_the_staging_group_only(approval_rule):
    assert approval_rule["State"] == "ENABLED"
    assert approval_rule["EventPattern"] == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Package State Change"],
        "detail": {"ModelPackageGroupName": [STAGING_GROUP], "ModelApprovalStatus": ["Approved"]},
    }
    assert approval_rule["EventPattern"] == approval_event_pattern(STAGING_GROUP)


def test_the_rule_starts_the_pipeline_with_a_role_that_may_only_start_it(approval_rule, delivery_template):
    (pipeline_id,) = of_type(delivery_template, "AWS::CodePipeline::Pipeline")
    (target,) = approval_rule["Targets"]
    assert target["Arn"] == {
        "Fn::Join": ["", [f"arn:aws:codepipeline:{DELIVERY_REGION}:{PIPELINE_ACCOUNT}:", {"Ref": pipeline_id}]]
    }
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    role = delivery_template["Resources"][role_id]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "events.amazonaws.com"}
    statements = [
        statement
        for policy in of_type(delivery_template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert statements == [
        {"Action": "codepipeline:StartPipelineExecution", "Effect": "Allow", "Resource": target["Arn"]}
    ]


def test_staging_beside_the_pipeline_needs_no_forwarding(delivery_app, delivery_template):
    assert not [name for name in delivery_app.stacks if name.endswith("/ApprovalForwarding")]
    assert of_type(delivery_template, "AWS::Events::EventBusPolicy") == {}


def state_change(group: str, status: str, version: int = 3) -> dict[str, Any]:
    """A "SageMaker Model Package State Change" event as SageMaker sends it (AWS SageMaker developer guide)."""
    arn = f"arn:aws:sagemaker:{DELIVERY_REGION}:{PIPELINE_ACCOUNT}:model-package/{group}/{version}"
    detail = {
        "ModelPackageGroupName": group,
        "ModelPackageVersion": version,
        "ModelPackageArn": arn,
        "ModelApprovalStatus": status,
        "ModelPackageStatus": "Completed",
        "CertifyForMarketplace": False,
    }
    return {
        "Source": APPROVAL_EVENT_SOURCE,
        "DetailType": APPROVAL_EVENT_DETAIL_TYPE,
        "Resources": [arn],
        "Detail": json.dumps(detail),
    }


@pytest.mark.parametrize(
    ("group", "status", "delivered"),
    [
        (STAGING_GROUP, "Approved", True),
        (STAGING_GROUP, "PendingManualApproval", False),
        (STAGING_GROUP, "Rejected", False),
        ("mlopskit-prod-models", "Approved", False),
        ("mlopskit-dev-models", "Approved", False),
    ],
)
def test_the_deployed_pattern_delivers_only_approvals_of_the_staging_group(approval_rule, group, status, delivered):
    """EventBridge (moto) evaluates the synthesized pattern itself, with a queue standing in for the pipeline."""
    with mock_aws():
        events = boto3.client("events", region_name=DELIVERY_REGION)
        sqs = boto3.client("sqs", region_name=DELIVERY_REGION)
        queue_url = sqs.create_queue(QueueName="pipeline-stand-in")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="approved", EventPattern=json.dumps(approval_rule["EventPattern"]), State="ENABLED")
        events.put_targets(Rule="approved", Targets=[{"Id": "pipeline", "Arn": queue_arn}])

        assert events.put_events(Entries=[state_change(group, status)])["FailedEntryCount"] == 0
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])

    assert len(messages) == (1 if delivered else 0)
    if delivered:
        event = json.loads(messages[0]["Body"])
        assert event["detail"]["ModelPackageArn"].endswith(f"/{STAGING_GROUP}/3")


def stage(account: str | None, region: str | None) -> StageConfig:
    return StageConfig(name="staging", project_name="mlopskit", account=account, region=region)


@pytest.mark.parametrize(
    ("account", "region", "forwarded", "admitted"),
    [
        (None, None, False, None),
        (PIPELINE_ACCOUNT, DELIVERY_REGION, False, None),
        ("333333333333", DELIVERY_REGION, True, "333333333333"),
        (PIPELINE_ACCOUNT, "us-east-1", True, None),
    ],
)
def test_approvals_are_forwarded_only_from_another_account_or_region(account, region, forwarded, admitted):
    pipeline = DeliveryConfig(account=PIPELINE_ACCOUNT, region=DELIVERY_REGION)
    assert approvals_are_forwarded(stage(account, region), pipeline) is forwarded
    assert forwarding_account(stage(account, region), pipeline) == admitted


def test_a_staging_registry_in_another_account_forwards_approvals_to_the_pipeline_bus(cdk_context):
    """The forwarding rule (staging account) sends the same events to the pipeline account's default bus, which
    admits that account; the rule there starts the pipeline."""
    app = App(context={key: value for key, value in cdk_context.items() if key.startswith("@aws-cdk/")})
    tooling = Stack(app, "Tooling", env=Environment(account=PIPELINE_ACCOUNT, region=DELIVERY_REGION))
    pipeline = codepipeline.Pipeline.from_pipeline_arn(
        tooling, "Pipeline", f"arn:aws:codepipeline:{DELIVERY_REGION}:{PIPELINE_ACCOUNT}:mlopskit-delivery"
    )
    ApprovalTrigger(
        tooling,
        "ApprovalTrigger",
        model_package_group_name=STAGING_GROUP,
        pipeline=pipeline,
        forwarded_from_account="333333333333",
    )
    forwarding = ApprovalForwardingStack(
        app,
        "Forwarding",
        model_package_group_name=STAGING_GROUP,
        pipeline_account=PIPELINE_ACCOUNT,
        pipeline_region=DELIVERY_REGION,
        env=Environment(account="333333333333", region=DELIVERY_REGION),
    )
    bus = f"arn:aws:events:{DELIVERY_REGION}:{PIPELINE_ACCOUNT}:event-bus/default"

    tooling_template = Template.from_stack(tooling).to_json()
    (policy,) = of_type(tooling_template, "AWS::Events::EventBusPolicy").values()
    assert policy["Properties"]["Statement"] == {
        "Sid": "approvals-from-333333333333",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::333333333333:root"},
        "Action": "events:PutEvents",
        "Resource": bus,
    }
    (rule,) = of_type(tooling_template, "AWS::Events::Rule").values()
    assert rule["Properties"]["EventPattern"] == approval_event_pattern(STAGING_GROUP)
    assert rule["Properties"]["Targets"][0]["Arn"] == pipeline.pipeline_arn

    forwarding_template = Template.from_stack(forwarding).to_json()
    (forward,) = of_type(forwarding_template, "AWS::Events::Rule").values()
    assert forward["Properties"]["EventPattern"] == approval_event_pattern(STAGING_GROUP)
    (target,) = forward["Properties"]["Targets"]
    assert target["Arn"] == bus
    (statement,) = [
        statement
        for policy in of_type(forwarding_template, "AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert statement == {"Action": "events:PutEvents", "Effect": "Allow", "Resource": bus}
