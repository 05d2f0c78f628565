"""The pipeline stack of a stage: model package group, the SageMaker Pipeline, its code and the serving image it
registers models with, and an optional schedule."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import jsii
from aws_cdk import Aws, CfnOutput, DefaultStackSynthesizer, Fn, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from infra import naming
from infra.config import StageConfig
from infra.foundation.removal import removal_policy
from infra.foundation.sharing import ModelConsumer
from infra.foundation.stack import FoundationStack
from infra.pipeline.images import FrameworkImage, FrameworkImages, ServingImage
from infra.pipeline.notifications import PipelineNotifications
from infra.security import admit_events_from, allow
from infra.serving.model_monitor import retrain_event_pattern, retrain_target
from pipelines.bundle import BUILD_DIR, BUNDLE_NAME, STEP_RUNNER, build_bundle
from pipelines.definition import PipelineTargets, pipeline_definition
from pipelines.spec import drift_trigger

# The SDK needs a literal role ARN (anything else makes it call IAM); CloudFormation puts the real one in its place.
ROLE_PLACEHOLDER = "arn:aws:iam::000000000000:role/placeholder-sagemaker-execution-role"
SERVING_IMAGE_VARIABLE = "ServingImage"
# Names of the `Fn::Sub` variables in the definition body; `${AWS::Region}` is CloudFormation's own.
SUBSTITUTED = (
    "ExecutionRoleArn",
    "KmsKeyArn",
    "DataBucket",
    "ArtifactsBucket",
    "CodeBucket",
    *FrameworkImage,
    SERVING_IMAGE_VARIABLE,
)


# Model package versions that another account serves: its deployments describe them and create models from them.
CONSUMER_REGISTRY_ACTIONS = (
    "sagemaker:CreateModel",
    "sagemaker:DescribeModelPackage",
    "sagemaker:DescribeModelPackageGroup",
    "sagemaker:ListModelPackages",
)
# What the delivery pipeline's synth does in another account's registry (`mlops models resolve`).
READER_REGISTRY_ACTIONS = ("sagemaker:DescribeModelPackage", "sagemaker:ListModelPackages")


class PipelineStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        foundation: FoundationStack,
        model_consumers: Sequence[ModelConsumer] = (),
        registry_reader_accounts: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"{config.resource_prefix}: training pipeline, model package group, serving image, schedule",
            # The serving image goes to the stage's own repository, whose policy admits the accounts that serve it.
            synthesizer=DefaultStackSynthesizer(
                image_assets_repository_name=naming.serving_image_repository_name(config)
            ),
            **kwargs,
        )
        roles = foundation.roles
        self.model_package_group = sagemaker.CfnModelPackageGroup(
            self,
            "ModelPackageGroup",
            model_package_group_name=naming.model_package_group_name(config),
            model_package_group_description=f"{config.resource_prefix}: versions of the MLP classifier",
            model_package_group_policy=self._registry_policy(config, model_consumers, registry_reader_accounts),
        )
        # This stack refers to the foundation's roles, key and buckets, so it depends on it, and `cdk deploy`
        # publishes its serving image only after the foundation (and so the image repository) is deployed.
        code_bundle = s3_assets.Asset(self, "CodeBundle", path=str(build_bundle(BUILD_DIR / BUNDLE_NAME)))
        step_runner = s3_assets.Asset(self, "StepRunner", path=str(STEP_RUNNER))
        code_objects = (code_bundle, step_runner)
        iam.Policy(
            self,
            "ReadPipelineCode",
            roles=[roles.sagemaker_execution],
            statements=[
                iam.PolicyStatement(
                    actions=["s3:GetObject"],
                    resources=[f"arn:{Aws.PARTITION}:s3:::{a.s3_bucket_name}/{a.s3_object_key}" for a in code_objects],
                ),
                # Job inputs are S3 prefixes: SageMaker lists each object's key before downloading it.
                iam.PolicyStatement(
                    actions=["s3:ListBucket"],
                    resources=[f"arn:{Aws.PARTITION}:s3:::{code_bundle.s3_bucket_name}"],
                    conditions={"StringEquals": {"s3:prefix": [asset.s3_object_key for asset in code_objects]}},
                ),
            ],
        )
        images = FrameworkImages(self, "FrameworkImages")
        # Endpoints get the image through the model package: RegisterModel records it from this parameter default.
        self.serving_image = ServingImage(self, "ServingImage")
        targets = substitution_targets(code_bundle.s3_object_key, step_runner.s3_object_key)
        body = definition_body(config, targets)
        self.pipeline = sagemaker.CfnPipeline(
            self,
            "Pipeline",
            pipeline_name=naming.pipeline_name(config),
            pipeline_display_name=naming.pipeline_name(config),
            pipeline_description=f"{config.resource_prefix}: preprocess, tune on spot GPUs, evaluate, register",
            role_arn=roles.pipeline_execution.role_arn,
            pipeline_definition={
                "PipelineDefinitionBody": Fn.sub(
                    body,
                    {
                        "ExecutionRoleArn": roles.sagemaker_execution.role_arn,
                        "KmsKeyArn": foundation.encryption.key.key_arn,
                        "DataBucket": foundation.storage.data.bucket_name,
                        "ArtifactsBucket": foundation.storage.artifacts.bucket_name,
                        "CodeBucket": code_bundle.s3_bucket_name,
                        **{image.value: images.uri(image) for image in FrameworkImage},
                        SERVING_IMAGE_VARIABLE: self.serving_image.image_uri,
                    },
                )
            },
        )
        self.pipeline.add_resource_dependency(self.model_package_group)
        self.pipeline_arn = self.format_arn(
            service="sagemaker", resource="pipeline", resource_name=naming.pipeline_name(config)
        )
        if config.pipeline.schedule:
            self._schedule(config)
        self._retrain_on_consumers_drift(config, model_consumers)
        self.notifications = PipelineNotifications(
            self,
            "Notifications",
            pipeline_name=naming.pipeline_name(config),
            pipeline_arn=self.pipeline_arn,
            resource_prefix=config.resource_prefix,
            removal_policy=removal_policy(config),
        )
        CfnOutput(self, "PipelineName", value=naming.pipeline_name(config))
        CfnOutput(self, "PipelineTopicArn", value=self.notifications.topic.topic_arn)
        CfnOutput(self, "ModelPackageGroupName", value=naming.model_package_group_name(config))

    def _registry_policy(
        self, config: StageConfig, consumers: Sequence[ModelConsumer], reader_accounts: Sequence[str]
    ) -> dict[str, Any] | None:
        """Admits other accounts to the group's versions: consumers' deployments and the delivery pipeline's synth."""
        group = naming.model_package_group_name(config)
        resources = [
            self.format_arn(service="sagemaker", resource="model-package-group", resource_name=group),
            self.format_arn(service="sagemaker", resource="model-package", resource_name=f"{group}/*"),
        ]
        statements = [
            iam.PolicyStatement(
                sid=f"{consumer.stage.capitalize()}DeploysVersions",
                principals=[consumer.deployments()],
                actions=list(CONSUMER_REGISTRY_ACTIONS),
                resources=resources,
            )
            for consumer in consumers
        ]
        if reader_accounts:
            statements.append(
                iam.PolicyStatement(
                    sid="DeliveryResolvesVersions",
                    principals=[iam.AccountPrincipal(account) for account in reader_accounts],
                    actions=list(READER_REGISTRY_ACTIONS),
                    resources=resources,
                )
            )
        return iam.PolicyDocument(statements=statements).to_json() if statements else None

    def _schedule(self, config: StageConfig) -> None:
        starter = iam.Role(
            self,
            "ScheduleRole",
            assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
            description=f"{config.resource_prefix}: lets the schedule start the training pipeline",
            inline_policies={
                "StartPipeline": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(actions=["sagemaker:StartPipelineExecution"], resources=[self.pipeline_arn])
                    ]
                )
            },
        )
        rule = events.Rule(
            self,
            "Schedule",
            schedule=events.Schedule.expression(config.pipeline.schedule),
            description=f"Starts {naming.pipeline_name(config)} on its stage schedule",
        )
        rule.add_target(_PipelineTarget(self.pipeline_arn, starter))
        rule.node.add_dependency(self.pipeline)

    def _retrain_on_consumers_drift(self, config: StageConfig, consumers: Sequence[ModelConsumer]) -> None:
        """A stage in another account that serves this stage's versions and retrains on drift forwards its retrain
        alarm's ALARM event to this account's default event bus, which it may put to; a rule here starts this stage's
        pipeline, whose new version the consumer gets through promotion."""
        retraining = [(consumer, consumer.drift_retraining) for consumer in consumers if consumer.drift_retraining]
        if not retraining:
            return
        starter = iam.Role(
            self,
            "DriftRetrainingRole",
            assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
            description=f"{config.resource_prefix}: lets the drift of the stages it serves start the training pipeline",
        )
        allow(starter, "StartTrainingPipeline", ["sagemaker:StartPipelineExecution"], [self.pipeline_arn])
        for consumer, drift in retraining:
            name = consumer.stage.capitalize()
            admit_events_from(
                self, f"{name}ForwardsDrift", account=consumer.account, statement_id=f"{consumer.stage}-forwards-drift"
            )
            alarm_arn = f"arn:{Aws.PARTITION}:cloudwatch:{Aws.REGION}:{consumer.account}:alarm:{drift.alarm_name}"
            events.CfnRule(
                self,
                f"{name}DriftRetraining",
                description=f"Starts {naming.pipeline_name(config)} when {consumer.stage}'s {drift.alarm_name} goes "
                "into ALARM",
                event_pattern={**retrain_event_pattern(alarm_arn), "account": [consumer.account]},
                targets=[
                    retrain_target(
                        self.pipeline_arn,
                        starter.role_arn,
                        drift_trigger(drift.threshold, drift.endpoint_name, drift.reports_uri),
                    )
                ],
            )


