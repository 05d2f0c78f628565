"""Where the served model version's parts live: the stage whose group holds it (this stage, or for prod staging),
in the account and region its ARN names. The serving role reads them there."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Aws, Stack

from infra import naming
from infra.config import StageConfig
from infra.layout import ArtifactPrefix
from infra.naming import BucketPurpose


@dataclass(frozen=True)
class ServedModelSource:
    resource_prefix: str
    account: str
    region: str

    @classmethod
    def of(cls, config: StageConfig) -> ServedModelSource:
        """A version of the stage's own group lies where the stage deploys (the stage config checks the ARN); one of
        another stage's group, in the account and region its ARN names."""
        inference = config.inference
        if inference.model_package_group == naming.model_package_group_name(config):
            return cls(resource_prefix=config.resource_prefix, account=Aws.ACCOUNT_ID, region=Aws.REGION)
        return cls(
            resource_prefix=f"{config.project_name}-{config.serving_source_stage}",
            account=inference.model_package_account,
            region=inference.model_package_region,
        )

    def model_archives_arn(self, stack: Stack) -> str:
        return self.artifacts_arn(stack, f"{ArtifactPrefix.MODELS}*")

    def artifacts_arn(self, stack: Stack, objects: str) -> str:
        """The objects matching `objects` in the artifacts bucket of the stage that registered the version."""
        bucket = naming.bucket_name(self.resource_prefix, BucketPurpose.ARTIFACTS, self.account, self.region)
        return f"arn:{stack.partition}:s3:::{bucket}/{objects}"

    @property
    def key_alias(self) -> str:
        return naming.key_alias_of(self.resource_prefix)

    def keys_arn(self, stack: Stack) -> str:
        """The key's id exists only once deployed: statements name every key of that account and region, and a
        condition (or, in another account, that key's own policy) narrows them to the one key."""
        return stack.format_arn(
            service="kms", resource="key", resource_name="*", account=self.account, region=self.region
        )

    def image_repository_arn(self, stack: Stack) -> str:
        return stack.format_arn(
            service="ecr",
            resource="repository",
            resource_name=naming.image_repository_name_of(self.resource_prefix),
            account=self.account,
            region=self.region,
        )
