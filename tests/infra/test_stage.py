"""Each stage: its stacks, environment, names and tags."""

from __future__ import annotations

import pytest

from infra.config import STAGE_NAMES

# Resource types that CloudFormation cannot tag; every other resource must carry the project and stage tags.
UNTAGGABLE_TYPES = {
    "AWS::IAM::Policy",
    "AWS::KMS::Alias",
    "AWS::S3::BucketPolicy",
    "Custom::S3AutoDeleteObjects",
    "AWS::Events::Rule",
    "AWS::SNS::TopicPolicy",
    "AWS::ApplicationAutoScaling::ScalingPolicy",
    "AWS::CloudWatch::Dashboard",
}


UNITS = ("Foundation", "Pipeline")
# Serving needs an approved model package: the test context names one for staging and prod only.
SERVING_STAGES = ("staging", "prod")


def test_every_stage_has_its_stacks(synthesized_app):
    assert sorted(synthesized_app.stacks) == sorted(
        [f"{stage}/{unit}" for stage in STAGE_NAMES for unit in UNITS]
        + [f"{stage}/Serving" for stage in SERVING_STAGES]
    )


@pytest.mark.parametrize("stage", STAGE_NAMES)
@pytest.mark.parametrize("unit", UNITS)
def test_stack_names_are_deterministic_and_env_agnostic(synthesized_app, stage, unit):
    stack = synthesized_app.stack(stage, unit)
    assert stack.stack_name == f"mlopskit-{stage}-{unit.lower()}"
    assert stack.environment == "aws://unknown-account/unknown-region"


@pytest.mark.parametrize("unit", UNITS)
def test_only_prod_is_termination_protected(synthesized_app, unit):
    protected = {stage: synthesized_app.stack(stage, unit).termination_protection for stage in STAGE_NAMES}
    assert protected == {"dev": False, "staging": False, "prod": True}


def test_serving_stacks_are_named_like_the_others_and_protected_in_prod(synthesized_app):
    stacks = {stage: synthesized_app.stack(stage, "Serving") for stage in SERVING_STAGES}
    assert {stage: stack.stack_name for stage, stack in stacks.items()} == {
        stage: f"mlopskit-{stage}-serving" for stage in SERVING_STAGES
    }
    assert {stage: stack.termination_protection for stage, stack in stacks.items()} == {"staging": False, "prod": True}


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_every_taggable_resource_carries_project_stage_and_configured_tags(synthesized_app, stage):
    for stack in synthesized_app.stacks.values():
        if not stack.display_name.startswith(f"{stage}/"):
            continue
        for logical_id, resource in stack.template["Resources"].items():
            if resource["Type"] in UNTAGGABLE_TYPES:
                continue
            tags = {tag["Key"]: tag["Value"] for tag in resource.get("Properties", {}).get("Tags", [])}
            assert {"project": "mlopskit", "stage": stage, "cost-center": "ml-platform"}.items() <= tags.items(), (
                f"{stack.display_name}/{logical_id} ({resource['Type']}) lacks tags: {tags}"
            )


def test_account_and_region_from_context_pin_the_stage_environment(cdk_context):
    from aws_cdk import App, Stack

    from infra.assembly import build_app

    app = App(context={**cdk_context, "stage": "prod", "prod.account": "123456789012", "prod.region": "eu-west-1"})
    (stage,) = build_app(app)
    stack = Stack.of(stage.foundation)
    assert (stack.account, stack.region) == ("123456789012", "eu-west-1")
