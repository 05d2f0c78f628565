"""The asynchronous endpoint: results in S3, notifications on SNS, and scaling to and from zero on its backlog."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra import naming
from infra.config import AsyncInference, ServingAlarms
from infra.instance_types import supports_volume_kms_key
from infra.layout import ArtifactPrefix
from infra.serving.monitoring import EndpointAlarms, endpoint_metric, notifying_alarm
from infra.serving.notifications import NotificationKey, encrypted_topic
from infra.serving.role import ServingRole
from infra.serving.scaling import ScalableDimension, keep_scaled_capacity, variant_scalable_target

ASYNC_OUTPUT_PREFIX = f"{ArtifactPrefix.ASYNC_INFERENCE}output/"
ASYNC_FAILURE_PREFIX = f"{ArtifactPrefix.ASYNC_INFERENCE}failures/"
# Where clients put requests for InvokeEndpointAsync (the execution role reads the whole async-inference/ prefix).
ASYNC_INPUT_PREFIX = f"{ArtifactPrefix.ASYNC_INFERENCE}input/"


class AsyncEndpoint(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: AsyncInference,
        alarm_settings: ServingAlarms,
        endpoint_name: str,
        model_name: str,
        key: kms.IKey,
        artifacts: s3.IBucket,
        notification_key: NotificationKey,
        role: ServingRole,
        alarm_topic: sns.ITopic,
    ) -> None:
        super().__init__(scope, construct_id)
        self.endpoint_name = endpoint_name
        self.alarms = EndpointAlarms(
            self, "Alarms", endpoint_name=self.endpoint_name, settings=alarm_settings, topic=alarm_topic
        )
        self.backlog_age_alarm = notifying_alarm(
            self,
            "BacklogAge",
            alarm_name=f"{self.endpoint_name}-backlog-age",
            metric=endpoint_metric(self.endpoint_name, "ApproximateAgeOfOldestRequest", cloudwatch.Stats.MAXIMUM),
            threshold=alarm_settings.backlog_age_seconds,
            evaluation_minutes=alarm_settings.evaluation_minutes,
            topic=alarm_topic,
            description=f"{self.endpoint_name}: the oldest queued request has waited too long (seconds)",
        )
        topic_key = notification_key.key
        self.success_topic = encrypted_topic(
            self, "SuccessTopic", key=topic_key, display_name=f"{self.endpoint_name}: inference succeeded"
        )
        self.error_topic = encrypted_topic(
            self, "ErrorTopic", key=topic_key, display_name=f"{self.endpoint_name}: inference failed"
        )
        # SageMaker reads the requests, writes the results and publishes the notifications as the model's role.
        role.read("ReadAsyncRequests", artifacts, ASYNC_INPUT_PREFIX)
        role.write("WriteAsyncResults", artifacts, ASYNC_OUTPUT_PREFIX, ASYNC_FAILURE_PREFIX)
        role.publish("PublishAsyncNotifications", self.success_topic, self.error_topic)
        notification_key.allow_publishing_by(role.role)
        endpoint_config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=naming.VARIANT_NAME,
                    model_name=model_name,
                    instance_type=settings.instance_type,
                    # SageMaker starts an endpoint with at least one instance; scaling takes it to zero when idle.
                    initial_instance_count=max(settings.min_capacity, 1),
                    initial_variant_weight=1,
                )
            ],
            kms_key_id=key.key_arn if supports_volume_kms_key(settings.instance_type) else None,
            async_inference_config=sagemaker.CfnEndpointConfig.AsyncInferenceConfigProperty(
                client_config=sagemaker.CfnEndpointConfig.AsyncInferenceClientConfigProperty(
                    max_concurrent_invocations_per_instance=settings.max_concurrent_invocations_per_instance
                ),
                output_config=sagemaker.CfnEndpointConfig.AsyncInferenceOutputConfigProperty(
                    s3_output_path=f"s3://{artifacts.bucket_name}/{ASYNC_OUTPUT_PREFIX}",
                    s3_failure_path=f"s3://{artifacts.bucket_name}/{ASYNC_FAILURE_PREFIX}",
                    kms_key_id=key.key_arn,
                    notification_config=sagemaker.CfnEndpointConfig.AsyncInferenceNotificationConfigProperty(
                        success_topic=self.success_topic.topic_arn, error_topic=self.error_topic.topic_arn
                    ),
                ),
            ),
        )
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=self.endpoint_name,
            endpoint_config_name=endpoint_config.attr_endpoint_config_name,
        )
        # The role may read, write and publish before the endpoint takes its first request.
        self.endpoint.node.add_dependency(role.policy)
        keep_scaled_capacity(self.endpoint)
        self.scalable_target = None
        if settings.autoscaling:
            self._scale_on_backlog(settings)

    def _scale_on_backlog(self, settings: AsyncInference) -> None:
        """Target tracking on the backlog per instance scales in to zero, but cannot scale out of zero (the metric
        divides by the instance count); a step policy adds the first instance when requests wait without capacity."""
        self.scalable_target = variant_scalable_target(
            self,
            endpoint=self.endpoint,
            endpoint_name=self.endpoint_name,
            dimension=ScalableDimension.INSTANCE_COUNT,
            min_capacity=settings.min_capacity,
            max_capacity=settings.max_capacity,
        )
        self.scalable_target.scale_to_track_metric(
            "BacklogPerInstance",
            custom_metric=endpoint_metric(
                self.endpoint_name, "ApproximateBacklogSizePerInstance", cloudwatch.Stats.AVERAGE
            ),
            target_value=settings.backlog_per_instance_target,
            scale_in_cooldown=Duration.seconds(settings.scale_in_cooldown_seconds),
            scale_out_cooldown=Duration.seconds(settings.scale_out_cooldown_seconds),
        )
        self.scale_out_from_zero = appscaling.StepScalingAction(
            self,
            "ScaleOutFromZero",
            scaling_target=self.scalable_target,
            adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
            cooldown=Duration.seconds(settings.scale_out_cooldown_seconds),
            metric_aggregation_type=appscaling.MetricAggregationType.AVERAGE,
        )
        self.scale_out_from_zero.add_adjustment(adjustment=1, lower_bound=0)
        self.backlog_without_capacity = cloudwatch.Alarm(
            self,
            "BacklogWithoutCapacity",
            alarm_name=f"{self.endpoint_name}-backlog-without-capacity",
            alarm_description=f"{self.endpoint_name}: requests wait and no instance runs; adds one",
            metric=endpoint_metric(self.endpoint_name, "HasBacklogWithoutCapacity", cloudwatch.Stats.AVERAGE),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=2,
            datapoints_to_alarm=2,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.backlog_without_capacity.add_alarm_action(
            cloudwatch_actions.ApplicationScalingAction(self.scale_out_from_zero)
        )
