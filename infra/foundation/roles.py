"""Least-privilege roles: one that SageMaker jobs and models run as, one that the SageMaker Pipeline runs as."""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra import naming
from infra.config import StageConfig
from infra.foundation.storage import Storage
from infra.layout import JOB_ARTIFACT_PREFIXES, JOB_DATA_PREFIXES, ArtifactPrefix, DataPrefix
from infra.security import allow

SAGEMAKER_SERVICE = "sagemaker.amazonaws.com"
# AWS Deep Learning Container and SageMaker framework images live in AWS-owned accounts that differ per region.
AWS_FRAMEWORK_IMAGE_REPOSITORIES = ("pytorch-training", "sagemaker-scikit-learn")
# What SageMaker does as a job's or model's role to place it in a VPC.
VPC_ACCESS_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:CreateNetworkInterfacePermission",
    "ec2:DeleteNetworkInterface",
    "ec2:DeleteNetworkInterfacePermission",
    "ec2:DescribeDhcpOptions",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcs",
)
PIPELINE_JOB_TYPES = ("processing-job", "training-job", "hyper-parameter-tuning-job")
PIPELINE_JOB_ACTIONS = (
    "sagemaker:AddTags",
    "sagemaker:CreateHyperParameterTuningJob",
    "sagemaker:CreateProcessingJob",
    "sagemaker:CreateTrainingJob",
    "sagemaker:DescribeHyperParameterTuningJob",
    "sagemaker:DescribeProcessingJob",
    "sagemaker:DescribeTrainingJob",
    "sagemaker:ListTags",
    "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
    "sagemaker:StopHyperParameterTuningJob",
    "sagemaker:StopProcessingJob",
    "sagemaker:StopTrainingJob",
)
RESOURCE_LEVEL_PERMISSIONS_UNSUPPORTED = (
    "cloudwatch:PutMetricData and ecr:GetAuthorizationToken support no resource-level permissions, so AWS requires "
    "Resource '*'; metrics are limited to SageMaker namespaces by a condition."
)
MODEL_REGISTRY_ACTIONS = (
    "sagemaker:AddTags",
    "sagemaker:CreateModelPackage",
    "sagemaker:DescribeModelPackage",
    "sagemaker:DescribeModelPackageGroup",
    "sagemaker:ListModelPackages",
)


