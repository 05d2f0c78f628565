"""The serverless endpoint, with optional provisioned concurrency that scales with its utilization."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra import naming
from infra.config import ServerlessInference, ServingAlarms
from infra.serving.monitoring import EndpointAlarms
from infra.serving.scaling import ScalableDimension, variant_scalable_target


class ServerlessEndpoint(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: ServerlessInference,
        alarm_settings: ServingAlarms,
        endpoint_name: str,
        model_name: str,
        alarm_topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self.endpoint_name = endpoint_name
        self.alarms = EndpointAlarms(
            self, "Alarms", endpoint_name=endpoint_name, settings=alarm_settings, topic=alarm_topic
        )
        # No volume key: a serverless variant runs on no instance of ours, so there is no storage volume to encrypt.
        endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=naming.VARIANT_NAME,
                    model_name=model_name,
                    serverless_config=sagemaker.CfnEndpointConfig.ServerlessConfigProperty(
                        memory_size_in_mb=settings.memory_size_mb,
                        max_concurrency=settings.max_concurrency,
                        provisioned_concurrency=settings.provisioned_concurrency,
                    ),
                )
            ],
        )
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=endpoint_name,
            endpoint_config_name=endpoint_config.attr_endpoint_config_name,
        )
        self.scalable_target = None
        if settings.provisioned_concurrency:
            self.scalable_target = variant_scalable_target(
                self,
                endpoint=self.endpoint,
                endpoint_name=endpoint_name,
                dimension=ScalableDimension.PROVISIONED_CONCURRENCY,
                min_capacity=settings.provisioned_concurrency,
                max_capacity=settings.scaled_provisioned_concurrency_max,
            )
            self.scalable_target.scale_to_track_metric(
                "ProvisionedConcurrencyUtilization",
                predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_PROVISIONED_CONCURRENCY_UTILIZATION,
                target_value=settings.provisioned_concurrency_utilization_target,
                scale_in_cooldown=Duration.seconds(settings.scale_in_cooldown_seconds),
                scale_out_cooldown=Duration.seconds(settings.scale_out_cooldown_seconds),
            )
