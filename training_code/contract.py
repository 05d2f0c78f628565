"""The SageMaker container contract and the file names every step agrees on; defined here once.

The pipeline builder, the training script, the step scripts, the local runner and the tests import these.
"""

from __future__ import annotations

from pathlib import Path

# Training container (script mode): SageMaker sets these variables; each has a flag that overrides it.
MODEL_DIR_VARIABLE = "SM_MODEL_DIR"
TRAINING_JOB_NAME_VARIABLE = "TRAINING_JOB_NAME"
CHANNEL_VARIABLE = "SM_CHANNEL_{name}"
TRAIN_CHANNEL = "train"
VALIDATION_CHANNEL = "validation"
# The optional channel that carries a previous model artifact for warm start.
WARM_START_CHANNEL = "model"
DEFAULT_MODEL_DIR = Path("/opt/ml/model")
DEFAULT_CHECKPOINT_DIR = Path("/opt/ml/checkpoints")
TRAINING_FAILURE_FILE = Path("/opt/ml/output/failure")

# Processing containers: inputs and outputs are mounted under this directory; the exit message is read from the file.
PROCESSING_ROOT = Path("/opt/ml/processing")
PROCESSING_FAILURE_FILE = Path("/opt/ml/output/message")

# SageMaker truncates failure reasons to 1 KB.
FAILURE_REASON_LIMIT = 1024

DEFAULT_LABEL_COLUMN = "label"
# The preprocessing outputs, in this order; the first two are the training job's channels.
SPLITS = (TRAIN_CHANNEL, VALIDATION_CHANNEL, "test")
SCALING_FILE = "scaling.json"
PREPROCESSING_REPORT_FILE = "preprocessing.json"

# The model artifact: weights, and everything else needed to serve them.
MODEL_WEIGHTS_FILE = "model.pt"
MODEL_METADATA_FILE = "model.json"
MODEL_ARCHIVE = "model.tar.gz"
CHECKPOINT_FILE = "checkpoint.pt"

# Evaluation outputs.
EVALUATION_FILE = "evaluation.json"
CONFUSION_MATRIX_PLOT = "confusion_matrix.png"
TRAINING_CURVES_PLOT = "training_curves.png"


def channel_variable(channel: str) -> str:
    return CHANNEL_VARIABLE.format(name=channel.upper())


# What the serving container accepts and answers (registered with every model package version).
REQUEST_CONTENT_TYPES = ("text/csv", "application/json", "application/jsonlines")
RESPONSE_CONTENT_TYPES = ("text/csv", "application/json")

# evaluation.json sections (SageMaker's model-quality format) and where the pipeline's condition reads accuracy.
MULTICLASS_METRICS = "multiclass_classification_metrics"
BINARY_METRICS = "binary_classification_metrics"
ACCURACY_JSON_PATH = f"{MULTICLASS_METRICS}.accuracy.value"
