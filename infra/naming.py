"""Deterministic names, derived from the stage config only: the same config always yields the same names."""

from __future__ import annotations

from enum import StrEnum

from infra.config import StageConfig


class BucketPurpose(StrEnum):
    DATA = "data"
    ARTIFACTS = "artifacts"
    ACCESS_LOGS = "logs"


def bucket_name(resource_prefix: str, purpose: BucketPurpose, account: str, region: str) -> str:
    """Bucket names are global, so account and region make them unique per environment."""
    return f"{resource_prefix}-{purpose}-{account}-{region}"


def bucket_name_template(config: StageConfig, purpose: BucketPurpose) -> str:
    """The stage's bucket name as an `Fn::Sub` template of the account and region it deploys to."""
    return bucket_name(config.resource_prefix, purpose, "${AWS::AccountId}", "${AWS::Region}")


def stack_name(config: StageConfig, unit: str) -> str:
    return f"{config.resource_prefix}-{unit}"


def key_alias(config: StageConfig) -> str:
    return key_alias_of(config.resource_prefix)


def key_alias_of(resource_prefix: str) -> str:
    return f"alias/{resource_prefix}"


def model_package_group_name(config: StageConfig) -> str:
    return f"{config.resource_prefix}-models"


def serving_image_repository_name(config: StageConfig) -> str:
    return image_repository_name_of(config.resource_prefix)


def image_repository_name_of(resource_prefix: str) -> str:
    return f"{resource_prefix}-serving"


def serving_role_name(config: StageConfig) -> str:
    """Named, because the stage that shares its model versions admits it by ARN before it exists."""
    return f"{config.resource_prefix}-serving"


def pipeline_name(config: StageConfig) -> str:
    return pipeline_name_of(config.resource_prefix)


def pipeline_name_of(resource_prefix: str) -> str:
    return f"{resource_prefix}-training"


def data_quality_schedule_name(config: StageConfig) -> str:
    return f"{config.resource_prefix}-data-quality"


def model_quality_schedule_name(config: StageConfig) -> str:
    return f"{config.resource_prefix}-model-quality"


def retrain_alarm_name(config: StageConfig) -> str:
    """The composite alarm that starts the training pipeline when a feature of the real-time endpoint drifts."""
    return f"{realtime_endpoint_name(config)}-retrain"


# Every endpoint has one production variant; scaling targets and metrics address it by this name.
VARIANT_NAME = "AllTraffic"


def realtime_endpoint_name(config: StageConfig) -> str:
    return f"{config.resource_prefix}-realtime"


def serverless_endpoint_name(config: StageConfig) -> str:
    return f"{config.resource_prefix}-serverless"


def async_endpoint_name(config: StageConfig) -> str:
    return f"{config.resource_prefix}-async"


def batch_transform_state_machine_name(config: StageConfig) -> str:
    return f"{config.resource_prefix}-batch-transform"


def transform_job_name_prefix(config: StageConfig) -> str:
    """Transform jobs are named `<prefix><execution name>`; IAM scopes the state machine to this prefix."""
    return f"{config.resource_prefix}-"


def serving_dashboard_name(config: StageConfig) -> str:
    return f"{config.resource_prefix}-serving"


def delivery_stack_name(project_name: str) -> str:
    """The delivery pipeline's stack lives in the tooling account, outside any stage."""
    return f"{project_name}-delivery"


def delivery_pipeline_name(project_name: str) -> str:
    return f"{project_name}-delivery"
