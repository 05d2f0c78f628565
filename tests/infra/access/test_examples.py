"""The engine on the real synthesized templates: cross-stack references, CDK's key and bucket policies, trust
policies, and why a decision went as it did. The access matrix itself is tests/infra/test_access_paths.py."""

from __future__ import annotations

import pytest

from infra.assembly import DELIVERY_CONSTRUCT_ID
from tests.conftest import PROD_ACCOUNT
from tests.infra.access.accounts import STAGES_ACCOUNT, STAGES_REGION
from tests.infra.access.deployment import Deployment
from tests.infra.access.evaluator import AccessModel
from tests.infra.access.handwritten import document, statement
from tests.infra.access.policies import declared_role

SAGEMAKER = "sagemaker.amazonaws.com"
S3_SERVICE = f"s3.{STAGES_REGION}.amazonaws.com"
BUCKET = "AWS::S3::Bucket"
# Someone of the account who loads training data: IAM lets them write raw data and use KMS keys. Whether they may
# use the stage key is for its key policy to say.
OPERATOR = declared_role(
    f"arn:aws:iam::{STAGES_ACCOUNT}:role/data-operator",
    document(
        statement("s3:PutObject", f"arn:aws:s3:::mlopskit-*-data-{STAGES_ACCOUNT}-{STAGES_REGION}/raw/*"),
        statement(["kms:GenerateDataKey", "kms:Decrypt"], f"arn:aws:kms:{STAGES_REGION}:{STAGES_ACCOUNT}:key/*"),
    ),
)


@pytest.fixture(scope="module")
def stages(stages_deployment: Deployment) -> AccessModel:
    return AccessModel(stages_deployment, principals=[OPERATOR])


