"""The stage's buckets: data, artifacts, and the server-access-logs bucket both of them log to."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, Fn
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import naming
from infra.config import StageConfig
from infra.foundation.removal import removal_policy
from infra.foundation.sharing import ModelConsumer
from infra.layout import BASELINE_OBJECTS, ArtifactPrefix
from infra.naming import BucketPurpose
from infra.security import acknowledge


class Storage(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        settings = config.storage
        self.access_logs = self._bucket(
            "AccessLogs",
            BucketPurpose.ACCESS_LOGS,
            # S3 server access logging can only deliver to a bucket encrypted with S3-managed keys.
            encryption=s3.BucketEncryption.S3_MANAGED,
            lifecycle_rules=[
                s3.LifecycleRule(id="ExpireAccessLogs", expiration=Duration.days(settings.access_log_expiration_days))
            ],
        )
        acknowledge(
            self.access_logs,
            "AwsSolutions-S1",
            "This is the server-access-logs destination; logging it into itself would log its own log deliveries.",
        )
        self.data = self._logged_kms_bucket("Data", BucketPurpose.DATA, key)
        # Object events go to EventBridge (batch transform starts on uploads). Set on the bucket resource itself:
        # `event_bridge_enabled=True` would add a custom resource, a Lambda function with a managed policy, to do it.
        self.data.node.default_child.add_property_override(
            "NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True
        )
        self.artifacts = self._logged_kms_bucket(
            "Artifacts",
            BucketPurpose.ARTIFACTS,
            key,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireCheckpoints",
                    prefix=ArtifactPrefix.CHECKPOINTS,
                    expiration=Duration.days(settings.checkpoint_expiration_days),
                )
            ],
        )

    def share_model_archives(self, consumer: ModelConsumer) -> None:
        """The consumer's serving role may read the trained models (every registered version's archive is there),
        and the versions' baselines, which its drift monitoring compares the served traffic with."""
        self.artifacts.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"{consumer.stage.capitalize()}ServingReadsModels",
                principals=[consumer.serving_role()],
                actions=["s3:GetObject"],
                resources=[
                    self.artifacts.arn_for_objects(f"{ArtifactPrefix.MODELS}*"),
                    self.artifacts.arn_for_objects(BASELINE_OBJECTS),
                ],
            )
        )

    def _logged_kms_bucket(
        self, construct_id: str, purpose: BucketPurpose, key: kms.IKey, lifecycle_rules: Sequence[s3.LifecycleRule] = ()
    ) -> s3.Bucket:
        return self._bucket(
            construct_id,
            purpose,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            bucket_key_enabled=True,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=f"{purpose}/",
            lifecycle_rules=lifecycle_rules,
        )

    def _bucket(
        self,
        construct_id: str,
        purpose: BucketPurpose,
        *,
        lifecycle_rules: Sequence[s3.LifecycleRule] = (),
        **encryption_and_logging: object,
    ) -> s3.Bucket:
        settings = self._config.storage
        destroy = self._config.destroy_on_removal
        return s3.Bucket(
            self,
            construct_id,
            bucket_name=Fn.sub(naming.bucket_name_template(self._config, purpose)),
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            removal_policy=removal_policy(self._config),
            auto_delete_objects=destroy,
            lifecycle_rules=[
                *lifecycle_rules,
                s3.LifecycleRule(
                    id="ExpireNoncurrentVersions",
                    noncurrent_version_expiration=Duration.days(settings.noncurrent_version_expiration_days),
                ),
                s3.LifecycleRule(
                    id="AbortIncompleteUploads",
                    abort_incomplete_multipart_upload_after=Duration.days(settings.incomplete_upload_expiration_days),
                ),
            ],
            **encryption_and_logging,
        )
