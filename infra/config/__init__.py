"""Typed stage configuration: the stage model at the bottom of the layers (README, "Layout").

Values come from the CDK context: the `project_name` and `stages` keys of cdk.json, overridable on the command line
with `-c project_name=...`, `-c <stage>.<dotted.key>=<value>` (e.g. `-c prod.account=123456789012`) and
`-c stage=dev,prod` to synthesize only some stages. Every problem is reported as one line naming the key.

stages.py names the stages, fields.py the validated value types, bounds.py the limits shared with the pipeline's
parameters, sections.py the settings models (StageConfig), loading.py reads them from the context, delivery.py the
delivery pipeline's settings, app_settings.py all of them together as an app checks them. Import from here.
"""

from infra.config.app_settings import AppSettings, load_app_settings
from infra.config.delivery import (
    DELIVERED_STAGES,
    DeliveryConfig,
    DeliverySource,
    delivered_stage_problems,
    load_delivery_config,
)
from infra.config.fields import ASYNC_PAYLOAD_LIMIT_MB, GPU_TRAINING_INSTANCE_TYPES
from infra.config.loading import (
    PROJECT_ROOT,
    STAGE_SELECTION_CONTEXT_KEY,
    StageConfigError,
    cdk_json_context,
    cross_stage_problems,
    load_stage_configs,
)
from infra.config.sections import (
    MODE_NAMES,
    AsyncInference,
    BatchTransform,
    InferenceSettings,
    MonitoringSettings,
    PipelineSettings,
    ProcessingSettings,
    RealtimeInference,
    ServedBaseline,
    ServerlessInference,
    ServingAlarms,
    StageConfig,
    StorageSettings,
    TrainingSettings,
    VpcSettings,
)
from infra.config.stages import RELEASE_SOURCE_STAGE, STAGE_NAMES, serving_consumer_stages

__all__ = [
    "ASYNC_PAYLOAD_LIMIT_MB",
    "DELIVERED_STAGES",
    "GPU_TRAINING_INSTANCE_TYPES",
    "MODE_NAMES",
    "PROJECT_ROOT",
    "RELEASE_SOURCE_STAGE",
    "STAGE_NAMES",
    "STAGE_SELECTION_CONTEXT_KEY",
    "AppSettings",
    "AsyncInference",
    "BatchTransform",
    "DeliveryConfig",
    "DeliverySource",
    "InferenceSettings",
    "MonitoringSettings",
    "PipelineSettings",
    "ProcessingSettings",
    "RealtimeInference",
    "ServerlessInference",
    "ServedBaseline",
    "ServingAlarms",
    "StageConfig",
    "StageConfigError",
    "StorageSettings",
    "TrainingSettings",
    "VpcSettings",
    "cdk_json_context",
    "cross_stage_problems",
    "delivered_stage_problems",
    "load_app_settings",
    "load_delivery_config",
    "load_stage_configs",
    "serving_consumer_stages",
]
