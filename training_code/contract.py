"""The SageMaker container contract and the file names every step agrees on; defined here once.

The pipeline builder, the training script, the step scripts, the local runner and the tests import these.
"""

from __future__ import annotations

from pathlib import Path

# Every container path SageMaker defines lies under this directory (a local run lays the same tree out elsewhere).
CONTAINER_ROOT = Path("/opt/ml")

# Training container (script mode): SageMaker sets these variables; each has a flag that overrides it.
MODEL_DIR_VARIABLE = "SM_MODEL_DIR"
TRAINING_JOB_NAME_VARIABLE = "TRAINING_JOB_NAME"
CHANNEL_VARIABLE = "SM_CHANNEL_{name}"
TRAIN_CHANNEL = "train"
VALIDATION_CHANNEL = "validation"
# The optional channel that carries a previous model artifact for warm start.
WARM_START_CHANNEL = "model"
DEFAULT_MODEL_DIR = CONTAINER_ROOT / "model"
DEFAULT_CHECKPOINT_DIR = CONTAINER_ROOT / "checkpoints"
TRAINING_FAILURE_FILE = CONTAINER_ROOT / "output" / "failure"

# Processing containers: inputs and outputs are mounted under this directory; the exit message is read from the file.
PROCESSING_ROOT = CONTAINER_ROOT / "processing"
PROCESSING_FAILURE_FILE = CONTAINER_ROOT / "output" / "message"

# SageMaker truncates failure reasons to 1 KB.
FAILURE_REASON_LIMIT = 1024

DEFAULT_LABEL_COLUMN = "label"
# The distance between a feature's baseline and served distributions (0 to 1) beyond which monitoring reports drift,
# unless the stage's pipeline.drift_threshold says otherwise.
DEFAULT_DRIFT_THRESHOLD = 0.1
# The preprocessing outputs, in this order; the first two are the training job's channels.
SPLITS = (TRAIN_CHANNEL, VALIDATION_CHANNEL, "test")
ENCODING_FILE = "encoding.json"
PREPROCESSING_REPORT_FILE = "preprocessing.json"

# The model artifact: weights, and everything else needed to serve them.
MODEL_WEIGHTS_FILE = "model.pt"
# The same weights as numpy arrays (state-dict keys), so the serving container needs no torch.
SERVING_WEIGHTS_FILE = "weights.npz"
MODEL_METADATA_FILE = "model.json"
MODEL_ARCHIVE = "model.tar.gz"
CHECKPOINT_FILE = "checkpoint.pt"

# Evaluation outputs.
EVALUATION_FILE = "evaluation.json"
CONFUSION_MATRIX_PLOT = "confusion_matrix.png"
TRAINING_CURVES_PLOT = "training_curves.png"

# Data-quality files, in the formats of SageMaker Model Monitor's analyzer (pipelines/steps/data_quality.py): the
# baseline the pipeline registers with each version, and what a monitoring run finds against it.
STATISTICS_FILE = "statistics.json"
CONSTRAINTS_FILE = "constraints.json"
VIOLATIONS_FILE = "constraint_violations.json"
# Which feature each baseline column is: captured CSV has no header, so the analyzer names columns _c0, _c1, ...
BASELINE_FEATURES_FILE = "features.json"
# The model-quality constraints beside them (Model Monitor's format): accuracy on requests with ground truth below
# the stage's accuracy threshold is a violation.
MODEL_QUALITY_CONSTRAINTS_FILE = "model_quality_constraints.json"


def channel_variable(channel: str) -> str:
    return CHANNEL_VARIABLE.format(name=channel.upper())


# What the serving container accepts and answers (registered with every model package version). NumPy's formats are
# what the SageMaker SDK's PyTorch and NumPy serializers send and its NumpyDeserializer reads.
CSV = "text/csv"
JSON = "application/json"
JSON_LINES = "application/jsonlines"
NPY = "application/x-npy"
NPZ = "application/x-npz"
REQUEST_CONTENT_TYPES = (CSV, JSON, JSON_LINES, NPY, NPZ)
RESPONSE_CONTENT_TYPES = (CSV, JSON, JSON_LINES, NPY)
# Batch transform splits its input by line and joins each output line with its input line: text with one record per
# line, in and out.
LINE_CONTENT_TYPES = (CSV, JSON_LINES)
# Content types whose records data capture stores as text (the others are stored base64-encoded).
TEXT_CONTENT_TYPES = (CSV, JSON, JSON_LINES)

# Serving container (SageMaker hosting): `serve` argument, fixed paths, port and worker count from the environment.
SERVE_COMMAND = "serve"
PING_PATH = "/ping"
INVOCATIONS_PATH = "/invocations"
EXECUTION_PARAMETERS_PATH = "/execution-parameters"
DEFAULT_SERVING_PORT = 8080
PORT_VARIABLE = "SAGEMAKER_BIND_TO_PORT"
WORKERS_VARIABLE = "SAGEMAKER_MODEL_SERVER_WORKERS"
# Batch transform tells the container its payload limit; real-time payloads are at most 6 MB.
MAX_PAYLOAD_VARIABLE = "SAGEMAKER_MAX_PAYLOAD_IN_MB"
DEFAULT_MAX_PAYLOAD_MB = 6
# The response type for a request that names none (or */*), where SageMaker's containers read it from.
DEFAULT_ACCEPT_VARIABLE = "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"
# Set to "true" by batch transform (AWS: "Custom Inference Code with Batch Transform").
BATCH_VARIABLE = "SAGEMAKER_BATCH"
# CreateTransformJob's limits: MaxPayloadInMB at most 100, and MaxPayloadInMB x MaxConcurrentTransforms at most 100.
TRANSFORM_PAYLOAD_LIMIT_MB = 100

# evaluation.json sections (SageMaker's model-quality format) and where the pipeline's condition reads accuracy.
MULTICLASS_METRICS = "multiclass_classification_metrics"
MULTICLASS_CONSTRAINTS = "multiclass_classification_constraints"
BINARY_METRICS = "binary_classification_metrics"
ACCURACY_JSON_PATH = f"{MULTICLASS_METRICS}.accuracy.value"
