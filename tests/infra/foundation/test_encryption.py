"""The stage KMS key: rotation, removal, and a key policy that lets only our roles use it."""

from __future__ import annotations

import pytest

from infra.config import STAGE_NAMES
from infra.foundation.encryption import KEY_USE_ACTIONS


def the_key(resources_of, stage: str) -> dict:
    (key,) = resources_of(stage, "Foundation", "AWS::KMS::Key").values()
    return key


def sagemaker_role_ids(resources_of, stage: str) -> set[str]:
    return {
        logical_id
        for logical_id, role in resources_of(stage, "Foundation", "AWS::IAM::Role").items()
        if role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
        == {"Service": "sagemaker.amazonaws.com"}
    }


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_key_rotates_yearly_and_has_a_stage_alias(resources_of, stage):
    properties = the_key(resources_of, stage)["Properties"]
    assert properties["EnableKeyRotation"] is True
    assert properties["RotationPeriodInDays"] == 365
    (alias,) = resources_of(stage, "Foundation", "AWS::KMS::Alias").values()
    assert alias["Properties"]["AliasName"] == f"alias/mlopskit-{stage}"


def test_key_is_destroyed_only_in_dev(resources_of):
    assert the_key(resources_of, "dev")["DeletionPolicy"] == "Delete"
    assert the_key(resources_of, "dev")["Properties"]["PendingWindowInDays"] == 7
    for stage in ("staging", "prod"):
        assert the_key(resources_of, stage)["DeletionPolicy"] == "RetainExceptOnCreate"
        assert the_key(resources_of, stage)["Properties"]["PendingWindowInDays"] == 30


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_only_the_two_sagemaker_roles_may_use_the_key(resources_of, stage):
    statements = the_key(resources_of, stage)["Properties"]["KeyPolicy"]["Statement"]
    role_ids = sagemaker_role_ids(resources_of, stage)
    assert len(role_ids) == 2
    grants = [s for s in statements if not s["Sid"].startswith("Account")]
    assert {s["Sid"] for s in grants} == {"RolesUseKey", "RolesGrantKeyToAwsResources"}
    for statement in grants:
        assert {principal["Fn::GetAtt"][0] for principal in statement["Principal"]["AWS"]} == role_ids
    (use,) = [s for s in grants if s["Sid"] == "RolesUseKey"]
    assert sorted(use["Action"]) == sorted(KEY_USE_ACTIONS)


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_account_root_administers_but_cannot_use_the_key(resources_of, stage):
    statements = the_key(resources_of, stage)["Properties"]["KeyPolicy"]["Statement"]
    (root,) = [s for s in statements if s["Sid"] == "AccountAdministersKey"]
    assert "kms:PutKeyPolicy" in root["Action"], "the account must be able to recover the key policy"
    assert not {"kms:*", "kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:CreateGrant"} & set(root["Action"])
    assert not [action for action in root["Action"] if "*" in action]


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_aws_resource_grants_are_conditioned(resources_of, stage):
    statements = the_key(resources_of, stage)["Properties"]["KeyPolicy"]["Statement"]
    (grants,) = [s for s in statements if s["Action"] == "kms:CreateGrant"]
    assert grants["Condition"] == {"Bool": {"kms:GrantIsForAWSResource": "true"}}


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_other_account_principals_use_the_key_only_through_s3(resources_of, stage):
    """Operators and CI put data into the stage buckets; IAM decides who, the key policy only allows S3 as the path."""
    statements = the_key(resources_of, stage)["Properties"]["KeyPolicy"]["Statement"]
    (through_s3,) = [s for s in statements if s["Sid"] == "AccountUsesKeyThroughS3"]
    assert sorted(through_s3["Action"]) == sorted(KEY_USE_ACTIONS)
    assert ":root" in str(through_s3["Principal"])
    conditions = through_s3["Condition"]["StringEquals"]
    assert conditions["kms:CallerAccount"] == {"Ref": "AWS::AccountId"}
    assert "s3." in str(conditions["kms:ViaService"]) and "AWS::Region" in str(conditions["kms:ViaService"])


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_account_principals_grant_the_key_only_to_sagemaker_resources_through_sagemaker(resources_of, stage):
    """CloudFormation and the batch state machine create endpoints and transform jobs with the key: SageMaker creates
    the volume grants with their credentials. They can neither use the key nor grant it to anything else."""
    statements = the_key(resources_of, stage)["Properties"]["KeyPolicy"]["Statement"]
    (through_sagemaker,) = [s for s in statements if s["Sid"] == "AccountGrantsKeyToSageMakerResources"]
    assert sorted(through_sagemaker["Action"]) == ["kms:CreateGrant", "kms:DescribeKey"]
    assert ":root" in str(through_sagemaker["Principal"])
    conditions = through_sagemaker["Condition"]
    assert "sagemaker." in str(conditions["StringEquals"]["kms:ViaService"])
    assert conditions["StringEquals"]["kms:CallerAccount"] == {"Ref": "AWS::AccountId"}
    assert conditions["BoolIfExists"] == {"kms:GrantIsForAWSResource": "true"}
