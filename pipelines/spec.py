"""What the training pipeline is made of, defined once: step names and order, parameters and their stage defaults,
container paths, and the hyperparameter search space. The SageMaker definition builder, the local runner, the
operator CLI and the tests all read this module, so they cannot drift apart."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from enum import StrEnum

from infra.config import GPU_TRAINING_INSTANCE_TYPES, StageConfig
from infra.config.bounds import (
    ACCURACY_THRESHOLD,
    JOB_SECONDS,
    TRAINING_INSTANCE_COUNT,
    TUNING_MAX_JOBS,
    TUNING_MAX_PARALLEL_JOBS,
    Bounds,
)
from infra.instance_types import InstanceUse, same_volume_encryption
from infra.layout import DataPrefix
from training_code import hyperparameters as hp
from training_code.contract import DEFAULT_LABEL_COLUMN, PROCESSING_ROOT, SPLITS


class StepName(StrEnum):
    PREPROCESS = "Preprocess"
    TUNE = "Tune"
    EVALUATE = "Evaluate"
    CHECK_ACCURACY = "CheckAccuracy"
    BASELINE = "Baseline"
    REGISTER = "Register"
    ACCURACY_TOO_LOW = "AccuracyBelowThreshold"


# Execution order on the success path; the Fail step is the condition's other branch.
STEP_ORDER = (
    StepName.PREPROCESS,
    StepName.TUNE,
    StepName.EVALUATE,
    StepName.CHECK_ACCURACY,
    StepName.BASELINE,
    StepName.REGISTER,
)
# SageMaker names the steps a ModelStep creates after it: "<name>-RegisterModel" registers the package.
REGISTER_MODEL_STEP = f"{StepName.REGISTER}-RegisterModel"


class ParameterName(StrEnum):
    INPUT_DATA_URI = "InputDataUri"
    LABEL_COLUMN = "LabelColumn"
    PROCESSING_INSTANCE_TYPE = "ProcessingInstanceType"
    TRAINING_INSTANCE_TYPE = "TrainingInstanceType"
    TRAINING_INSTANCE_COUNT = "TrainingInstanceCount"
    MAX_RUNTIME_SECONDS = "MaxRuntimeSeconds"
    MAX_WAIT_SECONDS = "MaxWaitSeconds"
    TUNING_MAX_JOBS = "TuningMaxJobs"
    TUNING_MAX_PARALLEL_JOBS = "TuningMaxParallelJobs"
    ACCURACY_THRESHOLD = "AccuracyThreshold"
    MODEL_APPROVAL_STATUS = "ModelApprovalStatus"
    SERVING_IMAGE_URI = "ServingImageUri"
    PREVIOUS_MODEL_URI = "PreviousModelUri"
    TRIGGERED_BY = "TriggeredBy"


# Why an execution ran, recorded on the version it registers (its customer metadata, under TRIGGER_METADATA_KEY): a
# drift retraining names the drift and where its reports are, so that the person who approves sees it.
TRIGGER_METADATA_KEY = "triggered-by"
DEFAULT_TRIGGER = "a manual or scheduled start"
# What a model package's customer metadata value may hold (botocore: CustomerMetadataValue).
METADATA_VALUE = re.compile(r"[\w .:/=+\-@]{1,256}")


def drift_trigger(threshold: float, endpoint_name: str, reports_uri: str) -> str:
    """The TriggeredBy of a retraining on drift, in AWS (the retrain rule) and locally (`mlops local replay`):
    `reports_uri` is the folder of the endpoint's monitoring reports, or of the one execution that drifted."""
    return f"drift beyond {threshold} in {endpoint_name} - reports in {reports_uri}"


class ApprovalStatus(StrEnum):
    """A model package version's ModelApprovalStatus, in the order a version goes through them: the pipeline
    registers it pending (by default), and an operator approves or rejects it."""

    PENDING = "PendingManualApproval"
    APPROVED = "Approved"
    REJECTED = "Rejected"


KIND_WORDS = {str: "a string", int: "an integer", float: "a number"}


@dataclass(frozen=True)
class ParameterSpec:
    name: ParameterName
    kind: type  # str, int, float
    default: str | int | float
    allowed: tuple[str, ...] | None = None
    bounds: Bounds | None = None
    prefix: str | None = None
    nonempty: bool = False
    pattern: re.Pattern[str] | None = None

    def parse(self, text: str) -> str | int | float:
        """A command-line value as this parameter's type, or a ValueError naming the parameter and what it takes."""
        try:
            value = self.kind(text)
        except ValueError:
            raise ValueError(f"parameter {self.name}: {text!r} is not {KIND_WORDS[self.kind]}") from None
        if self.allowed and value not in self.allowed:
            raise ValueError(f"parameter {self.name}: {text!r} is not allowed; {_allowed_hint(value, self.allowed)}")
        if self.bounds is not None and value not in self.bounds:
            raise ValueError(
                f"parameter {self.name}: {text!r} is outside [{self.bounds.minimum}, {self.bounds.maximum}]"
            )
        if self.prefix and not (value.startswith(self.prefix) and len(value) > len(self.prefix)):
            raise ValueError(f"parameter {self.name}: {text!r} must start with {self.prefix}")
        if self.nonempty and not value.strip():
            raise ValueError(f"parameter {self.name}: must not be empty")
        if self.pattern and not self.pattern.fullmatch(value):
            raise ValueError(
                f"parameter {self.name}: {text!r} must be 1 to 256 letters, digits, spaces or _ . : / = + - @"
            )
        return value


LISTED_VALUES = 12


