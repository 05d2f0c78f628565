"""Where things live in the stage buckets. The IAM scoping, lifecycle rules and the pipeline all use these."""

from __future__ import annotations

from enum import StrEnum


class DataPrefix(StrEnum):
    RAW = "raw/"
    PROCESSED = "processed/"
    # Batch transform reads its input here (the stage config's batch_transform.input_prefix lies under it).
    BATCH_TRANSFORM = "batch-transform/"


class ArtifactPrefix(StrEnum):
    PIPELINE_RUNS = "pipeline-runs/"
    MODELS = "models/"
    CHECKPOINTS = "checkpoints/"
    ASYNC_INFERENCE = "async-inference/"
    DATA_CAPTURE = "data-capture/"
    BATCH_TRANSFORM = "batch-transform/"
    # The reports of the monitoring of captured requests, one folder per monitoring execution.
    MONITORING = "monitoring/"
    # Where the true labels of served requests are uploaded for model-quality monitoring (README: ground truth).
    GROUND_TRUTH = "ground-truth/"


# A pipeline run's data-quality baseline (statistics, constraints, the feature of each column) lies in this folder of
# its run: pipeline-runs/<pipeline>/<execution>/baseline/. Monitoring compares captured requests with it.
BASELINE_DIR = "baseline"
BASELINE_OBJECTS = f"{ArtifactPrefix.PIPELINE_RUNS}*/{BASELINE_DIR}/*"


# What the training pipeline's jobs read and write; serving has a role of its own for the rest.
JOB_DATA_PREFIXES = (DataPrefix.RAW, DataPrefix.PROCESSED)
JOB_ARTIFACT_PREFIXES = (ArtifactPrefix.PIPELINE_RUNS, ArtifactPrefix.MODELS, ArtifactPrefix.CHECKPOINTS)
