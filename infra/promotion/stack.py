"""The delivery stack (tooling account): a CDK Pipelines pipeline that owns the staging and prod stages.

Source → Build (make test; synth the committed manifests) → UpdatePipeline (self-mutation) → Assets → staging
(deploy, then SmokeTest) → prod (PromoteToProd manual approval first, then deploy). A commit starts it; an approval
in the staging model registry becomes a commit of staging's manifest (infra/promotion/approval.py,
promotion_commit.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import ArnFormat, CfnOutput, Environment, Stack, pipelines
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codecommit as codecommit
from constructs import Construct

from infra import naming
from infra.config import DeliveryConfig, DeliverySource, StageConfig
from infra.foundation.encryption import KEY_ADMINISTRATION_ACTIONS
from infra.promotion import DELIVERY_SUMMARY_METADATA, PROMOTION_APPROVAL_STEP, SMOKE_TEST_STEP
from infra.promotion.approval import (
    ApprovalForwardingStack,
    ApprovalTrigger,
    approvals_are_forwarded,
    forwarding_account,
)
from infra.promotion.promotion_commit import PromotionCommit
from infra.promotion.steps import StagingResources, cdk_cli_version, smoke_test_step, synth_step
from infra.security import acknowledge, acknowledge_wildcard_resources
from infra.stage import MlopsStage, StageSharing
from infra.tagging import tag_everything

PROMOTION_COMMENT = (
    "Staging runs the approved model version and its smoke test passed. Approve to deploy the same version to prod."
)
NO_ENDPOINT = "no smoke test: staging has no real-time endpoint (inference.realtime, inference.model_package_arn)"
# An endpoint has no resource policy, and the stage key and bucket admit only their own account: a smoke test from
# the pipeline's account would need a role in the staging account to assume.
OTHER_ACCOUNT = (
    "no smoke test: staging is in another account than the pipeline; run `mlops smoke-test --stage staging` there "
    "before approving"
)

# What the pipeline's roles and the deploy roles of the stage accounts do with the artifact key.
ARTIFACT_KEY_USE_ACTIONS = ("kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*")

# CodePipeline's artifact bucket and the roles CDK Pipelines generates for its actions (acknowledged below).
_ARTIFACT_ACTIONS = (
    "s3:GetObject*",
    "s3:GetBucket*",
    "s3:List*",
    "s3:DeleteObject*",
    "s3:Abort*",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
)
_ARTIFACTS_REASON = (
    "CDK Pipelines grants its actions these action groups on the pipeline's own artifact bucket and its KMS key only; "
    "they read and write the build artifacts there"
)
_BUILD_LOGS_REASON = (
    "CodeBuild names a build's log stream and report after the build id, so the project's role writes under its own "
    "log group and report-group prefix"
)
_ASSET_LOGS_REASON = (
    "One role serves all asset-publishing CodeBuild projects of its kind, whose names CDK generates; each writes "
    "its builds' logs and reports"
)
_ASSET_PUBLISHING_REASON = (
    "CDK Pipelines gives the shared asset-publishing role codebuild:StartBuild/BatchGetBuilds/StopBuild without a "
    "resource; it can only run builds, and assumes nothing but the bootstrap publishing roles"
)
_ARCHIVES_REASON = (
    "Training writes each model archive under a run-specific key below models/; the smoke test reads the one the "
    "served version names, and nothing outside that prefix"
)
_STAGE_KEY_REASON = (
    "The staging key's id is generated at deploy; the statement admits only the key with the staging alias, "
    "and only through S3 (conditions kms:ResourceAliases and kms:ViaService)"
)
_VERSIONS_REASON = (
    "Model package versions are numbered at registration; the role may read any version of the staging group, "
    "and no other group"
)


def source_of(
    scope: Construct, source: DeliverySource
) -> tuple[pipelines.CodePipelineSource, codecommit.IRepository | None]:
    """The pipeline's source, and the CodeCommit repository where the promotion commit can push (None for a
    connection, where pushing needs the provider's own credentials: promotion is then `mlops promote` and a push)."""
    if source.kind == "connection":
        connection = pipelines.CodePipelineSource.connection(
            source.repository, source.branch, connection_arn=source.connection_arn
        )
        return connection, None
    repository = codecommit.Repository.from_repository_name(scope, "Repository", source.repository)
    return pipelines.CodePipelineSource.code_commit(repository, source.branch), repository


def smoke_test_skip_reason(staging: StageConfig, delivery: DeliveryConfig, *, serving: bool) -> str | None:
    """Why the staging stage gets no smoke test, or None when it gets one."""
    if not serving or not staging.inference.realtime.enabled:
        return NO_ENDPOINT
    if staging.account not in (None, delivery.account):
        return OTHER_ACCOUNT
    return None


class DeliveryStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        project_name: str,
        delivery: DeliveryConfig,
        staging: StageConfig,
        prod: StageConfig,
        sharing: Mapping[str, StageSharing],
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            stack_name=naming.delivery_stack_name(project_name),
            description=f"{project_name}: delivery pipeline of the approved model version, staging to prod",
            env=Environment(account=delivery.account, region=delivery.region),
            analytics_reporting=False,
            **kwargs,
        )
        self.delivery = delivery
        source, repository = source_of(self, delivery.source)
        staging_resources = StagingResources(self, staging)
        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            pipeline_name=naming.delivery_pipeline_name(project_name),
            synth=synth_step(source),
            self_mutation=True,
            cross_account_keys=True,
            enable_key_rotation=True,
            # The serving image is a DockerImageAsset: synth computes its hash from the build context.
            docker_enabled_for_synth=True,
            # One CodeBuild project per asset type rather than per asset.
            publish_assets_in_parallel=False,
            cli_version=cdk_cli_version(),
        )

        # The pipeline owns these stages: the app does not synthesize them a second time.
        self.staging = MlopsStage(self, staging, sharing=sharing[staging.name])
        self.prod = MlopsStage(self, prod, sharing=sharing[prod.name])
        forwarded_from = self._forward_approvals_if_needed(staging, delivery)

        self.smoke_test: pipelines.CodeBuildStep | None = None
        self.no_smoke_test_reason = smoke_test_skip_reason(staging, delivery, serving=self.staging.serving is not None)
        if self.no_smoke_test_reason is None:
            served_version = CfnOutput(
                self.staging.serving,
                "ServedModelPackageArn",
                value=staging.inference.model_package_arn,
                description="The approved model package version this stage was deployed with",
            )
            self.smoke_test = smoke_test_step(source, staging_resources, served_version)
        self.pipeline.add_stage(self.staging, post=[self.smoke_test] if self.smoke_test else [])
        self.pipeline.add_stage(
            self.prod, pre=[pipelines.ManualApprovalStep(PROMOTION_APPROVAL_STEP, comment=PROMOTION_COMMENT)]
        )
        # Built here, not at synth, so that the approval rule can target it and the generated roles be acknowledged.
        self.pipeline.build_pipeline()

        self.promotion_commit: PromotionCommit | None = None
        self.approval: ApprovalTrigger | None = None
        if repository is not None:
            self.promotion_commit = PromotionCommit(
                self,
                "PromotionCommit",
                project_name=project_name,
                repository=repository,
                branch=delivery.source.branch,
                staging=staging_resources,
                encryption_key=self.pipeline.pipeline.artifact_bucket.encryption_key,
            )
            self.approval = ApprovalTrigger(
                self,
                "ApprovalTrigger",
                model_package_group_name=naming.model_package_group_name(staging),
                target=self.promotion_commit.target(),
                forwarded_from_account=forwarded_from,
            )
        self._acknowledge_generated_findings(staging_resources)
        self._scope_artifact_key_policy()
        # CDK Pipelines writes a cross-account action's CloudFormation role ARN as Fn::Join with an empty delimiter;
        # cfn-lint's E3703 prefers Fn::Sub there. The value is right; the style is CDK's.
        self.pipeline.pipeline.node.default_child.add_metadata("cfn-lint", {"config": {"ignore_checks": ["E3703"]}})
        self.node.add_metadata(DELIVERY_SUMMARY_METADATA, self.summary())
        tag_everything(self, {"project": project_name, "component": "delivery"})

    def _forward_approvals_if_needed(self, staging: StageConfig, delivery: DeliveryConfig) -> str | None:
        """Approvals are emitted where the staging registry is; when that is not here, the staging stage forwards
        them. Returns the other account that the pipeline's bus must admit events from, if any."""
        if not approvals_are_forwarded(staging, delivery):
            return None
        ApprovalForwardingStack(
            self.staging,
            "ApprovalForwarding",
            model_package_group_name=naming.model_package_group_name(staging),
            pipeline_account=delivery.account or self.account,
            pipeline_region=delivery.region or self.region,
            stack_name=naming.stack_name(staging, "approval-forwarding"),
            analytics_reporting=False,
        )
        return forwarding_account(staging, delivery)

    def summary(self) -> str:
        stages = []
        for stage in self.pipeline.pipeline.stages:
            names = [action.action_properties.action_name for action in stage.actions]
            if stage.stage_name == self.staging.stage_name and SMOKE_TEST_STEP in names:
                stages.append(f"{stage.stage_name} (then {SMOKE_TEST_STEP})")
            elif stage.stage_name == self.prod.stage_name and PROMOTION_APPROVAL_STEP in names:
                stages.append(f"{stage.stage_name} (after {PROMOTION_APPROVAL_STEP} approval)")
            else:
                stages.append(stage.stage_name)
        name = naming.delivery_pipeline_name(self.staging.config.project_name)
        line = f"pipeline {name} from {self.delivery.source.description}: {' → '.join(stages)}"
        return f"{line}; {self.no_smoke_test_reason}" if self.no_smoke_test_reason else line

    def _scope_artifact_key_policy(self) -> None:
        """The artifact key's default policy gives the account root `kms:*`; like the stage keys, it gets the
        administration actions and the ones its users need (granted to them by IAM, or by name in the policy)."""
        key = self.pipeline.pipeline.artifact_bucket.encryption_key.node.default_child
        statements = self.resolve(key.key_policy)["Statement"]
        (index,) = [i for i, statement in enumerate(statements) if statement["Action"] == "kms:*"]
        actions = sorted({*KEY_ADMINISTRATION_ACTIONS, *ARTIFACT_KEY_USE_ACTIONS})
        key.add_property_override(f"KeyPolicy.Statement.{index}.Action", actions)

    def _acknowledge_generated_findings(self, staging: StagingResources) -> None:
        pipeline = self.pipeline
        acknowledge(
            pipeline.pipeline.artifact_bucket,
            "AwsSolutions-S1",
            "The pipeline's artifact bucket holds only transient build artifacts, encrypted with the pipeline's key; "
            "CloudTrail records who reads them",
        )
        for action in _ARTIFACT_ACTIONS:
            acknowledge(pipeline, f"AwsSolutions-IAM5[Action::{action}]", _ARTIFACTS_REASON)
        acknowledge_wildcard_resources(
            pipeline, [pipeline.pipeline.artifact_bucket.arn_for_objects("*")], _ARTIFACTS_REASON
        )
        for project in (child for child in self.node.find_all() if isinstance(child, codebuild.Project)):
            acknowledge_wildcard_resources(
                project,
                [
                    self.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name=f"/aws/codebuild/{project.project_name}:*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    ),
                    self.format_arn(
                        service="codebuild", resource="report-group", resource_name=f"{project.project_name}-*"
                    ),
                ],
                _BUILD_LOGS_REASON,
            )
        registry_readers = [
            *([self.smoke_test.project] if self.smoke_test else []),
            *([self.promotion_commit.project] if self.promotion_commit else []),
        ]
        for project in registry_readers:
            acknowledge_wildcard_resources(project, [staging.model_package_versions_arn], _VERSIONS_REASON)
        if self.promotion_commit:
            for action in ("kms:ReEncrypt*", "kms:GenerateDataKey*"):
                acknowledge(
                    self.promotion_commit.project,
                    f"AwsSolutions-IAM5[Action::{action}]",
                    "CodeBuild grants these action groups on the pipeline's artifact key only, with which the "
                    "promotion build encrypts its logs and cache",
                )
        if self.smoke_test:
            acknowledge_wildcard_resources(self.smoke_test.project, [staging.model_archives_arn], _ARCHIVES_REASON)
            acknowledge_wildcard_resources(self.smoke_test.project, [staging.keys_arn], _STAGE_KEY_REASON)
        assets = pipeline.node.try_find_child("Assets")
        for role in (assets.node.try_find_child(name) for name in ("DockerRole", "FileRole")) if assets else ():
            if role is None:
                continue
            acknowledge_wildcard_resources(
                role,
                [
                    self.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name="/aws/codebuild/*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    ),
                    self.format_arn(service="codebuild", resource="report-group", resource_name="*"),
                ],
                _ASSET_LOGS_REASON,
            )
            acknowledge(role, "AwsSolutions-IAM5[Resource::*]", _ASSET_PUBLISHING_REASON)
        # Rendered as cdk-nag renders it: without delivery.account, the account is the template's own (a token).
        acknowledge_wildcard_resources(
            pipeline.self_mutation_project,
            [f"arn:*:iam::{self.account}:role/*"],
            "Self-mutation assumes the CDK bootstrap roles (cdk-*-deploy/lookup roles, by tag condition) of every "
            "account the pipeline deploys to; their names include the qualifier, account and region",
        )
        acknowledge(
            pipeline.self_mutation_project,
            "AwsSolutions-IAM5[Resource::*]",
            "Self-mutation reads CloudFormation stack state (cloudformation:DescribeStacks) and the bootstrap "
            "version parameter, which IAM does not scope to a resource",
        )
