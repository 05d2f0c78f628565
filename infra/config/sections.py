"""The sections of a stage's settings, as typed, validated, immutable models: the stage config."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from infra.config.bounds import (
    ACCURACY_THRESHOLD,
    JOB_SECONDS,
    TRAINING_INSTANCE_COUNT,
    TUNING_MAX_JOBS,
    TUNING_MAX_PARALLEL_JOBS,
)
from infra.config.fields import (
    ASYNC_PAYLOAD_LIMIT_MB,
    TRANSFORM_IN_FLIGHT_LIMIT_MB,
    AccountId,
    BatchInputPrefix,
    GpuTrainingInstanceType,
    HostingInstanceType,
    HostingInstanceTypes,
    JsonPath,
    LineContentType,
    ModelPackageArn,
    ProcessingInstanceType,
    ProjectName,
    S3Folder,
    S3Uri,
    Schedule,
    SecurityGroupIds,
    StageRegion,
    SubnetIds,
    Tags,
    TransformInstanceType,
    TransformInstanceTypes,
)
from infra.config.stages import StageName, serving_source_stage
from infra.framework_images import monitoring_regions
from infra.layout import DataPrefix
from infra.manifest import MODEL_PACKAGE_ARN
from training_code.contract import DEFAULT_DRIFT_THRESHOLD


class Section(BaseModel):
    """A section of settings: unknown keys are refused, and nothing changes a config once it is loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class CapacityBounds(Section):
    """Instance-count bounds of an auto-scaled variant."""

    min_capacity: int = Field(ge=0)
    max_capacity: int = Field(ge=1)

    @model_validator(mode="after")
    def _min_not_above_max(self) -> CapacityBounds:
        if self.min_capacity > self.max_capacity:
            raise ValueError(f"min_capacity ({self.min_capacity}) must be <= max_capacity ({self.max_capacity})")
        return self


class ProcessingSettings(Section):
    instance_type: ProcessingInstanceType = "ml.m5.xlarge"


class TrainingSettings(Section):
    instance_type: GpuTrainingInstanceType = "ml.g4dn.xlarge"
    instance_count: int = TRAINING_INSTANCE_COUNT.field(1)
    use_spot: bool = True
    max_runtime_seconds: int = JOB_SECONDS.field(3600)
    max_wait_seconds: int = JOB_SECONDS.field(7200)

    @model_validator(mode="after")
    def _wait_covers_runtime(self) -> TrainingSettings:
        if self.max_wait_seconds < self.max_runtime_seconds:
            raise ValueError(
                f"max_wait_seconds ({self.max_wait_seconds}) must be >= max_runtime_seconds "
                f"({self.max_runtime_seconds}): spot training waits at least as long as it runs"
            )
        return self


class ScalingCooldowns(Section):
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


class BatchTransform(Section):
    enabled: bool = False
    instance_type: TransformInstanceType = "ml.m5.large"
    instance_count: int = Field(default=1, ge=1, le=100)
    input_prefix: BatchInputPrefix = f"{DataPrefix.BATCH_TRANSFORM}input/"
    # Split by line and joined line by line with the input: a type with one record per line, in and out.
    content_type: LineContentType = "text/csv"
    accept: LineContentType = "text/csv"
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


class ServingAlarms(Section):
    """Thresholds of the serving alarms; the real-time 5XX and latency alarms also roll back deployments."""

    latency_p99_microseconds: int = Field(default=250_000, gt=0)
    server_errors_per_minute: int = Field(default=1, ge=1)
    client_errors_per_minute: int = Field(default=20, ge=1)
    backlog_age_seconds: int = Field(default=900, gt=0)
    evaluation_minutes: int = Field(default=2, ge=1, le=60)


MODE_NAMES = ("realtime", "serverless", "asynchronous", "batch_transform")


class ServedBaseline(Section):
    """The served version's data-quality baseline, which `mlops promote` records in the deployment manifest with the
    version: the S3 folder of its statistics and constraints, and the feature each captured column is."""

    uri: S3Folder
    features: tuple[str, ...] = Field(min_length=1)
    model_constraints: S3Uri | None = None


class InferenceSettings(Section):
    # The approved model package version every mode serves; without one the stage has no serving stack.
    model_package_arn: ModelPackageArn | None = None
    # Set from the manifest with the version (a context value only for a first deploy, as the version's ARN).
    baseline: ServedBaseline | None = None
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
        return self._arn_field(3)

    @property
    def model_package_account(self) -> str | None:
        return self._arn_field(4)

    @property
    def model_package_group(self) -> str | None:
        match = MODEL_PACKAGE_ARN.match(self.model_package_arn or "")
        return match["group"] if match else None

    def _arn_field(self, index: int) -> str | None:
        """A field of the version's ARN (arn:partition:service:region:account:resource), which the validator
        checked to be a model package version's."""
        return self.model_package_arn.split(":")[index] if self.model_package_arn else None


class VpcSettings(Section):
    subnet_ids: SubnetIds
    security_group_ids: SecurityGroupIds