def substitution_targets(code_bundle_key: str, step_runner_key: str) -> PipelineTargets:
    """Targets whose values are the `Fn::Sub` variables (see SUBSTITUTED) that CloudFormation fills in."""
    return PipelineTargets(
        region="${AWS::Region}",
        execution_role_arn=ROLE_PLACEHOLDER,
        kms_key_arn="${KmsKeyArn}",
        data_bucket="${DataBucket}",
        artifacts_bucket="${ArtifactsBucket}",
        code_bundle_uri=f"s3://${{CodeBucket}}/{code_bundle_key}",
        step_runner_uri=f"s3://${{CodeBucket}}/{step_runner_key}",
        training_image_uri=f"${{{FrameworkImage.TRAINING}}}",
        processing_image_uri=f"${{{FrameworkImage.PREPROCESSING}}}",
        evaluation_image_uri=f"${{{FrameworkImage.EVALUATION}}}",
        serving_image_uri=f"${{{SERVING_IMAGE_VARIABLE}}}",
    )


def definition_body(config: StageConfig, targets: PipelineTargets) -> str:
    """The definition as the template carries it: the role placeholder already turned into its variable."""
    body = json.dumps(pipeline_definition(config, targets), sort_keys=True)
    return body.replace(ROLE_PLACEHOLDER, "${ExecutionRoleArn}")


@jsii.implements(events.IRuleTarget)
class _PipelineTarget:
    """Starts a SageMaker Pipeline with its default parameters (aws-events-targets has no such target)."""

    def __init__(self, pipeline_arn: str, role: iam.IRole) -> None:
        self._pipeline_arn = pipeline_arn
        self._role = role

    def bind(self, _rule: events.IRule, _id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(arn=self._pipeline_arn, role=self._role)
