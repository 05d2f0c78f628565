"""The real-time endpoint: data capture, canary deployments that roll back on alarms, instance auto-scaling."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Duration
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra import naming
from infra.config import RealtimeInference, ServingAlarms
from infra.instance_types import supports_volume_kms_key
from infra.layout import ArtifactPrefix
from infra.serving.monitoring import EndpointAlarms
from infra.serving.role import ServingRole
from infra.serving.scaling import ScalableDimension, keep_scaled_capacity, variant_scalable_target
from training_code.contract import TEXT_CONTENT_TYPES

if TYPE_CHECKING:
    from infra.serving.model_monitor import DriftMonitoring, ModelQualityMonitoring


class RealtimeEndpoint(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: RealtimeInference,
        alarm_settings: ServingAlarms,
        endpoint_name: str,
        model_name: str,
        role: ServingRole,
        key: kms.IKey,
        artifacts: s3.IBucket,
        alarm_topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self.endpoint_name = endpoint_name
        # The drift monitoring of its captured requests, where the stage turns it on (infra/serving/modes.py).
        self.monitoring: DriftMonitoring | None = None
        self.monitoring_skipped: str | None = None
        self.quality: ModelQualityMonitoring | None = None
        # Alarms refer to the endpoint by name, so they exist before it: a deployment can roll back on them at once.
        self.alarms = EndpointAlarms(
            self, "Alarms", endpoint_name=endpoint_name, settings=alarm_settings, topic=alarm_topic
        )
        rollback_alarms = (self.alarms.server_errors, self.alarms.latency)
        # Unnamed: every property of an endpoint config is immutable, so a change creates a new one, and the endpoint
        # moves to it with a blue/green deployment.
        endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=naming.VARIANT_NAME,
                    model_name=model_name,
                    instance_type=settings.instance_type,
                    initial_instance_count=settings.min_capacity,
                    initial_variant_weight=1,
                )
            ],
            kms_key_id=key.key_arn if supports_volume_kms_key(settings.instance_type) else None,
            data_capture_config=_data_capture(settings.data_capture_percent, key, artifacts),
        )
        if settings.data_capture_percent:
            role.write("WriteDataCapture", artifacts, ArtifactPrefix.DATA_CAPTURE)
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=endpoint_name,
            endpoint_config_name=endpoint_config.attr_endpoint_config_name,
            deployment_config=sagemaker.CfnEndpoint.DeploymentConfigProperty(
                blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
                    traffic_routing_configuration=sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
                        type="CANARY",
                        canary_size=sagemaker.CfnEndpoint.CapacitySizeProperty(
                            type="CAPACITY_PERCENT", value=settings.canary_percent
                        ),
                        wait_interval_in_seconds=settings.canary_wait_seconds,
                    ),
                    termination_wait_in_seconds=settings.termination_wait_seconds,
                    maximum_execution_timeout_in_seconds=settings.deployment_timeout_seconds,
                ),
                auto_rollback_configuration=sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
                    alarms=[
                        sagemaker.CfnEndpoint.AlarmProperty(alarm_name=alarm.alarm_name) for alarm in rollback_alarms
                    ]
                ),
            ),
        )
        keep_scaled_capacity(self.endpoint)
        self.scalable_target = None
        if not settings.autoscaling:
            return
        self.scalable_target = variant_scalable_target(
            self,
            endpoint=self.endpoint,
            endpoint_name=endpoint_name,
            dimension=ScalableDimension.INSTANCE_COUNT,
            min_capacity=settings.min_capacity,
            max_capacity=settings.max_capacity,
        )
        self.scalable_target.scale_to_track_metric(
            "InvocationsPerInstance",
            predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
            target_value=settings.invocations_per_instance_target,
            scale_in_cooldown=Duration.seconds(settings.scale_in_cooldown_seconds),
            scale_out_cooldown=Duration.seconds(settings.scale_out_cooldown_seconds),
        )


def _data_capture(
    sampling_percent: int, key: kms.IKey, artifacts: s3.IBucket
) -> sagemaker.CfnEndpointConfig.DataCaptureConfigProperty | None:
    """Requests and responses to the artifacts bucket for model monitoring; SageMaker appends
    `<endpoint>/<variant>/<yyyy>/<mm>/<dd>/<hh>/` to the destination."""
    if not sampling_percent:
        return None
    return sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
        enable_capture=True,
        initial_sampling_percentage=sampling_percent,
        destination_s3_uri=f"s3://{artifacts.bucket_name}/{ArtifactPrefix.DATA_CAPTURE.rstrip('/')}",
        kms_key_id=key.key_arn,
        capture_options=[
            sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode=mode) for mode in ("Input", "Output")
        ],
        capture_content_type_header=sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
            csv_content_types=[t for t in TEXT_CONTENT_TYPES if t.endswith("/csv")],
            json_content_types=[t for t in TEXT_CONTENT_TYPES if "json" in t],
        ),
    )
