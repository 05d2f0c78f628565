"""The foundation stack of a stage."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra import naming
from infra.config import StageConfig
from infra.foundation.encryption import StageKey
from infra.foundation.image_repository import ServingImageRepository
from infra.foundation.removal import removal_policy
from infra.foundation.roles import ExecutionRoles
from infra.foundation.sharing import ModelConsumer
from infra.foundation.storage import Storage


class FoundationStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StageConfig,
        model_consumers: Sequence[ModelConsumer] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"{config.resource_prefix}: KMS key, buckets, serving image repository, SageMaker roles",
            **kwargs,
        )
        self.encryption = StageKey(self, "Encryption", config=config)
        self.storage = Storage(self, "Storage", config=config, key=self.encryption.key)
        self.roles = ExecutionRoles(self, "Roles", config=config, storage=self.storage)
        self.encryption.allow_use_by(self.roles.sagemaker_execution, self.roles.pipeline_execution)
        self.serving_images = ServingImageRepository(
            self,
            "ServingImages",
            repository_name=naming.serving_image_repository_name(config),
            removal_policy=removal_policy(config),
            consumers=model_consumers,
        )
        for consumer in model_consumers:
            self.storage.share_model_archives(consumer)
            self.encryption.allow_decrypt_through_s3_by(consumer)

        outputs = {
            "KeyArn": self.encryption.key.key_arn,
            "DataBucketName": self.storage.data.bucket_name,
            "ArtifactsBucketName": self.storage.artifacts.bucket_name,
            "SageMakerExecutionRoleArn": self.roles.sagemaker_execution.role_arn,
            "PipelineExecutionRoleArn": self.roles.pipeline_execution.role_arn,
            "ServingImageRepositoryName": self.serving_images.repository.repository_name,
        }
        for name, value in outputs.items():
            CfnOutput(self, name, value=value)
