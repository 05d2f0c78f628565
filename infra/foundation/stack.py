"""The foundation stack of a stage."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from infra.config import StageConfig
from infra.foundation.encryption import StageKey
from infra.foundation.roles import ExecutionRoles
from infra.foundation.storage import Storage


class FoundationStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig, **kwargs: Any) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"{config.resource_prefix}: KMS key, data and artifact buckets, SageMaker execution roles",
            **kwargs,
        )
        self.encryption = StageKey(self, "Encryption", config=config)
        self.storage = Storage(self, "Storage", config=config, key=self.encryption.key)
        self.roles = ExecutionRoles(self, "Roles", config=config, storage=self.storage)
        self.encryption.allow_use_by(self.roles.sagemaker_execution, self.roles.pipeline_execution)

        outputs = {
            "KeyArn": self.encryption.key.key_arn,
            "DataBucketName": self.storage.data.bucket_name,
            "ArtifactsBucketName": self.storage.artifacts.bucket_name,
            "SageMakerExecutionRoleArn": self.roles.sagemaker_execution.role_arn,
            "PipelineExecutionRoleArn": self.roles.pipeline_execution.role_arn,
        }
        for name, value in outputs.items():
            CfnOutput(self, name, value=value)
