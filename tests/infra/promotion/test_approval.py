"""The approval trigger: an approval in the staging registry, and nothing else, becomes a commit of staging's
manifest, made by a build that may push to the source repository and read the staging registry, and nothing more."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import boto3
import pytest
import yaml
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codecommit as codecommit
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Template
from moto import mock_aws

from infra.config import PROJECT_ROOT, DeliveryConfig, StageConfig
from infra.manifest import manifest_path
from infra.promotion import APPROVAL_EVENT_DETAIL_TYPE, APPROVAL_EVENT_SOURCE, approval_event_pattern
from infra.promotion.approval import (
    ApprovalForwardingStack,
    ApprovalTrigger,
    approvals_are_forwarded,
    forwarding_account,
)
from infra.promotion.promotion_commit import (
    APPROVED_ARN_VARIABLE,
    CLONE_COMMANDS,
    PROMOTE_COMMANDS,
    PromotionCommit,
)
from infra.promotion.steps import StagingResources
from tests.conftest import DELIVERY_REGION, PIPELINE_ACCOUNT
from tests.infra.promotion.conftest import as_list, of_type, policy_statements_of

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


@pytest.fixture(scope="module")
def promotion_stack(cdk_context) -> dict[str, Any]:
    """The promotion build and an approval rule on it, in a bare stack of the tooling account."""
    app = App(context={key: value for key, value in cdk_context.items() if key.startswith("@aws-cdk/")})
    stack = Stack(app, "Tooling", env=Environment(account=PIPELINE_ACCOUNT, region=DELIVERY_REGION))
    promotion = PromotionCommit(
        stack,
        "PromotionCommit",
        project_name="mlopskit",
        repository=codecommit.Repository.from_repository_name(stack, "Repository", "mlopskit"),
        branch="main",
        staging=StagingResources(stack, stage(None, None)),
        encryption_key=kms.Key(stack, "ArtifactKey"),
    )
    ApprovalTrigger(stack, "ApprovalTrigger", model_package_group_name=STAGING_GROUP, target=promotion.target())
    return Template.from_stack(stack).to_json()


@pytest.fixture(scope="module")
def promotion_project(promotion_stack) -> tuple[str, dict[str, Any]]:
    (project_id,) = of_type(promotion_stack, "AWS::CodeBuild::Project")
    return project_id, promotion_stack["Resources"][project_id]


def test_the_delivery_stack_turns_approvals_into_promotion_builds(approval_rule, delivery_template):
    (target,) = approval_rule["Targets"]
    project_id = target["Arn"]["Fn::GetAtt"][0]
    assert delivery_template["Resources"][project_id]["Properties"]["Name"] == "mlopskit-promote-approved"


def test_the_rule_starts_the_promotion_build_for_the_approved_version(promotion_stack, promotion_project):
    project_id, _ = promotion_project
    (rule,) = of_type(promotion_stack, "AWS::Events::Rule").values()
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [project_id, "Arn"]}
    transformer = target["InputTransformer"]
    assert transformer["InputPathsMap"] == {"detail-ModelPackageArn": "$.detail.ModelPackageArn"}
    # EventBridge puts the event's string in place of the bare placeholder, quoted: StartBuild gets a string.
    event = state_change(STAGING_GROUP, "Approved", version=7)
    arn = json.loads(event["Detail"])["ModelPackageArn"]
    start_build = json.loads(transformer["InputTemplate"].replace("<detail-ModelPackageArn>", json.dumps(arn)))
    assert start_build == {
        "environmentVariablesOverride": [{"name": APPROVED_ARN_VARIABLE, "type": "PLAINTEXT", "value": arn}]
    }


def test_the_promotion_build_commits_staging_manifest_for_the_approved_version_and_pushes_it(promotion_project):
    _, project = promotion_project
    spec = yaml.safe_load(project["Properties"]["Source"]["BuildSpec"])
    assert spec["phases"]["install"]["commands"] == CLONE_COMMANDS
    commands = spec["phases"]["build"]["commands"]
    assert commands == PROMOTE_COMMANDS
    assert commands.index("make setup-deploy") < commands.index(next(c for c in commands if "mlops promote" in c)), (
        "the CLI without torch"
    )
    (promote,) = [command for command in commands if "mlops promote" in command]
    assert promote.startswith(f'.venv/bin/mlops promote --to staging --version "${{{APPROVED_ARN_VARIABLE}##*/}}"')
    version = subprocess.run(
        ["bash", "-c", f'echo "${{{APPROVED_ARN_VARIABLE}##*/}}"'],
        env={APPROVED_ARN_VARIABLE: f"arn:aws:sagemaker:{DELIVERY_REGION}:{PIPELINE_ACCOUNT}:model-package/g/12"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert version.stdout.strip() == "12"
    assert f"git add {manifest_path('staging').relative_to(PROJECT_ROOT).as_posix()}" in commands
    assert commands[-1] == 'git push origin HEAD:"$BRANCH"'
    variables = {v["Name"]: v["Value"] for v in project["Properties"]["Environment"]["EnvironmentVariables"]}
    assert variables["BRANCH"] == "main"
    assert variables["REPOSITORY_URL"] == {
        "Fn::Join": [
            "",
            [f"https://git-codecommit.{DELIVERY_REGION}.", {"Ref": "AWS::URLSuffix"}, "/v1/repos/mlopskit"],
        ]
    }


def test_the_promotion_build_may_push_to_the_source_repository_and_read_the_staging_registry_only(
    promotion_project, delivery_template
):
    _, project = promotion_project
    statements = {statement.get("Sid"): statement for statement in policy_statements_of(delivery_template, project)}
    push = statements["CommitTheManifest"]
    assert sorted(as_list(push["Action"])) == ["codecommit:GitPull", "codecommit:GitPush"]
    assert as_list(push["Resource"]) == [f"arn:aws:codecommit:{DELIVERY_REGION}:{PIPELINE_ACCOUNT}:mlopskit"]
    registry = statements["ReadApprovedStagingVersion"]
    assert sorted(as_list(registry["Action"])) == ["sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages"]
    allowed = {action for statement in statements.values() for action in as_list(statement["Action"])}
    assert not [action for action in allowed if action.startswith(("sagemaker:Update", "sagemaker:Create", "iam:"))]


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
    project = codebuild.Project.from_project_name(tooling, "Promotion", "mlopskit-promote-approved")
    ApprovalTrigger(
        tooling,
        "ApprovalTrigger",
        model_package_group_name=STAGING_GROUP,
        target=targets.CodeBuildProject(project),
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
    # A plain resource: events.CfnEventBusPolicy reads its deprecated Principal as it renders, a warning in each synth.
    assert not [c for c in tooling.node.find_all() if isinstance(c, events.CfnEventBusPolicy)]
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
    assert rule["Properties"]["Targets"][0]["Arn"] == project.project_arn

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