class ExecutionRoles(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, storage: Storage) -> None:
        super().__init__(scope, construct_id)
        self._stack = Stack.of(self)
        self.sagemaker_execution = iam.Role(
            self,
            "SageMakerExecution",
            assumed_by=iam.ServicePrincipal(SAGEMAKER_SERVICE),
            description=f"{config.resource_prefix}: SageMaker processing, training and tuning jobs",
        )
        self.pipeline_execution = iam.Role(
            self,
            "PipelineExecution",
            assumed_by=iam.ServicePrincipal(SAGEMAKER_SERVICE),
            description=f"{config.resource_prefix}: the SageMaker Pipeline that starts jobs and registers models",
        )
        self._grant_job_storage(storage)
        self._grant_job_logs_metrics_and_images()
        self._grant_pipeline(config, storage)
        if config.pipeline.vpc:
            self._grant_vpc_network_interfaces()

    def _grant_job_storage(self, storage: Storage) -> None:
        per_job_keys = (
            "Object access is limited to the stage bucket's documented prefixes (infra/layout.py); "
            "jobs write keys of their own under a prefix, so the object part of the ARN ends in a wildcard."
        )
        allow(
            self.sagemaker_execution,
            "ReadData",
            ["s3:GetObject"],
            [storage.data.arn_for_objects(f"{prefix}*") for prefix in JOB_DATA_PREFIXES],
            wildcard_reason=per_job_keys,
        )
        allow(
            self.sagemaker_execution,
            "WriteProcessedData",
            ["s3:AbortMultipartUpload", "s3:PutObject"],
            [storage.data.arn_for_objects(f"{DataPrefix.PROCESSED}*")],
            wildcard_reason=per_job_keys,
        )
        allow(
            self.sagemaker_execution,
            "ReadWriteArtifacts",
            ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
            [storage.artifacts.arn_for_objects(f"{prefix}*") for prefix in JOB_ARTIFACT_PREFIXES],
            wildcard_reason=per_job_keys,
        )
        allow(
            self.sagemaker_execution,
            "PruneCheckpoints",
            ["s3:DeleteObject"],
            [storage.artifacts.arn_for_objects(f"{ArtifactPrefix.CHECKPOINTS}*")],
            wildcard_reason=per_job_keys,
        )
        allow(
            self.sagemaker_execution,
            "ListStagePrefixes",
            ["s3:ListBucket"],
            [storage.data.bucket_arn, storage.artifacts.bucket_arn],
            # "raw" as well as "raw/...": SageMaker lists exactly the key prefix of an input URI, slash or not.
            conditions={
                "StringLike": {
                    "s3:prefix": [
                        p
                        for prefix in (*JOB_DATA_PREFIXES, *JOB_ARTIFACT_PREFIXES)
                        for p in (prefix.rstrip("/"), f"{prefix}*")
                    ]
                }
            },
        )
        allow(
            self.sagemaker_execution,
            "LocateStageBuckets",
            ["s3:GetBucketLocation"],
            [storage.data.bucket_arn, storage.artifacts.bucket_arn],
        )

    def _grant_job_logs_metrics_and_images(self) -> None:
        allow(
            self.sagemaker_execution,
            "WriteJobLogs",
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            [
                self._arn("logs", "log-group", "/aws/sagemaker/*", ArnFormat.COLON_RESOURCE_NAME),
                self._arn("logs", "log-group", "/aws/sagemaker/*:log-stream:*", ArnFormat.COLON_RESOURCE_NAME),
            ],
            wildcard_reason="SageMaker writes one log group per job type and one stream per job instance under "
            "/aws/sagemaker/; limited to that path in this account and region.",
        )
        allow(
            self.sagemaker_execution,
            "PublishSageMakerMetrics",
            ["cloudwatch:PutMetricData"],
            ["*"],
            conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}},
            wildcard_reason=RESOURCE_LEVEL_PERMISSIONS_UNSUPPORTED,
        )
        allow(
            self.sagemaker_execution,
            "AuthenticateToEcr",
            ["ecr:GetAuthorizationToken"],
            ["*"],
            wildcard_reason=RESOURCE_LEVEL_PERMISSIONS_UNSUPPORTED,
        )
        allow(
            self.sagemaker_execution,
            "PullAwsFrameworkImages",
            ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            [
                self._arn("ecr", "repository", repository, account="*")
                for repository in AWS_FRAMEWORK_IMAGE_REPOSITORIES
            ],
            wildcard_reason="AWS serves the PyTorch and scikit-learn framework images from AWS-owned accounts that "
            "differ per region; limited to those named repositories in this region.",
        )

    def _grant_pipeline(self, config: StageConfig, storage: Storage) -> None:
        allow(
            self.pipeline_execution,
            "RunPipelineJobs",
            list(PIPELINE_JOB_ACTIONS),
            [self._arn("sagemaker", job_type, "*") for job_type in PIPELINE_JOB_TYPES],
            wildcard_reason="SageMaker Pipelines names its processing, training and tuning jobs at run time; "
            "limited to those job types in this account and region.",
        )
        group = naming.model_package_group_name(config)
        allow(
            self.pipeline_execution,
            "RegisterModels",
            list(MODEL_REGISTRY_ACTIONS),
            [
                self._arn("sagemaker", "model-package-group", group),
                self._arn("sagemaker", "model-package", f"{group}/*"),
            ],
            wildcard_reason="Model package versions are numbered by SageMaker at registration; limited to the "
            "stage's own model package group.",
        )
        allow(
            self.pipeline_execution,
            "PassExecutionRoleToSageMaker",
            ["iam:PassRole"],
            [self.sagemaker_execution.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": SAGEMAKER_SERVICE}},
        )
        allow(
            self.pipeline_execution,
            "ReadStepProperties",
            ["s3:GetObject"],
            [storage.artifacts.arn_for_objects(f"{ArtifactPrefix.PIPELINE_RUNS}*")],
            wildcard_reason="The pipeline reads step property files (evaluation.json) that each execution writes "
            "under its own keys; limited to the pipeline-runs/ prefix of the artifacts bucket.",
        )

    def _grant_vpc_network_interfaces(self) -> None:
        """Jobs in the stage's VPC: SageMaker attaches their network interfaces as the execution role."""
        allow(
            self.sagemaker_execution,
            "AttachJobsToVpc",
            VPC_ACCESS_ACTIONS,
            ["*"],
            wildcard_reason="SageMaker creates and deletes job network interfaces whose ids exist only at run time, "
            "and the EC2 Describe actions support no resource-level permissions.",
        )

    def _arn(
        self,
        service: str,
        resource: str,
        resource_name: str,
        arn_format: ArnFormat = ArnFormat.SLASH_RESOURCE_NAME,
        account: str | None = None,
    ) -> str:
        return self._stack.format_arn(
            service=service, resource=resource, resource_name=resource_name, arn_format=arn_format, account=account
        )
