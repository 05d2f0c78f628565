"""Who can reach what once deployed: every runtime actor's requests, allowed or denied, evaluated over the synthesized
templates together (identity, bucket, key, model package group and repository policies; tests/infra/access).

Three layouts: every stage in one account (`cdk deploy` without the delivery pipeline); the delivery pipeline and
staging in a tooling account with prod in its own; and tooling, staging and prod each in an account of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from infra.assembly import DELIVERY_CONSTRUCT_ID
from infra.layout import BASELINE_DIR
from infra.serving.asynchronous import ASYNC_FAILURE_PREFIX, ASYNC_INPUT_PREFIX, ASYNC_OUTPUT_PREFIX
from infra.serving.batch_transform import OUTPUT_PREFIX as BATCH_OUTPUT_PREFIX
from tests.conftest import (
    DELIVERY_CONTEXT,
    DELIVERY_REGION,
    PIPELINE_ACCOUNT,
    PROD_ACCOUNT,
    SynthesizedApp,
    synthesized_once,
)
from tests.infra.access.accounts import STAGES_ACCOUNT, STAGES_REGION, delivery_deployment_of, stages_deployment_of
from tests.infra.access.deployment import Deployment
from tests.infra.access.evaluator import AccessModel
from tests.infra.access.handwritten import document, statement
from tests.infra.access.policies import Principal, declared_role
from training_code.contract import STATISTICS_FILE

REGION = STAGES_REGION
assert REGION == DELIVERY_REGION
STAGING_ACCOUNT = "444444444444"
OUTSIDE_ACCOUNT = "999999999999"
VIA_S3 = {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}
VIA_SAGEMAKER = {"kms:ViaService": f"sagemaker.{REGION}.amazonaws.com"}
TO_SAGEMAKER = {"iam:PassedToService": "sagemaker.amazonaws.com"}
BUCKET = "AWS::S3::Bucket"
MODEL_ARCHIVE = "models/mlopskit-staging-training/mlopskit-staging-tune-1-001/output/model.tar.gz"
# A run of a stage's training pipeline writes its outputs under pipeline-runs/<pipeline>/<execution>/: its baseline is
# what drift monitoring may read of them, its preprocessed training data is not.
STAGING_RUN = "pipeline-runs/mlopskit-staging-training/execution3/"
STAGING_BASELINE = f"{STAGING_RUN}{BASELINE_DIR}/{STATISTICS_FILE}"
STAGING_TRAINING_DATA = f"{STAGING_RUN}preprocess/train/train.csv"
CAPTURED = "data-capture/{prefix}-realtime/AllTraffic/2026/12/03/14/x.jsonl"
MONITORING_REPORT = "monitoring/{prefix}-realtime/2026/12/03/14/constraint_violations.json"
# Everything IAM can allow: what a resource's own policy still keeps out is what the rows below show.
ADMINISTRATOR = document(statement("*", "*"))


# --- The layouts ---


@dataclass
class Layout:
    name: str
    access: AccessModel
    stack_prefix: str  # "" or "Delivery/" (staging and prod under the delivery pipeline)
    accounts: dict[str, str]  # stage -> account
    delivery: bool

    def stack(self, stage: str, unit: str) -> str:
        return f"{self.stack_prefix if stage != 'dev' else ''}{stage}/{unit}"

    @property
    def deployment(self) -> Deployment:
        return self.access.deployment


SEPARATE_CONTEXT = {
    **DELIVERY_CONTEXT,
    "stage": "staging,prod",
    "staging.account": STAGING_ACCOUNT,
    "staging.inference.model_package_arn": (
        f"arn:aws:sagemaker:{REGION}:{STAGING_ACCOUNT}:model-package/mlopskit-staging-models/3"
    ),
    "prod.inference.model_package_arn": (
        f"arn:aws:sagemaker:{REGION}:{STAGING_ACCOUNT}:model-package/mlopskit-staging-models/3"
    ),
}


@pytest.fixture(scope="session")
def separate_app(cdk_context: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    """Delivery pipeline, staging and prod each in an account of its own."""
    return synthesized_once("cdk.out.separate", {**cdk_context, **SEPARATE_CONTEXT}, tmp_path_factory)


def declared(account: str, name: str, *statements: dict[str, Any]) -> Principal:
    return declared_role(f"arn:aws:iam::{account}:role/{name}", document(*statements))


def people(accounts: dict[str, str]) -> list[Principal]:
    """Principals that exist outside the templates: per account an operator who may do anything IAM allows, the CDK
    bootstrap roles that deploy (CloudFormation's) and publish images, and an administrator of a foreign account."""
    found = {declared(OUTSIDE_ACCOUNT, "administrator", statement("*", "*"))}
    for account in set(accounts.values()):
        found |= {
            declared(account, "operator", statement("*", "*")),
            declared(account, f"cdk-hnb659fds-cfn-exec-role-{account}-{REGION}", statement("*", "*")),
            declared(
                account,
                f"cdk-hnb659fds-image-publishing-role-{account}-{REGION}",
                # The bootstrap template grants it its own repository only.
                statement(
                    ["ecr:PutImage", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload"],
                    f"arn:aws:ecr:{REGION}:{account}:repository/cdk-hnb659fds-container-assets-{account}-{REGION}",
                ),
            ),
        }
    return sorted(found, key=lambda principal: principal.arn)


@pytest.fixture(scope="session")
def layouts(synthesized_app, delivery_app, separate_app) -> dict[str, Layout]:
    one = {stage: STAGES_ACCOUNT for stage in ("dev", "staging", "prod")}
    prod_elsewhere = {"staging": PIPELINE_ACCOUNT, "prod": PROD_ACCOUNT, "tooling": PIPELINE_ACCOUNT}
    separate = {"staging": STAGING_ACCOUNT, "prod": PROD_ACCOUNT, "tooling": PIPELINE_ACCOUNT}
    return {
        "one account": Layout(
            "one account",
            AccessModel(stages_deployment_of(synthesized_app), principals=people(one)),
            "",
            one,
            delivery=False,
        ),
        "prod elsewhere": Layout(
            "prod elsewhere",
            AccessModel(delivery_deployment_of(delivery_app), principals=people(prod_elsewhere)),
            "Delivery/",
            prod_elsewhere,
            delivery=True,
        ),
        "all separate": Layout(
            "all separate",
            AccessModel(delivery_deployment_of(separate_app), principals=people(separate)),
            "Delivery/",
            separate,
            delivery=True,
        ),
    }


# --- What the rows name: actors and resources, resolved in a layout ---

Resolver = Callable[[Layout], Any]


def role(stage: str, unit: str, construct_id: str) -> Resolver:
    return lambda layout: layout.access.role(layout.stack(stage, unit), construct_id)


def jobs(stage: str) -> Resolver:
    return role(stage, "Foundation", "RolesSageMakerExecution")


def pipeline(stage: str) -> Resolver:
    return role(stage, "Foundation", "RolesPipelineExecution")


def serving(stage: str) -> Resolver:
    return role(stage, "Serving", "ServingRole")


def batch_state_machine(stage: str) -> Resolver:
    return role(stage, "Serving", "BatchTransformStateMachineRole")


def retrain(stage: str) -> Resolver:
    """The role EventBridge starts the training pipeline as when the endpoint's drift passes the retrain threshold."""
    return role(stage, "Serving", "RealtimeDriftMonitoringRetrainRole")


def aws_service(name: str) -> Resolver:
    return lambda layout: layout.access.principal(name)


def training_pipeline(stage: str) -> Resolver:
    return lambda layout: layout.deployment.arn(layout.stack(stage, "Pipeline"), "Pipeline", "AWS::SageMaker::Pipeline")


def person(name: str, stage: str | None = None) -> Resolver:
    """A declared principal of the stage's account (or of the foreign account)."""

    def resolve(layout: Layout) -> Principal:
        account = layout.accounts[stage] if stage else OUTSIDE_ACCOUNT
        return layout.access.principal(f"arn:aws:iam::{account}:role/{name.format(account=account, region=REGION)}")

    return resolve


def operator(stage: str) -> Resolver:
    return person("operator", stage)


def cloudformation(stage: str) -> Resolver:
    return person("cdk-hnb659fds-cfn-exec-role-{account}-{region}", stage)


def image_publisher(stage: str) -> Resolver:
    return person("cdk-hnb659fds-image-publishing-role-{account}-{region}", stage)


OUTSIDER = person("administrator")


def codebuild_role(project_prefix: str) -> Resolver:
    def resolve(layout: Layout) -> Principal:
        pipeline_stack = layout.deployment.stack(DELIVERY_CONSTRUCT_ID)
        project = pipeline_stack.logical_id(project_prefix, "AWS::CodeBuild::Project")
        return layout.access.principal(pipeline_stack.resolve(pipeline_stack.properties(project)["ServiceRole"]))

    return resolve


DELIVERY_SYNTH = codebuild_role("PipelineBuildSynthCdkBuildProject")
SMOKE_TEST = codebuild_role("PipelinestagingSmokeTest")
PROMOTION_BUILD = codebuild_role("PromotionCommitProject")


def obj(stage: str, bucket: str, key: str) -> Resolver:
    construct = {"data": "StorageData", "artifacts": "StorageArtifacts"}[bucket]
    return lambda layout: (
        f"arn:aws:s3:::{layout.deployment.name(layout.stack(stage, 'Foundation'), construct, BUCKET)}/{key}"
    )


def bucket(stage: str, name: str) -> Resolver:
    construct = {"data": "StorageData", "artifacts": "StorageArtifacts"}[name]
    return lambda layout: layout.deployment.arn(layout.stack(stage, "Foundation"), construct, BUCKET)


def key(stage: str) -> Resolver:
    return lambda layout: layout.deployment.arn(layout.stack(stage, "Foundation"), "EncryptionKey", "AWS::KMS::Key")


def repository(stage: str) -> Resolver:
    return lambda layout: layout.deployment.arn(
        layout.stack(stage, "Foundation"), "ServingImagesRepository", "AWS::ECR::Repository"
    )


def sagemaker_arn(stage: str, resource: str, name: str) -> Resolver:
    return lambda layout: f"arn:aws:sagemaker:{REGION}:{layout.accounts[stage]}:{resource}/{name}"


def version(stage: str, number: int = 3) -> Resolver:
    return sagemaker_arn(stage, "model-package", f"mlopskit-{stage}-models/{number}")


def group(stage: str) -> Resolver:
    return sagemaker_arn(stage, "model-package-group", f"mlopskit-{stage}-models")


def role_arn(resolver: Resolver) -> Resolver:
    return lambda layout: resolver(layout).arn


def resource(stage: str, unit: str, construct_id: str, resource_type: str) -> Resolver:
    return lambda layout: layout.deployment.arn(layout.stack(stage, unit), construct_id, resource_type)


ALL_LAYOUTS = ("one account", "prod elsewhere", "all separate")
DELIVERY_LAYOUTS = ("prod elsewhere", "all separate")


@dataclass(frozen=True)
class Row:
    actor: str
    resolve_actor: Resolver = field(repr=False)
    action: str
    target: str
    resolve_target: Resolver = field(repr=False)
    allowed: bool
    context: dict[str, Any] = field(default_factory=dict)
    layouts: tuple[str, ...] = ALL_LAYOUTS

    @property
    def id(self) -> str:
        verdict = "allowed" if self.allowed else "denied"
        return f"{self.actor} | {self.action} | {self.target} | {verdict}"


def may(actor, resolve_actor, action, target, resolve_target, **options) -> Row:
    return Row(actor, resolve_actor, action, target, resolve_target, True, **options)


def may_not(actor, resolve_actor, action, target, resolve_target, **options) -> Row:
    return Row(actor, resolve_actor, action, target, resolve_target, False, **options)


# --- The matrix ---

ROWS = [
    # The training pipeline's jobs (processing, training, tuning) run as the execution role.
    may("staging jobs", jobs("staging"), "s3:GetObject", "staging data raw/", obj("staging", "data", "raw/d.csv")),
    may(
        "staging jobs",
        jobs("staging"),
        "s3:PutObject",
        "staging data processed/",
        obj("staging", "data", "processed/x"),
    ),
    may("staging jobs", jobs("staging"), "s3:PutObject", "staging models/", obj("staging", "artifacts", MODEL_ARCHIVE)),
    may(
        "staging jobs",
        jobs("staging"),
        "s3:PutObject",
        "staging checkpoints/",
        obj("staging", "artifacts", "checkpoints/j/c.pt"),
    ),
    may("staging jobs", jobs("staging"), "kms:Decrypt", "staging key", key("staging")),
    may_not(
        "staging jobs",
        jobs("staging"),
        "s3:PutObject",
        "staging data-capture/",
        obj("staging", "artifacts", "data-capture/e/x.jsonl"),
    ),
    may_not(
        "staging jobs",
        jobs("staging"),
        "s3:GetObject",
        "staging async input",
        obj("staging", "artifacts", f"{ASYNC_INPUT_PREFIX}r.csv"),
    ),
    may_not(
        "staging jobs",
        jobs("staging"),
        "s3:GetObject",
        "staging batch input",
        obj("staging", "data", "batch-transform/input/b.csv"),
    ),
    may_not("staging jobs", jobs("staging"), "s3:GetObject", "prod data raw/", obj("prod", "data", "raw/d.csv")),
    may_not("staging jobs", jobs("staging"), "kms:Decrypt", "prod key", key("prod")),
    # The SageMaker Pipeline starts the jobs and registers versions.
    may(
        "staging pipeline",
        pipeline("staging"),
        "iam:PassRole",
        "staging jobs role",
        role_arn(jobs("staging")),
        context=TO_SAGEMAKER,
    ),
    may_not(
        "staging pipeline",
        pipeline("staging"),
        "iam:PassRole",
        "staging jobs role to EC2",
        role_arn(jobs("staging")),
        context={"iam:PassedToService": "ec2.amazonaws.com"},
    ),
    may_not(
        "staging pipeline",
        pipeline("staging"),
        "iam:PassRole",
        "staging serving role",
        role_arn(serving("staging")),
        context=TO_SAGEMAKER,
    ),
    may(
        "staging pipeline",
        pipeline("staging"),
        "sagemaker:CreateModelPackage",
        "staging group version",
        version("staging", 12),
    ),
    may_not(
        "staging pipeline",
        pipeline("staging"),
        "sagemaker:CreateModelPackage",
        "prod group version",
        version("prod", 12),
    ),
    # Staging's serving role: its own stage's version, and what serving writes; nothing the pipeline produces.
    may(
        "staging serving",
        serving("staging"),
        "s3:GetObject",
        "staging models/",
        obj("staging", "artifacts", MODEL_ARCHIVE),
    ),
    may("staging serving", serving("staging"), "kms:Decrypt", "staging key through S3", key("staging"), context=VIA_S3),
    may("staging serving", serving("staging"), "ecr:BatchGetImage", "staging serving images", repository("staging")),
    may(
        "staging serving",
        serving("staging"),
        "s3:PutObject",
        "staging data-capture/",
        obj("staging", "artifacts", "data-capture/e/AllTraffic/x.jsonl"),
    ),
    may(
        "staging serving",
        serving("staging"),
        "s3:GetObject",
        "staging async input",
        obj("staging", "artifacts", f"{ASYNC_INPUT_PREFIX}r.csv"),
    ),
    may(
        "staging serving",
        serving("staging"),
        "s3:PutObject",
        "staging async output",
        obj("staging", "artifacts", f"{ASYNC_OUTPUT_PREFIX}r.out"),
    ),
    may(
        "staging serving",
        serving("staging"),
        "s3:PutObject",
        "staging async failures",
        obj("staging", "artifacts", f"{ASYNC_FAILURE_PREFIX}r.err"),
    ),
    may(
        "staging serving",
        serving("staging"),
        "sns:Publish",
        "staging async success topic",
        resource("staging", "Serving", "AsyncSuccessTopic", "AWS::SNS::Topic"),
    ),
    may(
        "staging serving",
        serving("staging"),
        "s3:GetObject",
        "staging batch input",
        obj("staging", "data", "batch-transform/input/b.csv"),
    ),
    may(
        "staging serving",
        serving("staging"),
        "s3:ListBucket",
        "staging data bucket, batch input prefix",
        bucket("staging", "data"),
        context={"s3:prefix": "batch-transform/input/"},
    ),
    may(
        "staging serving",
        serving("staging"),
        "s3:PutObject",
        "staging batch output",
        obj("staging", "artifacts", f"{BATCH_OUTPUT_PREFIX}e/b.csv.out"),
    ),
    may_not(
        "staging serving",
        serving("staging"),
        "s3:PutObject",
        "staging models/",
        obj("staging", "artifacts", MODEL_ARCHIVE),
    ),
    may_not(
        "staging serving",
        serving("staging"),
        "s3:PutObject",
        "staging data processed/",
        obj("staging", "data", "processed/x"),
    ),
    may_not(
        "staging serving", serving("staging"), "s3:GetObject", "staging data raw/", obj("staging", "data", "raw/d.csv")
    ),
    may_not(
        "staging serving",
        serving("staging"),
        "s3:GetObject",
        "staging data processed/",
        obj("staging", "data", "processed/x"),
    ),
    may_not(
        "staging serving",
        serving("staging"),
        "s3:GetObject",
        "staging data outside the batch input prefix",
        obj("staging", "data", "batch-transform/other/b.csv"),
    ),
    may_not(
        "staging serving",
        serving("staging"),
        "s3:ListBucket",
        "staging data bucket, raw/",
        bucket("staging", "data"),
        context={"s3:prefix": "raw/"},
    ),
    may_not("staging serving", serving("staging"), "kms:Decrypt", "staging key, not through S3", key("staging")),
    may_not(
        "staging serving",
        serving("staging"),
        "iam:PassRole",
        "staging jobs role",
        role_arn(jobs("staging")),
        context=TO_SAGEMAKER,
    ),
    may_not(
        "staging serving",
        serving("staging"),
        "sns:Publish",
        "staging alarm topic",
        resource("staging", "Serving", "AlarmTopic", "AWS::SNS::Topic"),
    ),
    # Prod serves what staging served: the version of staging's group, its archive, key and image, wherever staging is.
    may("prod serving", serving("prod"), "s3:GetObject", "staging models/", obj("staging", "artifacts", MODEL_ARCHIVE)),
    may("prod serving", serving("prod"), "kms:Decrypt", "staging key through S3", key("staging"), context=VIA_S3),
    may("prod serving", serving("prod"), "ecr:BatchGetImage", "staging serving images", repository("staging")),
    may("prod serving", serving("prod"), "ecr:GetDownloadUrlForLayer", "staging serving images", repository("staging")),
    may(
        "prod serving",
        serving("prod"),
        "s3:PutObject",
        "prod data-capture/",
        obj("prod", "artifacts", "data-capture/e/AllTraffic/x.jsonl"),
    ),
    may_not(
        "prod serving", serving("prod"), "s3:PutObject", "staging models/", obj("staging", "artifacts", MODEL_ARCHIVE)
    ),
    may_not("prod serving", serving("prod"), "s3:GetObject", "staging data raw/", obj("staging", "data", "raw/d.csv")),
    may_not("prod serving", serving("prod"), "kms:Decrypt", "staging key, not through S3", key("staging")),
    may_not("prod serving", serving("prod"), "ecr:PutImage", "staging serving images", repository("staging")),
    may_not(
        "prod serving",
        serving("prod"),
        "s3:GetObject",
        "prod models/ (not a version prod serves)",
        obj("prod", "artifacts", MODEL_ARCHIVE),
    ),
    may_not("prod serving", serving("prod"), "s3:PutObject", "prod models/", obj("prod", "artifacts", MODEL_ARCHIVE)),
    may_not(
        "prod serving",
        serving("prod"),
        "s3:GetObject",
        "dev models/",
        obj("dev", "artifacts", MODEL_ARCHIVE),
        layouts=("one account",),
    ),
    # Drift monitoring: the data-quality job runs as the serving role. It reads its own stage's captured requests and
    # the served version's baseline, which lies with the run that registered the version (staging's, also for prod,
    # through staging's bucket and key policies where prod is elsewhere), and writes its reports. Nothing else of the
    # runs (their training data), and no writing a baseline: a rewritten baseline would silence the drift alarms.
    may(
        "staging serving",
        serving("staging"),
        "s3:GetObject",
        "staging data-capture/",
        obj("staging", "artifacts", CAPTURED.format(prefix="mlopskit-staging")),
    ),
    may(
        "staging serving",
        serving("staging"),
        "s3:ListBucket",
        "staging artifacts bucket, data-capture/ prefix",
        bucket("staging", "artifacts"),
        context={"s3:prefix": "data-capture/mlopskit-staging-realtime/AllTraffic/"},
    ),
    may(
        "staging serving",
        serving("staging"),
        "s3:PutObject",
        "staging monitoring/",
        obj("staging", "artifacts", MONITORING_REPORT.format(prefix="mlopskit-staging")),
    ),
    may(
        "staging serving",
        serving("staging"),
        "s3:GetObject",
        "staging baseline",
        obj("staging", "artifacts", STAGING_BASELINE),
    ),
    may_not(
        "staging serving",
        serving("staging"),
        "s3:GetObject",
        "staging run training data",
        obj("staging", "artifacts", STAGING_TRAINING_DATA),
    ),
    may_not(
        "staging serving",
        serving("staging"),
        "s3:PutObject",
        "staging baseline",
        obj("staging", "artifacts", STAGING_BASELINE),
    ),
    may_not(
        "staging serving",
        serving("staging"),
        "s3:ListBucket",
        "staging artifacts bucket, pipeline-runs/ prefix",
        bucket("staging", "artifacts"),
        context={"s3:prefix": "pipeline-runs/"},
    ),
    may(
        "prod serving",
        serving("prod"),
        "s3:GetObject",
        "staging baseline",
        obj("staging", "artifacts", STAGING_BASELINE),
    ),
    may(
        "prod serving",
        serving("prod"),
        "s3:GetObject",
        "prod data-capture/",
        obj("prod", "artifacts", CAPTURED.format(prefix="mlopskit-prod")),
    ),
    may(
        "prod serving",
        serving("prod"),
        "s3:PutObject",
        "prod monitoring/",
        obj("prod", "artifacts", MONITORING_REPORT.format(prefix="mlopskit-prod")),
    ),
    may_not(
        "prod serving",
        serving("prod"),
        "s3:GetObject",
        "staging run training data",
        obj("staging", "artifacts", STAGING_TRAINING_DATA),
    ),
    may_not(
        "prod serving",
        serving("prod"),
        "s3:PutObject",
        "staging baseline",
        obj("staging", "artifacts", STAGING_BASELINE),
    ),
    may_not(
        "prod serving",
        serving("prod"),
        "s3:PutObject",
        "staging monitoring/",
        obj("staging", "artifacts", MONITORING_REPORT.format(prefix="mlopskit-prod")),
    ),
    may_not(
        "prod serving",
        serving("prod"),
        "s3:GetObject",
        "prod baseline (not of a version prod serves)",
        obj("prod", "artifacts", f"pipeline-runs/mlopskit-prod-training/execution1/{BASELINE_DIR}/{STATISTICS_FILE}"),
    ),
    # The pipeline's jobs write the baseline; monitoring's reports are not theirs to write.
    may(
        "staging jobs",
        jobs("staging"),
        "s3:PutObject",
        "staging baseline",
        obj("staging", "artifacts", STAGING_BASELINE),
    ),
    may_not(
        "staging jobs",
        jobs("staging"),
        "s3:PutObject",
        "staging monitoring/",
        obj("staging", "artifacts", MONITORING_REPORT.format(prefix="mlopskit-staging")),
    ),
    # Staging's bucket shares the baselines with prod's serving role, not with prod's account.
    may_not(
        "prod operator",
        operator("prod"),
        "s3:GetObject",
        "staging baseline",
        obj("staging", "artifacts", STAGING_BASELINE),
        layouts=DELIVERY_LAYOUTS,
    ),
    may_not(
        "foreign administrator",
        OUTSIDER,
        "s3:GetObject",
        "staging baseline",
        obj("staging", "artifacts", STAGING_BASELINE),
    ),
    # Drift beyond staging's retrain threshold starts staging's training pipeline through EventBridge, as a role that
    # may do that and nothing else; the serving role itself starts nothing.
    may(
        "EventBridge",
        aws_service("events.amazonaws.com"),
        "sts:AssumeRole",
        "staging retrain role",
        role_arn(retrain("staging")),
    ),
    may(
        "staging retrain",
        retrain("staging"),
        "sagemaker:StartPipelineExecution",
        "staging training pipeline",
        training_pipeline("staging"),
    ),
    may_not(
        "staging retrain",
        retrain("staging"),
        "sagemaker:StartPipelineExecution",
        "prod training pipeline",
        training_pipeline("prod"),
    ),
    may_not(
        "staging retrain",
        retrain("staging"),
        "sagemaker:UpdatePipeline",
        "staging training pipeline",
        training_pipeline("staging"),
    ),
    may_not(
        "staging serving",
        serving("staging"),
        "sagemaker:StartPipelineExecution",
        "staging training pipeline",
        training_pipeline("staging"),
    ),
    may_not(
        "staging serving",
        serving("staging"),
        "sts:AssumeRole",
        "staging retrain role",
        role_arn(retrain("staging")),
    ),
    # CloudFormation in prod's account creates prod's models from staging's version.
    may(
        "prod CloudFormation",
        cloudformation("prod"),
        "sagemaker:DescribeModelPackage",
        "staging version",
        version("staging"),
    ),
    may("prod CloudFormation", cloudformation("prod"), "sagemaker:CreateModel", "staging version", version("staging")),
    may_not(
        "prod CloudFormation",
        cloudformation("prod"),
        "sagemaker:UpdateModelPackage",
        "staging version",
        version("staging"),
        layouts=DELIVERY_LAYOUTS,
    ),
    # The batch transform state machine runs its stage's transform jobs; the jobs run as the model's role.
    may(
        "staging batch state machine",
        batch_state_machine("staging"),
        "sagemaker:CreateTransformJob",
        "a staging transform job",
        sagemaker_arn("staging", "transform-job", "mlopskit-staging-0cc175b9c0f1b6a831c399e269772661"),
    ),
    may_not(
        "staging batch state machine",
        batch_state_machine("staging"),
        "sagemaker:CreateTransformJob",
        "another transform job",
        sagemaker_arn("staging", "transform-job", "someone-elses-job"),
    ),
    may_not(
        "staging batch state machine",
        batch_state_machine("staging"),
        "iam:PassRole",
        "staging serving role",
        role_arn(serving("staging")),
        context=TO_SAGEMAKER,
    ),
    may_not(
        "staging batch state machine",
        batch_state_machine("staging"),
        "iam:PassRole",
        "staging jobs role",
        role_arn(jobs("staging")),
        context=TO_SAGEMAKER,
    ),
    may(
        "staging batch state machine",
        batch_state_machine("staging"),
        "kms:CreateGrant",
        "staging key for a job volume",
        key("staging"),
        context={**VIA_SAGEMAKER, "kms:GrantIsForAWSResource": True},
    ),
    may_not(
        "staging batch state machine",
        batch_state_machine("staging"),
        "kms:CreateGrant",
        "staging key for anyone",
        key("staging"),
        context={**VIA_SAGEMAKER, "kms:GrantIsForAWSResource": False},
    ),
    may_not(
        "staging batch state machine",
        batch_state_machine("staging"),
        "s3:GetObject",
        "staging batch input",
        obj("staging", "data", "batch-transform/input/b.csv"),
    ),
    # The promotion build checks the approved staging version before it commits staging's manifest, wherever
    # staging is; the synth reads the committed manifests and no registry.
    may(
        "promotion build",
        PROMOTION_BUILD,
        "sagemaker:ListModelPackages",
        "staging group",
        group("staging"),
        layouts=DELIVERY_LAYOUTS,
    ),
    may(
        "promotion build",
        PROMOTION_BUILD,
        "sagemaker:DescribeModelPackage",
        "staging version",
        version("staging"),
        layouts=DELIVERY_LAYOUTS,
    ),
    may_not(
        "promotion build",
        PROMOTION_BUILD,
        "sagemaker:DescribeModelPackage",
        "prod version",
        version("prod"),
        layouts=DELIVERY_LAYOUTS,
    ),
    may_not(
        "promotion build",
        PROMOTION_BUILD,
        "sagemaker:UpdateModelPackage",
        "staging version",
        version("staging"),
        layouts=DELIVERY_LAYOUTS,
    ),
    may_not(
        "delivery synth",
        DELIVERY_SYNTH,
        "sagemaker:ListModelPackages",
        "staging group",
        group("staging"),
        layouts=DELIVERY_LAYOUTS,
    ),
    # The smoke test (staging beside the pipeline) calls the staging endpoint and reads the served archive.
    may(
        "smoke test",
        SMOKE_TEST,
        "sagemaker:InvokeEndpoint",
        "staging real-time endpoint",
        resource("staging", "Serving", "RealtimeEndpoint", "AWS::SageMaker::Endpoint"),
        layouts=("prod elsewhere",),
    ),
    may(
        "smoke test",
        SMOKE_TEST,
        "s3:GetObject",
        "staging models/",
        obj("staging", "artifacts", MODEL_ARCHIVE),
        layouts=("prod elsewhere",),
    ),
    may(
        "smoke test",
        SMOKE_TEST,
        "kms:Decrypt",
        "staging key through S3",
        key("staging"),
        context=VIA_S3,
        layouts=("prod elsewhere",),
    ),
    may_not(
        "smoke test",
        SMOKE_TEST,
        "sagemaker:InvokeEndpoint",
        "prod real-time endpoint",
        resource("prod", "Serving", "RealtimeEndpoint", "AWS::SageMaker::Endpoint"),
        layouts=("prod elsewhere",),
    ),
    may_not(
        "smoke test",
        SMOKE_TEST,
        "s3:PutObject",
        "staging models/",
        obj("staging", "artifacts", MODEL_ARCHIVE),
        layouts=("prod elsewhere",),
    ),
    # Operators and CI put data in and read results through S3, as IAM allows them; the key only through S3.
    may(
        "staging operator",
        operator("staging"),
        "s3:PutObject",
        "staging data raw/",
        obj("staging", "data", "raw/d.csv"),
    ),
    may(
        "staging operator",
        operator("staging"),
        "kms:GenerateDataKey",
        "staging key through S3",
        key("staging"),
        context=VIA_S3,
    ),
    may(
        "staging operator",
        operator("staging"),
        "s3:GetObject",
        "staging batch output",
        obj("staging", "artifacts", f"{BATCH_OUTPUT_PREFIX}e/b.csv.out"),
    ),
    may_not("staging operator", operator("staging"), "kms:Decrypt", "staging key, not through S3", key("staging")),
    may_not(
        "staging operator",
        operator("staging"),
        "s3:PutObject",
        "staging data raw/ without TLS",
        obj("staging", "data", "raw/d.csv"),
        context={"aws:SecureTransport": False},
    ),
    may_not(
        "prod operator",
        operator("prod"),
        "s3:GetObject",
        "staging data raw/",
        obj("staging", "data", "raw/d.csv"),
        layouts=DELIVERY_LAYOUTS,
    ),
    # `cdk deploy` pushes the serving image with the bootstrap publishing role of the stage's account.
    may(
        "staging image publisher",
        image_publisher("staging"),
        "ecr:PutImage",
        "staging serving images",
        repository("staging"),
    ),
    may_not(
        "staging image publisher",
        image_publisher("staging"),
        "ecr:PutImage",
        "prod serving images",
        repository("prod"),
        layouts=DELIVERY_LAYOUTS,
    ),
    # An account that is none of these gets nothing, whatever its own IAM allows.
    may_not(
        "foreign administrator", OUTSIDER, "s3:GetObject", "staging models/", obj("staging", "artifacts", MODEL_ARCHIVE)
    ),
    may_not("foreign administrator", OUTSIDER, "kms:Decrypt", "staging key through S3", key("staging"), context=VIA_S3),
    may_not("foreign administrator", OUTSIDER, "ecr:BatchGetImage", "staging serving images", repository("staging")),
    may_not("foreign administrator", OUTSIDER, "sagemaker:DescribeModelPackage", "staging version", version("staging")),
]


@pytest.mark.parametrize(
    ("layout_name", "row"),
    [(layout, row) for row in ROWS for layout in row.layouts],
    ids=lambda value: value if isinstance(value, str) else value.id,
)
def test_access_path(layouts: dict[str, Layout], layout_name: str, row: Row) -> None:
    layout = layouts[layout_name]
    decision = layout.access.evaluate(row.resolve_actor(layout), row.action, row.resolve_target(layout), row.context)
    assert decision.allowed is row.allowed, decision