class PipelineSettings(Section):
    tuning_max_jobs: int = TUNING_MAX_JOBS.field(6)
    tuning_max_parallel_jobs: int = TUNING_MAX_PARALLEL_JOBS.field(2)
    # Above 0 for the stage; the AccuracyThreshold parameter of an execution may be 0.
    accuracy_threshold: float = Field(default=0.9, gt=ACCURACY_THRESHOLD.minimum, le=ACCURACY_THRESHOLD.maximum)
    enable_step_caching: bool = False
    # Written into the data-quality constraints each version is registered with.
    drift_threshold: float = Field(default=DEFAULT_DRIFT_THRESHOLD, gt=0, lt=1)
    schedule: Schedule | None = None
    network_isolation: bool = False
    vpc: VpcSettings | None = None
    warm_start_model_uri: S3Uri | None = None
    # The instance types every registered version names as its supported real-time and transform types. Their own
    # settings rather than the endpoints' types: an endpoint changes without a new version, and must not change the
    # training pipeline.
    registration_instance_types: HostingInstanceTypes = ("ml.m5.large",)
    registration_transform_instance_types: TransformInstanceTypes = ()

    @model_validator(mode="after")
    def _parallel_within_total(self) -> PipelineSettings:
        if self.tuning_max_parallel_jobs > self.tuning_max_jobs:
            raise ValueError(
                f"tuning_max_parallel_jobs ({self.tuning_max_parallel_jobs}) must be <= tuning_max_jobs "
                f"({self.tuning_max_jobs})"
            )
        return self


class MonitoringSettings(Section):
    """Model Monitor's data-quality analysis of the real-time endpoint's captured requests against the served version's
    baseline: an alarm per feature whose drift exceeds pipeline.drift_threshold, and, with retrain_on_drift, the
    training pipeline of the stage the versions come from is started when a feature drifts beyond
    retrain_drift_threshold."""

    enabled: bool = False
    schedule: Literal["hourly", "daily"] = "daily"
    instance_type: ProcessingInstanceType = "ml.m5.xlarge"
    # SageMaker caps a scheduled monitoring job at an hour.
    max_runtime_seconds: int = Field(default=1800, ge=60, le=3600)
    retrain_on_drift: bool = False
    retrain_drift_threshold: float = Field(default=0.3, gt=0, lt=1)
    # Model quality: captured predictions merged with the true labels uploaded under ground-truth/ (by event id),
    # analyzed on the same schedule over the requests of the hour this many hours back, which gives the labels
    # time to arrive; an alarm when accuracy falls below pipeline.accuracy_threshold.
    model_quality: bool = False
    ground_truth_delay_hours: int = Field(default=24, ge=1, le=168)


class StorageSettings(Section):
    checkpoint_expiration_days: int = Field(default=14, ge=1)
    noncurrent_version_expiration_days: int = Field(default=30, ge=1)
    incomplete_upload_expiration_days: int = Field(default=7, ge=1)
    access_log_expiration_days: int = Field(default=365, ge=1)


class StageConfig(Section):
    name: StageName
    project_name: ProjectName
    account: AccountId | None = None
    region: StageRegion | None = None
    removal_policy: Literal["destroy", "retain"] = "retain"
    processing: ProcessingSettings = ProcessingSettings()
    training: TrainingSettings = TrainingSettings()
    inference: InferenceSettings = InferenceSettings()
    pipeline: PipelineSettings = PipelineSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
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

    @model_validator(mode="after")
    def _monitoring_has_traffic_in_its_region(self) -> StageConfig:
        monitoring, inference = self.monitoring, self.inference
        if monitoring.model_quality and not monitoring.enabled:
            raise ValueError(
                "monitoring.model_quality: model quality runs with the drift monitoring of captured requests; "
                "set monitoring.enabled to true too"
            )
        if not monitoring.enabled or not inference.model_package_arn:
            return self
        realtime = inference.realtime
        if not realtime.enabled or not realtime.data_capture_percent:
            raise ValueError(
                "monitoring.enabled: monitoring analyzes the real-time endpoint's captured requests; enable "
                "inference.realtime with inference.realtime.data_capture_percent above 0, or disable monitoring"
            )
        if self.region and self.region not in monitoring_regions():
            raise ValueError(
                f"monitoring.enabled: SageMaker Model Monitor's analyzer is not offered in {self.region}; it is in "
                f"{', '.join(monitoring_regions())}"
            )
        return self

    @model_validator(mode="after")
    def _limits_of_the_monitoring_apis(self) -> StageConfig:
        monitoring, baseline = self.monitoring, self.inference.baseline
        if monitoring.model_quality and monitoring.schedule == "hourly" and monitoring.max_runtime_seconds > 1800:
            raise ValueError(
                f"monitoring.max_runtime_seconds ({monitoring.max_runtime_seconds}): an hourly model-quality schedule "
                "may run for at most 1800 s"
            )
        if monitoring.enabled and monitoring.retrain_on_drift and baseline and len(baseline.features) > 90:
            raise ValueError(
                f"monitoring.retrain_on_drift: the served version has {len(baseline.features)} features; the retrain "
                "alarm watches one alarm per feature, and a composite alarm takes at most 90 of ours (100 children, "
                "10,240 characters)"
            )
        return self

    @model_validator(mode="after")
    def _retraining_only_beyond_the_alarm_threshold(self) -> StageConfig:
        retrain, alarm = self.monitoring.retrain_drift_threshold, self.pipeline.drift_threshold
        if self.monitoring.retrain_on_drift and retrain < alarm:
            raise ValueError(
                f"monitoring.retrain_drift_threshold ({retrain}) must be at least pipeline.drift_threshold ({alarm}), "
                "the drift that raises the feature's alarm"
            )
        return self

    @property
    def destroy_on_removal(self) -> bool:
        return self.removal_policy == "destroy"

    @property
    def all_tags(self) -> dict[str, str]:
        return {**self.tags, "project": self.project_name, "stage": self.name}
