"""Typed stage configuration.

Values come from the CDK context: the `project_name` and `stages` keys of cdk.json, overridable on the command line
with `-c project_name=...`, `-c <stage>.<dotted.key>=<value>` (e.g. `-c prod.account=123456789012`) and
`-c stage=dev,prod` to synthesize only some stages. Every problem is reported as one line naming the key.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from infra import manifest
from infra.foundation.layout import DataPrefix
from infra.framework_images import images_described, supported_regions
from infra.instance_types import InstanceUse, instance_type_problem
from training_code.contract import LINE_CONTENT_TYPES, TRANSFORM_PAYLOAD_LIMIT_MB

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CDK_JSON = PROJECT_ROOT / "cdk.json"

STAGE_NAMES: tuple[str, ...] = ("dev", "staging", "prod")
StageName = Literal["dev", "staging", "prod"]

# A stage serves versions of its own model package group, except prod, which serves what staging served: staging
# grants prod its model data, serving image and registry (infra/foundation, infra/pipeline).
RELEASE_SOURCE_STAGE = "staging"
PROMOTION_SOURCE_STAGES = {"prod": RELEASE_SOURCE_STAGE}


def serving_source_stage(stage: str) -> str:
    """The stage whose model package group this stage serves."""
    return PROMOTION_SOURCE_STAGES.get(stage, stage)


def serving_consumer_stages(stage: str) -> tuple[str, ...]:
    """The other stages that serve this stage's model package versions."""
    return tuple(other for other in STAGE_NAMES if other != stage and serving_source_stage(other) == stage)


PROJECT_NAME_CONTEXT_KEY = "project_name"
STAGES_CONTEXT_KEY = "stages"
STAGE_SELECTION_CONTEXT_KEY = "stage"

