"""ServingRole on its own: what it may read of the served version and where it finds that version's key, VPC access
only in a VPC, and the statements the modes add through it."""

from __future__ import annotations

from aws_cdk import aws_sns as sns

from infra.foundation.roles import VPC_ACCESS_ACTIONS
from infra.serving.role import KEY_THROUGH_S3_ACTIONS, ServingRole
from infra.serving.source import ServedModelSource
from tests.infra.serving.conftest import render
from tests.infra.serving.constructs.conftest import (
    ARTIFACTS_BUCKET,
    DATA_BUCKET,
    RESOURCE_PREFIX,
    of_type,
    policy_statements,
)

SOURCE_PREFIX, SOURCE_ACCOUNT, SOURCE_REGION = "unit-staging", "111111111111", "eu-west-1"


def consumer_role(bare, *, in_vpc: bool) -> ServingRole:
    """The role of a stage that serves another stage's version, from that stage's account and region."""
    return ServingRole(
        bare.stack,
        "ConsumerRole",
        role_name="unit-prod-serving",
        description="serves staging's version",
        source=ServedModelSource(resource_prefix=SOURCE_PREFIX, account=SOURCE_ACCOUNT, region=SOURCE_REGION),
        source_key=None,
        key=bare.key,
        in_vpc=in_vpc,
    )


def test_its_own_version_is_read_with_the_given_key_through_s3_outside_any_vpc(bare):
    statements = bare.serving_role_statements(bare.template())
    archives = f"{RESOURCE_PREFIX}-artifacts-${{AWS::AccountId}}-${{AWS::Region}}"
    assert render(statements["ReadServedModel"]["Resource"]) == f"arn:${{AWS::Partition}}:s3:::{archives}/models/*"
    decrypt = statements["DecryptServedModelThroughS3"]
    assert decrypt["Resource"] == {"Fn::GetAtt": [bare.logical_id(bare.key), "Arn"]}
    assert render(decrypt["Condition"]) == {"StringEquals": {"kms:ViaService": "s3.${AWS::Region}.amazonaws.com"}}
    assert "AttachEndpointsToVpc" not in statements


def test_another_stage_s_version_is_read_in_its_account_and_region_with_any_key_there_through_s3(bare):
    role = consumer_role(bare, in_vpc=True)
    statements = policy_statements(bare.template(), bare.logical_id(role.policy))
    archives = f"{SOURCE_PREFIX}-artifacts-{SOURCE_ACCOUNT}-{SOURCE_REGION}"
    assert render(statements["ReadServedModel"]["Resource"]) == f"arn:${{AWS::Partition}}:s3:::{archives}/models/*"
    decrypt = statements["DecryptServedModelThroughS3"]
    assert render(decrypt["Resource"]) == f"arn:${{AWS::Partition}}:kms:{SOURCE_REGION}:{SOURCE_ACCOUNT}:key/*"
    assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": f"s3.{SOURCE_REGION}.amazonaws.com"}}
    assert render(statements["PullServingImage"]["Resource"]) == (
        f"arn:${{AWS::Partition}}:ecr:{SOURCE_REGION}:{SOURCE_ACCOUNT}:repository/{SOURCE_PREFIX}-serving"
    )
    assert sorted(statements["AttachEndpointsToVpc"]["Action"]) == sorted(VPC_ACCESS_ACTIONS)


def test_reads_writes_and_publishing_add_statements_and_the_stage_key_once(bare):
    topic = sns.Topic(bare.stack, "Topic")
    bare.role.read("ReadSome", bare.data, "batch-transform/input/")
    bare.role.write("WriteSome", bare.artifacts, "one/", "two/")
    bare.role.write("WriteMore", bare.artifacts, "three/")
    bare.role.publish("PublishSome", topic)
    template = bare.template()
    statements = bare.serving_role_statements(template)
    objects = "arn:${AWS::Partition}:s3:::"
    assert render(statements["ReadSome"]["Resource"]) == f"{objects}{DATA_BUCKET}/batch-transform/input/*"
    assert statements["ReadSomeList"]["Condition"] == {
        "StringLike": {"s3:prefix": ["batch-transform/input/", "batch-transform/input/*"]}
    }
    assert sorted(render(statements["WriteSome"]["Resource"])) == [
        f"{objects}{ARTIFACTS_BUCKET}/one/*",
        f"{objects}{ARTIFACTS_BUCKET}/two/*",
    ]
    assert statements["PublishSome"]["Resource"] == {"Ref": bare.logical_id(topic)}
    policy = of_type(template, "AWS::IAM::Policy")[bare.logical_id(bare.role.policy)]["Properties"]
    sids = [statement["Sid"] for statement in policy["PolicyDocument"]["Statement"]]
    assert sids.count("UseStageKeyThroughS3") == 1
    stage_key = statements["UseStageKeyThroughS3"]
    assert sorted(stage_key["Action"]) == sorted(KEY_THROUGH_S3_ACTIONS)
    assert stage_key["Resource"] == {"Fn::GetAtt": [bare.logical_id(bare.key), "Arn"]}
    assert render(stage_key["Condition"]) == {"StringEquals": {"kms:ViaService": "s3.${AWS::Region}.amazonaws.com"}}
