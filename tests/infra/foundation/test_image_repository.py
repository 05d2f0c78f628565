"""The stage's serving-image repository: what `cdk deploy` pushes to, what model versions name, who may pull."""

from __future__ import annotations

import json

import pytest

from infra.config import STAGE_NAMES
from infra.foundation.image_repository import IMAGE_PULL_ACTIONS, IMAGE_PUSH_ACTIONS
from tests.conftest import PROD_ACCOUNT


def repository(template: dict) -> dict:
    (resource,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::ECR::Repository"]
    return resource


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_tags_never_change_images_are_scanned_and_staging_and_prod_keep_them(synthesized_app, stage):
    resource = repository(synthesized_app.template(stage, "Foundation"))
    properties = resource["Properties"]
    assert properties["RepositoryName"] == f"mlopskit-{stage}-serving"
    assert properties["ImageTagMutability"] == "IMMUTABLE", "a model version names its image by tag"
    assert properties["ImageScanningConfiguration"] == {"ScanOnPush": True}
    (rule,) = json.loads(properties["LifecyclePolicy"]["LifecyclePolicyText"])["rules"]
    assert rule["selection"]["tagStatus"] == "untagged", "tagged images stay: registered versions use them"
    keeps = stage != "dev"
    assert resource["DeletionPolicy"] == ("RetainExceptOnCreate" if keeps else "Delete")
    assert properties["EmptyOnDelete"] is (not keeps)


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_the_bootstrap_publishing_role_pushes_and_nobody_else_is_named(synthesized_app, stage):
    (statement,) = repository(synthesized_app.template(stage, "Foundation"))["Properties"]["RepositoryPolicyText"][
        "Statement"
    ]
    assert statement["Sid"] == "CdkPublishesServingImage"
    assert sorted(statement["Action"]) == sorted(IMAGE_PUSH_ACTIONS)
    assert statement["Principal"] == {
        "AWS": {
            "Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/cdk-hnb659fds-image-publishing-role-"
            "${AWS::AccountId}-${AWS::Region}"
        }
    }


def test_staging_admits_the_serving_role_of_prod_in_its_other_account_to_pull(delivery_app):
    statements = repository(delivery_app.template("Delivery/staging", "Foundation"))["Properties"][
        "RepositoryPolicyText"
    ]["Statement"]
    (pull,) = [s for s in statements if s["Sid"] == "ProdServingPullsImage"]
    assert sorted(pull["Action"]) == sorted(IMAGE_PULL_ACTIONS)
    assert pull["Principal"] == {"AWS": f"arn:aws:iam::{PROD_ACCOUNT}:root"}
    role = pull["Condition"]["ArnEquals"]["aws:PrincipalArn"]
    assert role["Fn::Join"][1][-1] == f":iam::{PROD_ACCOUNT}:role/mlopskit-prod-serving"
    prod_statements = repository(delivery_app.template("Delivery/prod", "Foundation"))["Properties"][
        "RepositoryPolicyText"
    ]["Statement"]
    assert [s["Sid"] for s in prod_statements] == ["CdkPublishesServingImage"], "nobody serves prod's versions"


def test_the_serving_image_asset_is_published_to_the_stage_repository_once_it_exists(synthesized_app):
    for stage in STAGE_NAMES:
        pipeline = synthesized_app.stack(stage, "Pipeline")
        assets = json.loads(
            pipeline.template_path.with_name(pipeline.template_path.name.replace(".template.", ".assets.")).read_text()
        )
        ((destination,),) = [list(entry["destinations"].values()) for entry in assets["dockerImages"].values()]
        assert destination["repositoryName"] == f"mlopskit-{stage}-serving"
        assert "image-publishing-role" in destination["assumeRoleArn"]
        manifest = json.loads((pipeline.template_path.parent / "manifest.json").read_text())
        (artifact,) = [a for a in manifest["artifacts"].values() if a.get("displayName") == f"{stage}/Pipeline"]
        foundation = next(k for k, a in manifest["artifacts"].items() if a.get("displayName") == f"{stage}/Foundation")
        # `cdk deploy` publishes a stack's assets after the stacks it depends on: the repository exists by then.
        assert foundation in artifact["dependencies"]