_LARGE_SIZES = ("xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "48xlarge")
GPU_TRAINING_INSTANCE_SIZES: dict[str, tuple[str, ...]] = {
    "ml.p3": ("2xlarge", "8xlarge", "16xlarge"),
    "ml.g4dn": ("xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge"),
    "ml.g5": _LARGE_SIZES,
    "ml.g6": _LARGE_SIZES,
    "ml.g6e": _LARGE_SIZES,
}
GPU_TRAINING_INSTANCE_TYPES: frozenset[str] = frozenset(
    f"{family}.{size}" for family, sizes in GPU_TRAINING_INSTANCE_SIZES.items() for size in sizes
)
ALLOWED_GPU_TRAINING_INSTANCE_TYPES = "; ".join(
    f"{family}.{{{','.join(sizes)}}}" for family, sizes in GPU_TRAINING_INSTANCE_SIZES.items()
)

_ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
_REGION = re.compile(r"^[a-z]{2,4}(?:-[a-z]+){1,2}-[0-9]$")
# Bucket names are "<project>-<stage>-<purpose>-<account>-<region>" and must stay within S3's 63 characters.
_PROJECT_NAME = re.compile(r"^[a-z][a-z0-9-]{1,14}[a-z0-9]$")


class StageConfigError(ValueError):
    """An invalid stage configuration; the message is one line per problem, each naming the key."""


def _gpu_training_instance_type(value: str) -> str:
    if value not in GPU_TRAINING_INSTANCE_TYPES:
        raise ValueError(f"not a GPU training instance type; allowed: {ALLOWED_GPU_TRAINING_INSTANCE_TYPES}")
    return _instance_type_for(InstanceUse.TRAINING)(value)


def _instance_type_for(use: InstanceUse):
    """A validator that accepts exactly the types the API accepts for this use (botocore's enum)."""

    def check(value: str) -> str:
        problem = instance_type_problem(value, use)
        if problem:
            raise ValueError(problem)
        return value

    return check


def _account_id(value: str) -> str:
    if not _ACCOUNT_ID.match(value):
        raise ValueError("not an AWS account id; expected exactly 12 digits, e.g. 123456789012")
    return value


def _region(value: str) -> str:
    if not _REGION.match(value):
        raise ValueError("not an AWS region; expected e.g. us-east-1 or eu-west-1")
    return value


def _stage_region(value: str) -> str:
    """A region the pipeline can run in: one that has every framework image (the template maps them per region)."""
    _region(value)
    if value not in supported_regions():
        raise ValueError(
            f"the pipeline's framework images ({images_described()}) are not available there; "
            f"supported regions: {', '.join(supported_regions())}"
        )
    return value


# S3 reserves these bucket-name prefixes.
_RESERVED_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
RESERVED_TAG_KEYS = ("project", "stage")


def _project_name(value: str) -> str:
    if not _PROJECT_NAME.match(value) or value.startswith(_RESERVED_BUCKET_PREFIXES):
        raise ValueError(
            "expected 3-16 characters of lowercase letters, digits and hyphens, starting with a letter "
            f"(it prefixes bucket names, which must not start with {', '.join(_RESERVED_BUCKET_PREFIXES)})"
        )
    return value


def _tags(value: dict[str, str]) -> dict[str, str]:
    for key, tag_value in value.items():
        if key in RESERVED_TAG_KEYS:
            raise ValueError(f"tag {key!r} is set from the project name and stage; choose another key")
        if not 1 <= len(key) <= 128 or key.lower().startswith("aws:"):
            raise ValueError(f"tag key {key!r}: expected 1-128 characters, not starting with 'aws:'")
        if len(tag_value) > 256:
            raise ValueError(f"tag {key!r}: value longer than 256 characters")
    return value


GpuTrainingInstanceType = Annotated[str, AfterValidator(_gpu_training_instance_type)]
ProcessingInstanceType = Annotated[str, AfterValidator(_instance_type_for(InstanceUse.PROCESSING))]
HostingInstanceType = Annotated[str, AfterValidator(_instance_type_for(InstanceUse.HOSTING))]
TransformInstanceType = Annotated[str, AfterValidator(_instance_type_for(InstanceUse.TRANSFORM))]
AccountId = Annotated[str, AfterValidator(_account_id)]
Region = Annotated[str, AfterValidator(_region)]
StageRegion = Annotated[str, AfterValidator(_stage_region)]
ProjectName = Annotated[str, AfterValidator(_project_name)]
Tags = Annotated[dict[str, str], AfterValidator(_tags)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CapacityBounds(_Section):
    """Instance-count bounds of an auto-scaled variant."""

    min_capacity: int = Field(ge=0)
    max_capacity: int = Field(ge=1)

    @model_validator(mode="after")
    def _min_not_above_max(self) -> CapacityBounds:
        if self.min_capacity > self.max_capacity:
            raise ValueError(f"min_capacity ({self.min_capacity}) must be <= max_capacity ({self.max_capacity})")
        return self


class ProcessingSettings(_Section):
    instance_type: ProcessingInstanceType = "ml.m5.xlarge"


class TrainingSettings(_Section):
    instance_type: GpuTrainingInstanceType = "ml.g4dn.xlarge"
    instance_count: int = Field(default=1, ge=1, le=16)
    use_spot: bool = True
    max_runtime_seconds: int = Field(default=3600, ge=60, le=28 * 24 * 3600)
    max_wait_seconds: int = Field(default=7200, ge=60, le=28 * 24 * 3600)

    @model_validator(mode="after")
    def _wait_covers_runtime(self) -> TrainingSettings:
        if self.max_wait_seconds < self.max_runtime_seconds:
            raise ValueError(
                f"max_wait_seconds ({self.max_wait_seconds}) must be >= max_runtime_seconds "
                f"({self.max_runtime_seconds}): spot training waits at least as long as it runs"
            )
        return self


_SCHEDULE = re.compile(r"^(cron|rate)\(.+\)$")
_MODEL_PACKAGE_ARN = re.compile(
    r"^arn:aws(?:-[a-z]+)*:sagemaker:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12}):"
    r"model-package/(?P<group>[a-zA-Z0-9](?:-*[a-zA-Z0-9]){0,62})/[0-9]+$"
)
_JSON_PATH = re.compile(r"^\$\S*$")
# S3 keys that may stand in an IAM resource ARN and an EventBridge prefix filter as they are.
_S3_PREFIX = re.compile(r"^(?:[a-zA-Z0-9!_.()-]+/)+$")
# SageMaker's limit on a transform job's in-flight data: MaxPayloadInMB x MaxConcurrentTransforms.
TRANSFORM_IN_FLIGHT_LIMIT_MB = TRANSFORM_PAYLOAD_LIMIT_MB
# SageMaker's limit on an asynchronous request's payload (the object InvokeEndpointAsync names in S3).
ASYNC_PAYLOAD_LIMIT_MB = 1024


def _schedule(value: str) -> str:
    if not _SCHEDULE.match(value):
        raise ValueError("expected an EventBridge schedule expression: cron(...) or rate(...)")
    return value


def _model_package_arn(value: str) -> str:
    if not _MODEL_PACKAGE_ARN.match(value):
        raise ValueError(
            "not a SageMaker model package version ARN; expected "
            "arn:<partition>:sagemaker:<region>:<account>:model-package/<group>/<version>, "
            "e.g. arn:aws:sagemaker:eu-west-1:123456789012:model-package/mlopskit-prod-models/3"
        )
    return value


def _json_path(value: str) -> str:
    if not _JSON_PATH.match(value):
        raise ValueError("expected a JSONPath expression starting with '$', e.g. '$' or '$[1:]'")
    return value


def _batch_input_prefix(value: str) -> str:
    if not value.startswith(DataPrefix.BATCH_TRANSFORM) or not _S3_PREFIX.match(value):
        raise ValueError(
            f"expected a key prefix under the data bucket's {DataPrefix.BATCH_TRANSFORM} (where the SageMaker role "
            f"may read), ending in '/', of letters, digits and !_.()-, e.g. {DataPrefix.BATCH_TRANSFORM}input/"
        )
    return value


def _line_content_type(value: str) -> str:
    if value not in LINE_CONTENT_TYPES:
        allowed = ", ".join(LINE_CONTENT_TYPES)
        raise ValueError(f"not a content type batch transform can split and join by line; allowed: {allowed}")
    return value


ModelPackageArn = Annotated[str, AfterValidator(_model_package_arn)]
JsonPath = Annotated[str, AfterValidator(_json_path)]
Schedule = Annotated[str, AfterValidator(_schedule)]


class ScalingCooldowns(_Section):
    scale_in_cooldown_seconds: int = Field(default=300, ge=0, le=3600)
    scale_out_cooldown_seconds: int = Field(default=60, ge=0, le=3600)


class RealtimeInference(CapacityBounds, ScalingCooldowns):
    enabled: bool = True
    instance_type: HostingInstanceType = "ml.m5.large"
    # Application Auto Scaling refuses an endpoint update that changes a scaled variant's instance type: turn it
    # off for one deploy, change the type in the next (README: changing an instance type).
    autoscaling: bool = True
    min_capacity: int = Field(default=1, ge=1)
    max_capacity: int = Field(default=2, ge=1)
    invocations_per_instance_target: int = Field(default=700, gt=0)
    data_capture_percent: int = Field(default=20, ge=0, le=100)
    # Blue/green deployment: the canary gets this share of the new fleet's capacity (SageMaker allows up to 50%).
    canary_percent: int = Field(default=10, ge=1, le=50)
    canary_wait_seconds: int = Field(default=300, ge=0, le=3600)
    termination_wait_seconds: int = Field(default=300, ge=0, le=3600)
    deployment_timeout_seconds: int = Field(default=1800, ge=600, le=28800)

    @model_validator(mode="after")
    def _timeout_covers_waits(self) -> RealtimeInference:
        waits = self.canary_wait_seconds + self.termination_wait_seconds
        if self.deployment_timeout_seconds <= waits:
            raise ValueError(
                f"deployment_timeout_seconds ({self.deployment_timeout_seconds}) must be greater than "
                f"canary_wait_seconds + termination_wait_seconds ({waits})"
            )
        return self


class ServerlessInference(ScalingCooldowns):
    enabled: bool = False
    memory_size_mb: Literal[1024, 2048, 3072, 4096, 5120, 6144] = 2048
    max_concurrency: int = Field(default=5, ge=1, le=200)
    # Provisioned concurrency (warm capacity) and its auto-scaling range: none unless set.
    provisioned_concurrency: int | None = Field(default=None, ge=1)
    max_provisioned_concurrency: int | None = Field(default=None, ge=1)
    provisioned_concurrency_utilization_target: float = Field(default=0.7, gt=0, le=1)

    @model_validator(mode="after")
    def _provisioned_within_max_concurrency(self) -> ServerlessInference:
        bounds = (
            ("provisioned_concurrency", self.provisioned_concurrency, "max_concurrency", self.max_concurrency),
            ("max_provisioned_concurrency", self.max_provisioned_concurrency, "max_concurrency", self.max_concurrency),
            (
                "provisioned_concurrency",
                self.provisioned_concurrency,
                "max_provisioned_concurrency",
                self.max_provisioned_concurrency,
            ),
        )
        for lower_name, lower, upper_name, upper in bounds:
            if lower is not None and upper is not None and lower > upper:
                raise ValueError(f"{lower_name} ({lower}) must be <= {upper_name} ({upper})")
        if self.max_provisioned_concurrency is not None and self.provisioned_concurrency is None:
            raise ValueError("max_provisioned_concurrency needs provisioned_concurrency")
        return self

    @property
    def scaled_provisioned_concurrency_max(self) -> int:
        """The most provisioned concurrency auto-scaling may set: max_provisioned_concurrency, else max_concurrency."""
        return self.max_provisioned_concurrency or self.max_concurrency


class AsyncInference(CapacityBounds, ScalingCooldowns):
    enabled: bool = False
    instance_type: HostingInstanceType = "ml.m5.large"
    autoscaling: bool = True
    # Asynchronous requests come from S3 and may be up to 1 GB; the server refuses bodies above this limit.
    max_payload_mb: int = Field(default=ASYNC_PAYLOAD_LIMIT_MB, ge=1, le=ASYNC_PAYLOAD_LIMIT_MB)
    min_capacity: int = Field(default=0, ge=0)
    max_capacity: int = Field(default=2, ge=1)
    max_concurrent_invocations_per_instance: int = Field(default=4, ge=1, le=1000)
    backlog_per_instance_target: float = Field(default=5.0, gt=0)


class BatchTransform(_Section):
    enabled: bool = False
    instance_type: TransformInstanceType = "ml.m5.large"
    instance_count: int = Field(default=1, ge=1, le=100)
    input_prefix: Annotated[str, AfterValidator(_batch_input_prefix)] = f"{DataPrefix.BATCH_TRANSFORM}input/"
    # Split by line and joined line by line with the input: a type with one record per line, in and out.
    content_type: Annotated[str, AfterValidator(_line_content_type)] = "text/csv"
    accept: Annotated[str, AfterValidator(_line_content_type)] = "text/csv"
    max_payload_mb: int = Field(default=6, ge=1, le=TRANSFORM_IN_FLIGHT_LIMIT_MB)
    max_concurrent_transforms: int = Field(default=1, ge=1)
    input_filter: JsonPath = "$"
    output_filter: JsonPath = "$"
    join_source: Literal["Input", "None"] = "Input"
    run_on_upload: bool = True
    schedule: Schedule | None = None

    @model_validator(mode="after")
    def _in_flight_data_within_limit(self) -> BatchTransform:
        in_flight = self.max_payload_mb * self.max_concurrent_transforms
        if in_flight > TRANSFORM_IN_FLIGHT_LIMIT_MB:
            raise ValueError(
                f"max_payload_mb x max_concurrent_transforms ({self.max_payload_mb} x {self.max_concurrent_transforms}"
                f" = {in_flight}) must be <= {TRANSFORM_IN_FLIGHT_LIMIT_MB}"
            )
        return self


class ServingAlarms(_Section):
    """Thresholds of the serving alarms; the real-time 5XX and latency alarms also roll back deployments."""

    latency_p99_microseconds: int = Field(default=250_000, gt=0)
    server_errors_per_minute: int = Field(default=1, ge=1)
    client_errors_per_minute: int = Field(default=20, ge=1)
    backlog_age_seconds: int = Field(default=900, gt=0)
    evaluation_minutes: int = Field(default=2, ge=1, le=60)


MODE_NAMES = ("realtime", "serverless", "asynchronous", "batch_transform")


class InferenceSettings(_Section):
    # The approved model package version every mode serves; without one the stage has no serving stack.
    model_package_arn: ModelPackageArn | None = None
    realtime: RealtimeInference = RealtimeInference()
    serverless: ServerlessInference = ServerlessInference()
    asynchronous: AsyncInference = AsyncInference()
    batch_transform: BatchTransform = BatchTransform()
    alarms: ServingAlarms = ServingAlarms()

    @property
    def enabled_modes(self) -> tuple[str, ...]:
        return tuple(name for name in MODE_NAMES if getattr(self, name).enabled)

    @property
    def model_package_region(self) -> str | None:
        return self._model_package_part("region")

    @property
    def model_package_account(self) -> str | None:
        return self._model_package_part("account")

    @property
    def model_package_group(self) -> str | None:
        return self._model_package_part("group")

    def _model_package_part(self, part: str) -> str | None:
        match = _MODEL_PACKAGE_ARN.match(self.model_package_arn or "")
        return match[part] if match else None


_SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_SECURITY_GROUP_ID = re.compile(r"^sg-[0-9a-f]{8,17}$")


def _subnet_ids(value: list[str]) -> list[str]:
    bad = [item for item in value if not _SUBNET_ID.match(item)]
    if bad or not value:
        raise ValueError(f"expected one or more subnet ids such as subnet-0123456789abcdef0, got {bad or value}")
    return value


def _security_group_ids(value: list[str]) -> list[str]:
    bad = [item for item in value if not _SECURITY_GROUP_ID.match(item)]
    if bad or not value:
        raise ValueError(f"expected one or more security group ids such as sg-0123456789abcdef0, got {bad or value}")
    return value


def _s3_uri(value: str) -> str:
    if not value.startswith("s3://") or len(value) <= len("s3://"):
        raise ValueError("expected an S3 URI such as s3://bucket/models/model.tar.gz")
    return value


def _comma_list(value: Any) -> Any:
    """`-c dev.pipeline.vpc.subnet_ids=subnet-1,subnet-2` arrives as one string."""
    return [item.strip() for item in value.split(",") if item.strip()] if isinstance(value, str) else value


class VpcSettings(_Section):
    subnet_ids: Annotated[list[str], BeforeValidator(_comma_list), AfterValidator(_subnet_ids)]
    security_group_ids: Annotated[list[str], BeforeValidator(_comma_list), AfterValidator(_security_group_ids)]


class PipelineSettings(_Section):
    tuning_max_jobs: int = Field(default=6, ge=1, le=500)
    tuning_max_parallel_jobs: int = Field(default=2, ge=1, le=100)
    accuracy_threshold: float = Field(default=0.9, gt=0, le=1)
    enable_step_caching: bool = False
    schedule: Schedule | None = None
    network_isolation: bool = False
    vpc: VpcSettings | None = None
    warm_start_model_uri: Annotated[str, AfterValidator(_s3_uri)] | None = None

    @model_validator(mode="after")
    def _parallel_within_total(self) -> PipelineSettings:
        if self.tuning_max_parallel_jobs > self.tuning_max_jobs:
            raise ValueError(
                f"tuning_max_parallel_jobs ({self.tuning_max_parallel_jobs}) must be <= tuning_max_jobs "
                f"({self.tuning_max_jobs})"
            )
        return self


class StorageSettings(_Section):
    checkpoint_expiration_days: int = Field(default=14, ge=1)
    noncurrent_version_expiration_days: int = Field(default=30, ge=1)
    incomplete_upload_expiration_days: int = Field(default=7, ge=1)
    access_log_expiration_days: int = Field(default=365, ge=1)


class StageConfig(_Section):
    name: StageName
    project_name: ProjectName
    account: AccountId | None = None
    region: StageRegion | None = None
    removal_policy: Literal["destroy", "retain"] = "retain"
    processing: ProcessingSettings = ProcessingSettings()
    training: TrainingSettings = TrainingSettings()
    inference: InferenceSettings = InferenceSettings()
    pipeline: PipelineSettings = PipelineSettings()
    storage: StorageSettings = StorageSettings()
    tags: Tags = {}

    @field_validator("removal_policy")
    @classmethod
    def _destroy_only_in_dev(cls, value: str, info: ValidationInfo) -> str:
        if value == "destroy" and info.data.get("name") != "dev":
            raise ValueError("'destroy' is allowed only in dev; allowed here: 'retain' (data must outlive the stack)")
        return value

    @property
    def resource_prefix(self) -> str:
        return f"{self.project_name}-{self.name}"

    @property
    def serving_source_stage(self) -> str:
        return serving_source_stage(self.name)

    @model_validator(mode="after")
    def _model_package_of_a_group_this_stage_serves(self) -> StageConfig:
        group = self.inference.model_package_group
        groups = {f"{self.project_name}-{stage}-models" for stage in (self.name, self.serving_source_stage)}
        if group and group not in groups:
            raise ValueError(
                f"inference.model_package_arn names a version of {group}; {self.name} serves versions of "
                f"{' or '.join(sorted(groups))} (the stages that grant it their model data, image and registry)"
            )
        return self

    @model_validator(mode="after")
    def _own_version_in_stage_account(self) -> StageConfig:
        own = self.inference.model_package_group == f"{self.resource_prefix}-models"
        package_account = self.inference.model_package_account
        if own and self.account and package_account != self.account:
            raise ValueError(
                f"inference.model_package_arn is a version of the stage's own group in account {package_account}, "
                f"but the stage deploys to account {self.account}"
            )
        return self

    @model_validator(mode="after")
    def _model_package_in_stage_region(self) -> StageConfig:
        package_region = self.inference.model_package_region
        if self.region and package_region and package_region != self.region:
            raise ValueError(
                f"inference.model_package_arn is in {package_region} but the stage deploys to {self.region}; "
                "SageMaker hosts a model package only in its own region"
            )
        return self

    @property
    def destroy_on_removal(self) -> bool:
        return self.removal_policy == "destroy"

    @property
    def all_tags(self) -> dict[str, str]:
        return {**self.tags, "project": self.project_name, "stage": self.name}


def cdk_json_context(path: Path = CDK_JSON) -> dict[str, Any]:
    """The context that `npx cdk` passes to app.py, for tools and tests that read the config without the CLI."""
    return json.loads(path.read_text())["context"]


def load_stage_configs(context: Mapping[str, Any]) -> list[StageConfig]:
    """The selected stages' configs from a CDK context mapping, in STAGE_NAMES order."""
    problems: list[str] = []
    stages_context = context.get(STAGES_CONTEXT_KEY)
    if not isinstance(stages_context, Mapping):
        raise StageConfigError(
            f"context key '{STAGES_CONTEXT_KEY}' is missing or not an object; it must map "
            f"{', '.join(STAGE_NAMES)} to their settings (see cdk.json)"
        )
    problems += [
        f"{STAGES_CONTEXT_KEY}.{name}: unknown stage; allowed: {', '.join(STAGE_NAMES)}"
        for name in stages_context
        if name not in STAGE_NAMES
    ]
    selected = _selected_stages(context.get(STAGE_SELECTION_CONTEXT_KEY), problems)

    configs = []
    for name in selected:
        section = stages_context.get(name) or {}
        if not isinstance(section, Mapping):
            problems.append(f"{STAGES_CONTEXT_KEY}.{name} = {section!r}: expected an object of settings")
            continue
        settings = _with_overrides(name, section, context, f"{STAGES_CONTEXT_KEY}.")
        problems += _served_version_from_manifest(name, settings)
        problems += [
            f"{STAGES_CONTEXT_KEY}.{name}.{key}: not settable per stage; the stage name is its key under "
            f"'{STAGES_CONTEXT_KEY}' and the project name is the top-level '{PROJECT_NAME_CONTEXT_KEY}'"
            for key in _DERIVED_KEYS
            if key in settings
        ]
        settings.update(name=name, project_name=context.get(PROJECT_NAME_CONTEXT_KEY))
        try:
            configs.append(StageConfig.model_validate(settings))
        except ValidationError as error:
            problems += [_describe(name, detail) for detail in error.errors()]
    if problems:
        raise StageConfigError("\n".join(dict.fromkeys(problems)))
    return configs


_DERIVED_KEYS = ("name", "project_name")


def _served_version_from_manifest(stage: str, settings: dict[str, Any]) -> list[str]:
    """The promoted version serves unless the context names one (`-c <stage>.inference.model_package_arn=...`)."""
    inference = settings.setdefault("inference", {})
    if not isinstance(inference, dict) or inference.get("model_package_arn") is not None:
        return []
    try:
        deployed = manifest.deployed_model_package_arn(stage)
    except manifest.ManifestError as error:
        return [f"deployment manifest of {stage}: {error}"]
    if deployed:
        inference["model_package_arn"] = deployed
    return []


def cross_stage_problems(every_stage: Mapping[str, StageConfig]) -> list[str]:
    """A stage serving another stage's version must name it where that stage deploys (its account and region)."""
    problems = []
    for config in every_stage.values():
        inference = config.inference
        source = every_stage.get(config.serving_source_stage)
        if source is None or source is config or inference.model_package_group != f"{source.resource_prefix}-models":
            continue
        for part, expected in (("account", source.account), ("region", source.region)):
            named = getattr(inference, f"model_package_{part}")
            if expected and named != expected:
                problems.append(
                    f"{STAGES_CONTEXT_KEY}.{config.name}.inference.model_package_arn: a version of "
                    f"{source.name}'s group in {part} {named}, but {source.name} deploys to {part} {expected}"
                )
    return problems


def _selected_stages(selection: Any, problems: list[str]) -> list[str]:
    if selection is None:
        return list(STAGE_NAMES)
    requested = [part.strip() for part in str(selection).split(",") if part.strip()]
    unknown = [name for name in requested if name not in STAGE_NAMES]
    if unknown or not requested:
        problems.append(
            f"context '{STAGE_SELECTION_CONTEXT_KEY}' = {selection!r}: unknown stage "
            f"{', '.join(map(repr, unknown)) or '(none given)'}; allowed: {', '.join(STAGE_NAMES)}"
        )
        return []
    return [name for name in STAGE_NAMES if name in requested]


def _with_overrides(
    prefix: str, settings: Mapping[str, Any], context: Mapping[str, Any], location: str = ""
) -> dict[str, Any]:
    """Apply `-c <prefix>.<dotted.key>=<value>` overrides onto a deep copy of the settings; errors name the key
    under `location` (the context section that holds these settings)."""
    merged = copy.deepcopy(dict(settings))
    for key in sorted(context):
        if not key.startswith(f"{prefix}."):
            continue
        *parents, leaf = key.split(".")[1:]
        target = merged
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise StageConfigError(f"{location}{key}: '{part}' is a value, not a section")
        target[leaf] = context[key]
    return merged


def _describe(stage: str, detail: Mapping[str, Any]) -> str:
    path = tuple(str(part) for part in detail["loc"])
    if path[:1] == (PROJECT_NAME_CONTEXT_KEY,):
        location = PROJECT_NAME_CONTEXT_KEY
    else:
        location = ".".join((STAGES_CONTEXT_KEY, stage, *path))
    if detail["type"] == "extra_forbidden":
        return f"{location}: unknown key; allowed keys: {', '.join(_fields_at(path[:-1]))}"
    if detail["type"] == "missing":
        return f"{location}: required"
    message = detail["msg"].removeprefix("Value error, ")
    if isinstance(detail["input"], Mapping):
        return f"{location}: {message}"
    return f"{location} = {detail['input']!r}: {message}"


def _fields_at(path: tuple[str, ...]) -> list[str]:
    model: type[BaseModel] = StageConfig
    for part in path:
        annotation = model.model_fields[part].annotation
        # An optional section (`vpc: VpcSettings | None`) names its model among the union's members.
        members = [member for member in (annotation, *getattr(annotation, "__args__", ())) if isinstance(member, type)]
        sections = [member for member in members if issubclass(member, BaseModel)]
        if not sections:
            return []
        model = sections[0]
    return [name for name in model.model_fields if name not in _DERIVED_KEYS]


# --- Delivery: the CDK Pipelines pipeline that deploys staging and prod (top-level context key `delivery`) ---

DELIVERY_CONTEXT_KEY = "delivery"
# The stages the delivery pipeline deploys, in order, when delivery is enabled.
DELIVERED_STAGES: tuple[str, ...] = ("staging", "prod")

_CONNECTION_ARN = re.compile(
    r"^arn:aws(?:-[a-z]+)*:(?:codestar-connections|codeconnections):[a-z0-9-]+:[0-9]{12}:"
    r"connection/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
)
# CodeCommit: 1-100 letters, digits, '.', '_', '-'. A connection: `owner/repo` as GitHub, GitLab or Bitbucket spell it.
_CODECOMMIT_REPOSITORY = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_CONNECTION_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_BRANCH = re.compile(r"^[A-Za-z0-9._/-]+$")


def _connection_arn(value: str) -> str:
    if not _CONNECTION_ARN.match(value):
        raise ValueError(
            "not a CodeConnections connection ARN; expected "
            "arn:<partition>:codeconnections:<region>:<account>:connection/<uuid> (or codestar-connections)"
        )
    return value


def _branch(value: str) -> str:
    if not _BRANCH.match(value) or value.startswith(("/", "-")) or value.endswith(("/", ".lock")) or ".." in value:
        raise ValueError("not a git branch name, e.g. main or release/1.2")
    return value


class DeliverySource(_Section):
    """Where the pipeline gets the code: a CodeCommit repository, or one behind a CodeConnections connection."""

    kind: Literal["codecommit", "connection"] = "codecommit"
    repository: str | None = None
    branch: Annotated[str, AfterValidator(_branch)] = "main"
    connection_arn: Annotated[str, AfterValidator(_connection_arn)] | None = None

    @property
    def description(self) -> str:
        via = "CodeCommit" if self.kind == "codecommit" else "connection"
        return f"{via} {self.repository}@{self.branch}"


class DeliveryConfig(_Section):
    """The delivery pipeline's own environment (the tooling account) and source; stages keep their own env."""

    enabled: bool = False
    account: AccountId | None = None
    region: Region | None = None
    source: DeliverySource = DeliverySource()


def load_delivery_config(context: Mapping[str, Any]) -> DeliveryConfig:
    """The `delivery` section with its `-c delivery.<dotted.key>=<value>` overrides, or one line per problem."""
    section = context.get(DELIVERY_CONTEXT_KEY) or {}
    if not isinstance(section, Mapping):
        raise StageConfigError(f"{DELIVERY_CONTEXT_KEY} = {section!r}: expected an object of settings")
    settings = _with_overrides(DELIVERY_CONTEXT_KEY, section, context)
    try:
        config = DeliveryConfig.model_validate(settings)
    except ValidationError as error:
        raise StageConfigError("\n".join(dict.fromkeys(map(_describe_delivery, error.errors())))) from None
    problems = _delivery_requirements(config)
    if problems:
        raise StageConfigError("\n".join(problems))
    return config


def _delivery_requirements(config: DeliveryConfig) -> list[str]:
    """What the settings need of each other; checked whether or not delivery is enabled, where they are given."""
    key = DELIVERY_CONTEXT_KEY
    source = config.source
    problems = []
    if source.kind == "connection" and not source.connection_arn:
        problems.append(f"{key}.source.connection_arn: required when source.kind is 'connection'")
    if source.kind == "codecommit" and source.connection_arn:
        problems.append(f"{key}.source.connection_arn: only for source.kind 'connection'; this source is CodeCommit")
    repository_format = _CODECOMMIT_REPOSITORY if source.kind == "codecommit" else _CONNECTION_REPOSITORY
    if source.repository is not None and not repository_format.match(source.repository):
        expected = "a CodeCommit repository name" if source.kind == "codecommit" else "owner/repository"
        problems.append(f"{key}.source.repository = {source.repository!r}: expected {expected}")
    if config.enabled and source.repository is None:
        problems.append(f"{key}.source.repository: required when delivery is enabled")
    if config.enabled and config.region is None:
        problems.append(f"{key}.region: required when delivery is enabled (the pipeline stack needs an explicit one)")
    return problems


def delivered_stage_problems(delivery: DeliveryConfig, configs: list[StageConfig]) -> list[str]:
    """With delivery enabled, the pipeline deploys staging and prod together, each to its own account and region."""
    if not delivery.enabled:
        return []
    selected = [config.name for config in configs if config.name in DELIVERED_STAGES]
    problems = []
    if selected and len(selected) != len(DELIVERED_STAGES):
        problems.append(
            f"context '{STAGE_SELECTION_CONTEXT_KEY}': with {DELIVERY_CONTEXT_KEY}.enabled the delivery pipeline "
            f"deploys {' and '.join(DELIVERED_STAGES)} together; select both or neither (selected: {selected[0]})"
        )
    own_accounts = [
        config.name
        for config in configs
        if config.name in DELIVERED_STAGES and config.account and config.account != delivery.account
    ]
    if delivery.account is None and own_accounts:
        problems.append(
            f"{DELIVERY_CONTEXT_KEY}.account: required when a delivered stage names its own account "
            f"({', '.join(own_accounts)}); cross-account deployment needs the pipeline's account"
        )
    return problems


def _describe_delivery(detail: Mapping[str, Any]) -> str:
    location = ".".join((DELIVERY_CONTEXT_KEY, *(str(part) for part in detail["loc"])))
    if detail["type"] == "extra_forbidden":
        model: type[BaseModel] = DeliverySource if len(detail["loc"]) > 1 else DeliveryConfig
        return f"{location}: unknown key; allowed keys: {', '.join(model.model_fields)}"
    if detail["type"] == "missing":
        return f"{location}: required"
    message = detail["msg"].removeprefix("Value error, ")
    if isinstance(detail["input"], Mapping):
        return f"{location}: {message}"
    return f"{location} = {detail['input']!r}: {message}"
