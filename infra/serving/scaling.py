"""Application Auto Scaling of an endpoint's production variant."""

from __future__ import annotations

from enum import StrEnum

from aws_cdk import Stack
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from infra.naming import VARIANT_NAME

# Application Auto Scaling scales SageMaker variants as this service-linked role, which it creates on first use.
SAGEMAKER_SCALING_ROLE = (
    "aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
    "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
)


class ScalableDimension(StrEnum):
    INSTANCE_COUNT = "sagemaker:variant:DesiredInstanceCount"
    PROVISIONED_CONCURRENCY = "sagemaker:variant:DesiredProvisionedConcurrency"


def variant_scalable_target(
    scope: Construct,
    *,
    endpoint: sagemaker.CfnEndpoint,
    endpoint_name: str,
    dimension: ScalableDimension,
    min_capacity: int,
    max_capacity: int,
) -> appscaling.ScalableTarget:
    """The variant as a scalable target, registered once the endpoint exists."""
    role = iam.Role.from_role_arn(
        scope,
        "ScalingRole",
        Stack.of(scope).format_arn(service="iam", region="", resource="role", resource_name=SAGEMAKER_SCALING_ROLE),
        mutable=False,
    )
    target = appscaling.ScalableTarget(
        scope,
        "ScalableTarget",
        service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
        scalable_dimension=dimension,
        resource_id=f"endpoint/{endpoint_name}/variant/{VARIANT_NAME}",
        min_capacity=min_capacity,
        max_capacity=max_capacity,
        role=role,
    )
    target.node.add_dependency(endpoint)
    return target


def keep_scaled_capacity(endpoint: sagemaker.CfnEndpoint) -> None:
    """Updates keep the instance count that scaling reached (and the weights) instead of restarting at the new
    config's initial count; data capture still follows the new config."""
    endpoint.retain_all_variant_properties = True
    endpoint.exclude_retained_variant_properties = [
        sagemaker.CfnEndpoint.VariantPropertyProperty(variant_property_type="DataCaptureConfig")
    ]
