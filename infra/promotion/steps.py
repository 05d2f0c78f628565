"""The delivery pipeline's CodeBuild steps: the synth (tests, then the assembly of the committed manifests) and the
staging smoke test. Their commands are module constants so that tests read what the pipeline runs."""

from __future__ import annotations

import json

from aws_cdk import ArnFormat, CfnOutput, Stack, pipelines
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_iam as iam

from infra import naming
from infra.config import PROJECT_ROOT, StageConfig
from infra.layout import ArtifactPrefix
from infra.promotion import SMOKE_TEST_STEP

# `make setup` builds .venv and node_modules as on a workstation. Teams with a CPU-only torch wheel index set
# PIP_EXTRA_INDEX_URL on the build projects: the default Linux wheel brings CUDA libraries that no step needs.
INSTALL_COMMANDS = ["make setup"]
BUILD_ENV = {"CDK_DISABLE_CLI_TELEMETRY": "true"}
# The assembly is a function of the commit: each stage serves what its committed manifest (infra/deployments/) says,
# as on a workstation and in GitHub Actions; an approval reaches staging as a commit of its manifest
# (infra/promotion/promotion_commit.py), prod as a reviewed `mlops promote --to prod` commit.
SYNTH_COMMANDS = ["make test", "npx --no-install cdk synth --quiet --no-notices --no-version-reporting"]
# The smoke test checks the version that staging was just deployed with (a staging stack output), not the manifest's.
SERVED_VERSION_VARIABLE = "MODEL_PACKAGE_ARN"
SMOKE_TEST_COMMANDS = [f'.venv/bin/mlops smoke-test --stage staging --model-package-arn "${SERVED_VERSION_VARIABLE}"']
# The step runtimes the project needs (CodeBuild standard:7.0 offers both).
RUNTIME_VERSIONS = {"python": "3.11", "nodejs": "20"}
BUILD_IMAGE = codebuild.LinuxBuildImage.STANDARD_7_0


def cdk_cli_version() -> str:
    """The CDK CLI that package.json pins; self-mutation and asset publishing install the same one."""
    return json.loads((PROJECT_ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"]


def _runtimes() -> codebuild.BuildSpec:
    return codebuild.BuildSpec.from_object({"phases": {"install": {"runtime-versions": RUNTIME_VERSIONS}}})


class StagingResources:
    """ARNs in the staging stage's account and region (the pipeline's own where the stage names none)."""

    def __init__(self, stack: Stack, config: StageConfig) -> None:
        self._stack = stack
        self._config = config

    def arn(self, resource: str, name: str) -> str:
        return self._stack.format_arn(
            service="sagemaker",
            resource=resource,
            resource_name=name,
            account=self._config.account or self._stack.account,
            region=self._config.region or self._stack.region,
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
        )

    @property
    def model_package_group_arn(self) -> str:
        return self.arn("model-package-group", naming.model_package_group_name(self._config))

    @property
    def model_package_versions_arn(self) -> str:
        return self.arn("model-package", f"{naming.model_package_group_name(self._config)}/*")

    @property
    def realtime_endpoint_arn(self) -> str:
        return self.arn("endpoint", naming.realtime_endpoint_name(self._config))

    @property
    def account(self) -> str:
        return self._config.account or self._stack.account

    @property
    def region(self) -> str:
        return self._config.region or self._stack.region

    @property
    def model_archives_arn(self) -> str:
        """The trained models' archives in the staging artifacts bucket (the training pipeline writes them there)."""
        bucket = f"{self._config.resource_prefix}-{naming.BucketPurpose.ARTIFACTS}-{self.account}-{self.region}"
        return f"arn:{self._stack.partition}:s3:::{bucket}/{ArtifactPrefix.MODELS}*"

    @property
    def keys_arn(self) -> str:
        """The stage key's id is generated at deploy: statements on it are scoped by its alias instead."""
        return self._stack.format_arn(
            service="kms", resource="key", resource_name="*", account=self.account, region=self.region
        )

    @property
    def key_alias(self) -> str:
        return naming.key_alias(self._config)

    @property
    def region_env(self) -> dict[str, str]:
        """`mlops` addresses the stage's region: boto3 reads it from the environment (CodeBuild sets its own)."""
        region = self._config.region
        return {"AWS_REGION": region, "AWS_DEFAULT_REGION": region} if region else {}


def synth_step(source: pipelines.IFileSetProducer) -> pipelines.CodeBuildStep:
    return pipelines.CodeBuildStep(
        "Synth",
        input=source,
        install_commands=INSTALL_COMMANDS,
        commands=SYNTH_COMMANDS,
        env=BUILD_ENV,
        # `make test` runs about 4 minutes on 2 cores; MEDIUM has 4 vCPUs and 7 GB.
        build_environment=codebuild.BuildEnvironment(
            build_image=BUILD_IMAGE, compute_type=codebuild.ComputeType.MEDIUM
        ),
        partial_build_spec=_runtimes(),
    )


def smoke_test_step(
    source: pipelines.IFileSetProducer, staging: StagingResources, served_version: CfnOutput
) -> pipelines.CodeBuildStep:
    return pipelines.CodeBuildStep(
        SMOKE_TEST_STEP,
        input=source,
        install_commands=INSTALL_COMMANDS,
        commands=SMOKE_TEST_COMMANDS,
        env={**BUILD_ENV, **staging.region_env},
        env_from_cfn_outputs={SERVED_VERSION_VARIABLE: served_version},
        build_environment=codebuild.BuildEnvironment(build_image=BUILD_IMAGE),
        partial_build_spec=_runtimes(),
        role_policy_statements=[
            iam.PolicyStatement(
                sid="InvokeStagingEndpoint",
                actions=["sagemaker:InvokeEndpoint"],
                resources=[staging.realtime_endpoint_arn],
            ),
            # The smoke test reads the served version's feature names and classes from its model archive.
            iam.PolicyStatement(
                sid="DescribeStagingVersions",
                actions=["sagemaker:DescribeModelPackage"],
                resources=[staging.model_package_versions_arn],
            ),
            iam.PolicyStatement(
                sid="ReadModelArchives", actions=["s3:GetObject"], resources=[staging.model_archives_arn]
            ),
            # The archives are encrypted with the stage key, whose policy lets the account use it through S3 only.
            iam.PolicyStatement(
                sid="DecryptModelArchives",
                actions=["kms:Decrypt"],
                resources=[staging.keys_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": f"s3.{staging.region}.amazonaws.com"},
                    "ForAnyValue:StringEquals": {"kms:ResourceAliases": [staging.key_alias]},
                },
            ),
        ],
    )
