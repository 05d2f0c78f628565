"""The stage's serving-image repository: `cdk deploy` pushes the serving image here, every model version the stage
registers names it, and the stage's serving role (and that of each stage serving its versions from another account)
pulls it. A repository of the stage's own, because its policy must admit those other accounts: the CDK bootstrap
repository's policy is the bootstrap template's, which admits only Lambda of its own account."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import DefaultStackSynthesizer, Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.foundation.sharing import ModelConsumer

IMAGE_PULL_ACTIONS = ("ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer")
# What cdk-assets does when it publishes an image (the bootstrap template grants the same on its own repository).
IMAGE_PUSH_ACTIONS = (
    *IMAGE_PULL_ACTIONS,
    "ecr:CompleteLayerUpload",
    "ecr:DescribeImages",
    "ecr:DescribeRepositories",
    "ecr:InitiateLayerUpload",
    "ecr:PutImage",
    "ecr:UploadLayerPart",
)
BOOTSTRAP_QUALIFIER_CONTEXT = "@aws-cdk/core:bootstrapQualifier"
UNTAGGED_IMAGE_DAYS = 7


def image_publishing_role_arn(scope: Construct) -> str:
    """The bootstrap role that publishes image assets in this stack's account and region (as the default stack
    synthesizer names it)."""
    qualifier = scope.node.try_get_context(BOOTSTRAP_QUALIFIER_CONTEXT) or DefaultStackSynthesizer.DEFAULT_QUALIFIER
    return Fn.sub(
        f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role/cdk-{qualifier}-image-publishing-role-"
        "${AWS::AccountId}-${AWS::Region}"
    )


class ServingImageRepository(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        repository_name: str,
        removal_policy: RemovalPolicy,
        consumers: Sequence[ModelConsumer] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        destroy = removal_policy == RemovalPolicy.DESTROY
        self.repository = ecr.Repository(
            self,
            "Repository",
            repository_name=repository_name,
            # A tag is an asset hash: the image a model version names never changes under it.
            image_tag_mutability=ecr.TagMutability.IMMUTABLE,
            image_scan_on_push=True,
            lifecycle_rules=[
                ecr.LifecycleRule(
                    description="Layers of interrupted pushes; tagged images stay, as model versions name them",
                    tag_status=ecr.TagStatus.UNTAGGED,
                    max_image_age=Duration.days(UNTAGGED_IMAGE_DAYS),
                )
            ],
            removal_policy=removal_policy,
            empty_on_delete=destroy,
        )
        self.repository.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CdkPublishesServingImage",
                principals=[iam.ArnPrincipal(image_publishing_role_arn(self))],
                actions=list(IMAGE_PUSH_ACTIONS),
            )
        )
        for consumer in consumers:
            self.repository.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=f"{consumer.stage.capitalize()}ServingPullsImage",
                    principals=[consumer.serving_role()],
                    actions=list(IMAGE_PULL_ACTIONS),
                )
            )

    @property
    def repository_arn(self) -> str:
        return self.repository.repository_arn


def repository_arn_in(stack: Stack, repository_name: str, account: str, region: str) -> str:
    return stack.format_arn(
        service="ecr", resource="repository", resource_name=repository_name, account=account, region=region
    )