def _allowed_hint(value: str, allowed: tuple[str, ...]) -> str:
    """All the allowed values when they are few; else how many, and the closest few."""
    if len(allowed) <= LISTED_VALUES:
        return f"allowed: {', '.join(allowed)}"
    close = difflib.get_close_matches(value, allowed, n=3, cutoff=0.6) or list(allowed[:3])
    return f"allowed: one of {len(allowed)} values, e.g. {', '.join(close)}"


def parameter_specs(config: StageConfig, data_bucket: str, serving_image_uri: str) -> list[ParameterSpec]:
    """The pipeline's parameters with this stage's defaults. MaxWait exists only with spot (SageMaker rejects it
    otherwise); PreviousModelUri only when the stage configures warm start."""
    training = config.training
    specs = [
        ParameterSpec(ParameterName.INPUT_DATA_URI, str, f"s3://{data_bucket}/{DataPrefix.RAW}", prefix="s3://"),
        ParameterSpec(ParameterName.LABEL_COLUMN, str, DEFAULT_LABEL_COLUMN, nonempty=True),
        ParameterSpec(
            ParameterName.PROCESSING_INSTANCE_TYPE,
            str,
            config.processing.instance_type,
            same_volume_encryption(config.processing.instance_type, InstanceUse.PROCESSING),
        ),
        ParameterSpec(
            ParameterName.TRAINING_INSTANCE_TYPE,
            str,
            training.instance_type,
            tuple(sorted(GPU_TRAINING_INSTANCE_TYPES)),
        ),
        ParameterSpec(
            ParameterName.TRAINING_INSTANCE_COUNT, int, training.instance_count, bounds=TRAINING_INSTANCE_COUNT
        ),
        ParameterSpec(ParameterName.MAX_RUNTIME_SECONDS, int, training.max_runtime_seconds, bounds=JOB_SECONDS),
    ]
    if training.use_spot:
        specs.append(ParameterSpec(ParameterName.MAX_WAIT_SECONDS, int, training.max_wait_seconds, bounds=JOB_SECONDS))
    specs += [
        ParameterSpec(ParameterName.TUNING_MAX_JOBS, int, config.pipeline.tuning_max_jobs, bounds=TUNING_MAX_JOBS),
        ParameterSpec(
            ParameterName.TUNING_MAX_PARALLEL_JOBS,
            int,
            config.pipeline.tuning_max_parallel_jobs,
            bounds=TUNING_MAX_PARALLEL_JOBS,
        ),
        ParameterSpec(
            ParameterName.ACCURACY_THRESHOLD,
            float,
            config.pipeline.accuracy_threshold,
            bounds=ACCURACY_THRESHOLD,
        ),
        ParameterSpec(ParameterName.MODEL_APPROVAL_STATUS, str, ApprovalStatus.PENDING.value, tuple(ApprovalStatus)),
        ParameterSpec(ParameterName.SERVING_IMAGE_URI, str, serving_image_uri),
        ParameterSpec(ParameterName.TRIGGERED_BY, str, DEFAULT_TRIGGER, pattern=METADATA_VALUE),
    ]
    if config.pipeline.warm_start_model_uri:
        specs.append(ParameterSpec(ParameterName.PREVIOUS_MODEL_URI, str, config.pipeline.warm_start_model_uri))
    return specs


# Container paths of the processing steps (the training container's are SageMaker's channels).
BUNDLE_DIR = PROCESSING_ROOT / "input" / "bundle"
RAW_INPUT_DIR = PROCESSING_ROOT / "input" / "raw"
SPLITS_OUTPUT_DIR = PROCESSING_ROOT / "output"
PREPROCESS_OUTPUTS = (*SPLITS, "report")
MODEL_INPUT_DIR = PROCESSING_ROOT / "model"
TEST_INPUT_DIR = PROCESSING_ROOT / "test"
EVALUATION_OUTPUT_DIR = PROCESSING_ROOT / "evaluation"
EVALUATION_OUTPUT = "evaluation"
EVALUATION_PROPERTY_FILE = "EvaluationReport"
TRAIN_INPUT_DIR = PROCESSING_ROOT / "train"
BASELINE_OUTPUT_DIR = PROCESSING_ROOT / "baseline"
BASELINE_OUTPUT = "baseline"

PREPROCESS_MODULE = "pipelines.steps.preprocess"
EVALUATE_MODULE = "pipelines.steps.evaluate"
BASELINE_MODULE = "pipelines.steps.baseline"


@dataclass(frozen=True)
class SearchDimension:
    """One tuned hyperparameter: a continuous range (optionally log-scaled) or a set of categories."""

    hyperparameter: str
    low: float | None = None
    high: float | None = None
    logarithmic: bool = False
    categories: tuple[str, ...] = ()


SEARCH_SPACE = (
    SearchDimension(hp.key("learning_rate"), low=1e-4, high=1e-2, logarithmic=True),
    SearchDimension(hp.key("batch_size"), categories=("32", "64", "128")),
    SearchDimension(hp.key("dropout"), low=0.0, high=0.4),
    SearchDimension(hp.key("weight_init"), categories=("auto", "he_uniform", "xavier_uniform", "lecun_normal")),
    SearchDimension(hp.key("optimizer"), categories=("adam", "adamw", "sgd", "rmsprop")),
)
TUNING_STRATEGY = "Bayesian"


def static_hyperparameters() -> dict[str, str]:
    """Every training hyperparameter the search does not vary, at its default."""
    tuned = {dimension.hyperparameter for dimension in SEARCH_SPACE}
    return {name: value for name, value in hp.Hyperparameters().as_sagemaker().items() if name not in tuned}
