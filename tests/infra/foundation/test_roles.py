"""The SageMaker execution role and the pipeline execution role: least privilege, statement by statement."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import STAGE_NAMES
from infra.layout import JOB_ARTIFACT_PREFIXES, JOB_DATA_PREFIXES, ArtifactPrefix, DataPrefix


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@pytest.fixture
def role_statements(resources_of):
    """role_statements(stage) -> {"SageMakerExecution" | "PipelineExecution": {sid: statement}}."""

    def of_stage(stage: str) -> dict[str, dict[str, dict[str, Any]]]:
        roles = resources_of(stage, "Foundation", "AWS::IAM::Role")
        names = {
            logical_id: name
            for logical_id in roles
            for name in ("SageMakerExecution", "PipelineExecution")
            if logical_id.startswith(f"Roles{name}")
        }
        statements: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in names.values()}
        for policy in resources_of(stage, "Foundation", "AWS::IAM::Policy").values():
            for role in policy["Properties"]["Roles"]:
                if role["Ref"] in names:
                    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                        statements[names[role["Ref"]]][statement["Sid"]] = statement
        return statements

    return of_stage


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_both_roles_are_assumed_only_by_sagemaker_and_carry_no_managed_policy(resources_of, stage):
    roles = {
        logical_id: role
        for logical_id, role in resources_of(stage, "Foundation", "AWS::IAM::Role").items()
        if logical_id.startswith("Roles")
    }
    assert len(roles) == 2
    for role in roles.values():
        assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
            {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}}
        ]
        assert "ManagedPolicyArns" not in role["Properties"]


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_no_action_wildcards_in_either_role(role_statements, stage):
    for role, statements in role_statements(stage).items():
        for sid, statement in statements.items():
            assert statement["Effect"] == "Allow"
            assert not [action for action in as_list(statement["Action"]) if "*" in action], f"{role}/{sid}"


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_pass_role_only_for_our_execution_role_to_sagemaker(role_statements, resources_of, stage):
    statements = role_statements(stage)
    passing = {
        (role, sid): statement
        for role, by_sid in statements.items()
        for sid, statement in by_sid.items()
        if "iam:PassRole" in as_list(statement["Action"])
    }
    assert list(passing) == [("PipelineExecution", "PassExecutionRoleToSageMaker")]
    (statement,) = passing.values()
    (execution_role_id,) = [
        i for i in resources_of(stage, "Foundation", "AWS::IAM::Role") if i.startswith("RolesSageMakerExecution")
    ]
    assert statement["Action"] == "iam:PassRole"
    assert statement["Resource"] == {"Fn::GetAtt": [execution_role_id, "Arn"]}
    assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_resource_star_only_where_aws_supports_nothing_narrower(role_statements, stage):
    star = {
        sid: statement
        for statements in role_statements(stage).values()
        for sid, statement in statements.items()
        if "*" in as_list(statement["Resource"])
    }
    assert {sid: statement["Action"] for sid, statement in star.items()} == {
        "PublishSageMakerMetrics": "cloudwatch:PutMetricData",
        "AuthenticateToEcr": "ecr:GetAuthorizationToken",
    }
    assert star["PublishSageMakerMetrics"]["Condition"] == {
        "StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}
    }


def object_arn_suffixes(statement: dict[str, Any]) -> dict[str, str]:
    """{bucket logical id: object key pattern} of the object ARNs a statement grants."""
    suffixes = {}
    for resource in as_list(statement["Resource"]):
        bucket_arn, key = resource["Fn::Join"][1]
        suffixes.setdefault(bucket_arn["Fn::GetAtt"][0], set()).add(key)
    return suffixes


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_object_access_is_limited_to_the_documented_prefixes(role_statements, stage):
    execution = role_statements(stage)["SageMakerExecution"]
    (data_bucket,) = object_arn_suffixes(execution["WriteProcessedData"])
    (artifacts_bucket,) = object_arn_suffixes(execution["PruneCheckpoints"])
    assert object_arn_suffixes(execution["ReadData"]) == {data_bucket: {f"/{p}*" for p in JOB_DATA_PREFIXES}}
    assert object_arn_suffixes(execution["WriteProcessedData"]) == {data_bucket: {f"/{DataPrefix.PROCESSED}*"}}
    assert object_arn_suffixes(execution["ReadWriteArtifacts"]) == {
        artifacts_bucket: {f"/{p}*" for p in JOB_ARTIFACT_PREFIXES}
    }
    assert object_arn_suffixes(execution["PruneCheckpoints"]) == {artifacts_bucket: {f"/{ArtifactPrefix.CHECKPOINTS}*"}}
    pipeline = role_statements(stage)["PipelineExecution"]
    assert object_arn_suffixes(pipeline["ReadStepProperties"]) == {
        artifacts_bucket: {f"/{ArtifactPrefix.PIPELINE_RUNS}*"}
    }
    listing = execution["ListStagePrefixes"]
    assert sorted(r["Fn::GetAtt"][0] for r in listing["Resource"]) == sorted([data_bucket, artifacts_bucket])
    prefixes = listing["Condition"]["StringLike"]["s3:prefix"]
    for prefix in (*JOB_DATA_PREFIXES, *JOB_ARTIFACT_PREFIXES):
        assert {prefix.rstrip("/"), f"{prefix}*"} <= set(prefixes), "with or without the input URI's trailing slash"
    assert len(prefixes) == 2 * len([*JOB_DATA_PREFIXES, *JOB_ARTIFACT_PREFIXES])


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_only_the_execution_role_deletes_objects_and_only_checkpoints(role_statements, stage):
    deleting = [
        (role, sid)
        for role, statements in role_statements(stage).items()
        for sid, statement in statements.items()
        if any(action.startswith("s3:Delete") for action in as_list(statement["Action"]))
    ]
    assert deleting == [("SageMakerExecution", "PruneCheckpoints")]


def rendered(resource: Any) -> str:
    if isinstance(resource, str):
        return resource
    if "Ref" in resource:
        return "${" + resource["Ref"] + "}"
    return "".join(rendered(part) for part in resource["Fn::Join"][1])


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_pipeline_role_registers_only_into_the_stage_model_package_group(role_statements, stage):
    registry = role_statements(stage)["PipelineExecution"]["RegisterModels"]
    prefix = "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}"
    assert sorted(rendered(r) for r in registry["Resource"]) == [
        f"{prefix}:model-package-group/mlopskit-{stage}-models",
        f"{prefix}:model-package/mlopskit-{stage}-models/*",
    ]
    jobs = role_statements(stage)["PipelineExecution"]["RunPipelineJobs"]
    assert sorted(rendered(r) for r in jobs["Resource"]) == [
        f"{prefix}:hyper-parameter-tuning-job/*",
        f"{prefix}:processing-job/*",
        f"{prefix}:training-job/*",
    ]


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_logs_and_images_are_scoped(role_statements, stage):
    execution = role_statements(stage)["SageMakerExecution"]
    scope = "${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/sagemaker/*"
    assert sorted(rendered(r) for r in execution["WriteJobLogs"]["Resource"]) == [
        f"arn:{scope}",
        f"arn:{scope}:log-stream:*",
    ]
    images = [rendered(r) for r in as_list(execution["PullAwsFrameworkImages"]["Resource"])]
    assert all(image.startswith("arn:${AWS::Partition}:ecr:${AWS::Region}:*:repository/") for image in images)
    assert not [image for image in images if image.endswith("/*")]


def test_jobs_in_a_vpc_get_network_interface_permissions_and_the_vpc_config(cdk_context):
    from aws_cdk import App
    from aws_cdk.assertions import Match, Template

    from infra.assembly import build_app
    from tests.conftest import NO_BUNDLING

    context = {
        **cdk_context,
        **NO_BUNDLING,
        "stage": "dev",
        "dev.pipeline.vpc.subnet_ids": "subnet-0123456789abcdef0,subnet-0123456789abcdef1",
        "dev.pipeline.vpc.security_group_ids": "sg-0123456789abcdef0",
    }
    (stage,) = build_app(App(context=context))
    foundation = Template.from_stack(stage.foundation)
    foundation.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {"Sid": "AttachJobsToVpc", "Action": Match.array_with(["ec2:CreateNetworkInterface"])}
                        )
                    ]
                )
            }
        },
    )
    body = str(Template.from_stack(stage.pipeline).to_json())
    assert "subnet-0123456789abcdef1" in body
    assert "sg-0123456789abcdef0" in body


def test_without_a_vpc_there_are_no_ec2_permissions(role_statements):
    assert all(
        not any(action.startswith("ec2:") for action in as_list(statement["Action"]))
        for statements in role_statements("prod").values()
        for statement in statements.values()
    )


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_jobs_pull_only_the_aws_framework_images(role_statements, stage):
    """No job runs the serving image: the serving role pulls it (tests/infra/test_access_paths.py)."""
    execution = role_statements(stage)["SageMakerExecution"]
    pulls = {sid for sid, s in execution.items() if "ecr:BatchGetImage" in as_list(s["Action"])}
    assert pulls == {"PullAwsFrameworkImages"}
    assert execution["AuthenticateToEcr"]["Action"] == "ecr:GetAuthorizationToken"