def object_arn(deployment: Deployment, stage: str, bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{deployment.name(f'{stage}/Foundation', bucket, BUCKET)}/{key}"


def key_arn(deployment: Deployment, stage: str) -> str:
    return deployment.arn(f"{stage}/Foundation", "EncryptionKey", "AWS::KMS::Key")


def test_the_dev_execution_role_reads_raw_data_of_its_own_stage_only(stages):
    execution = stages.role("dev/Foundation", "RolesSageMakerExecution")
    deployment = stages.deployment

    own = stages.evaluate(execution, "s3:GetObject", object_arn(deployment, "dev", "StorageData", "raw/train.csv"))
    assert own.allowed, own
    assert [origin.sid for origin in own.identity_allows] == ["ReadData"]
    for other in (
        object_arn(deployment, "staging", "StorageData", "raw/train.csv"),  # another stage's bucket
        object_arn(deployment, "dev", "StorageAccessLogs", "raw/train.csv"),  # another bucket of the stage
        object_arn(deployment, "dev", "StorageData", "exports/train.csv"),  # no documented prefix
    ):
        decision = stages.evaluate(execution, "s3:GetObject", other)
        assert not decision.allowed, decision
    over_http = stages.evaluate(
        execution,
        "s3:GetObject",
        object_arn(deployment, "dev", "StorageData", "raw/train.csv"),
        {"aws:SecureTransport": False},
    )
    assert not over_http.allowed
    assert [origin.logical_id for origin in over_http.denied_by] == [
        deployment.stack("dev/Foundation").logical_id("StorageDataPolicy")
    ]


def test_the_dev_execution_role_lists_only_the_documented_prefixes(stages):
    execution = stages.role("dev/Foundation", "RolesSageMakerExecution")
    data_bucket = f"arn:aws:s3:::{stages.deployment.name('dev/Foundation', 'StorageData', BUCKET)}"

    assert stages.evaluate(execution, "s3:ListBucket", data_bucket, {"s3:prefix": "raw/2024/"}).allowed
    assert stages.evaluate(execution, "s3:ListBucket", data_bucket, {"s3:prefix": "raw"}).allowed
    assert not stages.evaluate(execution, "s3:ListBucket", data_bucket, {"s3:prefix": "exports/"}).allowed
    assert not stages.evaluate(execution, "s3:ListBucket", data_bucket).allowed  # the whole bucket


def test_the_execution_role_uses_its_stage_key_by_the_key_policy_and_no_other(stages):
    execution = stages.role("dev/Foundation", "RolesSageMakerExecution")

    own = stages.evaluate(execution, "kms:Decrypt", key_arn(stages.deployment, "dev"))
    assert own.allowed, own
    assert [origin.sid for origin in own.resource_allows] == ["RolesUseKey"]
    assert not stages.evaluate(execution, "kms:Decrypt", key_arn(stages.deployment, "staging")).allowed


def test_the_pipeline_role_passes_the_execution_role_to_sagemaker_only(stages):
    pipeline = stages.role("dev/Foundation", "RolesPipelineExecution")
    execution = stages.role("dev/Foundation", "RolesSageMakerExecution")

    to_sagemaker = stages.evaluate(pipeline, "iam:PassRole", execution.arn, {"iam:PassedToService": SAGEMAKER})
    assert to_sagemaker.allowed, to_sagemaker
    assert not stages.evaluate(
        pipeline, "iam:PassRole", execution.arn, {"iam:PassedToService": "ec2.amazonaws.com"}
    ).allowed
    assert not stages.evaluate(pipeline, "iam:PassRole", execution.arn).allowed
    assert not stages.evaluate(pipeline, "iam:PassRole", pipeline.arn, {"iam:PassedToService": SAGEMAKER}).allowed


def test_an_operator_puts_raw_data_through_s3_but_cannot_use_the_key_directly(stages):
    deployment = stages.deployment
    raw_object = object_arn(deployment, "dev", "StorageData", "raw/batch-1.csv")
    key = key_arn(deployment, "dev")

    assert stages.evaluate(OPERATOR, "s3:PutObject", raw_object).allowed
    through_s3 = stages.evaluate(OPERATOR, "kms:GenerateDataKey", key, {"kms:ViaService": S3_SERVICE})
    assert through_s3.allowed, through_s3
    assert [origin.sid for origin in through_s3.account_allows] == ["AccountUsesKeyThroughS3"]
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        direct = stages.evaluate(OPERATOR, action, key)
        assert not direct.allowed, direct
        assert "key policy must allow" in direct.reason
    assert not stages.evaluate(
        OPERATOR, "s3:PutObject", object_arn(deployment, "dev", "StorageData", "processed/x")
    ).allowed


def test_which_services_may_assume_the_roles(stages):
    execution = stages.role("staging/Foundation", "RolesSageMakerExecution")
    state_machine = stages.role("staging/Serving", "BatchTransformStateMachineRole")

    assert stages.evaluate(SAGEMAKER, "sts:AssumeRole", execution.arn).allowed
    assert not stages.evaluate("lambda.amazonaws.com", "sts:AssumeRole", execution.arn).allowed
    assert stages.evaluate("states.amazonaws.com", "sts:AssumeRole", state_machine.arn).allowed
    assert not stages.evaluate(SAGEMAKER, "sts:AssumeRole", state_machine.arn).allowed
    # No role of the account may assume them: their trust policies name services only.
    assert not stages.evaluate(OPERATOR, "sts:AssumeRole", execution.arn).allowed


def test_cloudwatch_alarms_of_the_account_publish_to_the_alarm_topic_and_use_its_key(stages):
    topic = stages.deployment.arn("staging/Serving", "AlarmTopic", "AWS::SNS::Topic")
    key = stages.deployment.arn("staging/Serving", "NotificationKey", "AWS::KMS::Key")
    cloudwatch = "cloudwatch.amazonaws.com"

    assert stages.evaluate(cloudwatch, "sns:Publish", topic, {"aws:SourceAccount": STAGES_ACCOUNT}).allowed
    assert not stages.evaluate(cloudwatch, "sns:Publish", topic, {"aws:SourceAccount": PROD_ACCOUNT}).allowed
    assert not stages.evaluate(
        cloudwatch, "sns:Publish", topic, {"aws:SourceAccount": STAGES_ACCOUNT, "aws:SecureTransport": False}
    ).allowed
    assert stages.evaluate(cloudwatch, "kms:GenerateDataKey", key).allowed


@pytest.fixture(scope="module")
def delivery(delivery_deployment: Deployment) -> AccessModel:
    return AccessModel(delivery_deployment)


def test_the_staging_smoke_test_reads_model_archives_through_s3_under_the_key_it_finds_by_alias(delivery):
    pipeline = delivery.deployment.stack(DELIVERY_CONSTRUCT_ID)
    project = pipeline.logical_id("PipelinestagingSmokeTest", "AWS::CodeBuild::Project")
    smoke_test = delivery.principal(pipeline.resolve(pipeline.properties(project)["ServiceRole"]))
    staging = "Delivery/staging/Foundation"
    archive = f"arn:aws:s3:::{delivery.deployment.name(staging, 'StorageArtifacts', BUCKET)}/models/run-1/model.tar.gz"
    staging_key = delivery.deployment.arn(staging, "EncryptionKey", "AWS::KMS::Key")
    through_s3 = {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}

    assert delivery.evaluate(smoke_test, "s3:GetObject", archive).allowed
    # Its identity policy picks the key by kms:ResourceAliases (alias/mlopskit-staging); the key policy lets the
    # account use the key through S3.
    decrypt = delivery.evaluate(smoke_test, "kms:Decrypt", staging_key, through_s3)
    assert decrypt.allowed, decrypt
    assert [origin.sid for origin in decrypt.identity_allows] == ["DecryptModelArchives"]
    assert not delivery.evaluate(smoke_test, "kms:Decrypt", staging_key).allowed
    prod_key = delivery.deployment.arn("Delivery/prod/Foundation", "EncryptionKey", "AWS::KMS::Key")
    assert not delivery.evaluate(smoke_test, "kms:Decrypt", prod_key, through_s3).allowed
    endpoint = delivery.deployment.arn("Delivery/staging/Serving", "RealtimeEndpoint", "AWS::SageMaker::Endpoint")
    assert delivery.evaluate(smoke_test, "sagemaker:InvokeEndpoint", endpoint).allowed
