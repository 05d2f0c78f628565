"""The per-epoch metric line the training script prints, and the regexes SageMaker uses to read it back."""

from __future__ import annotations

import re

TRAIN_LOSS = "train:loss"
VALIDATION_LOSS = "validation:loss"
VALIDATION_ACCURACY = "validation:accuracy"

# Hyperparameter tuning maximizes validation accuracy; early stopping inside a trial watches validation loss.
TUNING_OBJECTIVE_METRIC = VALIDATION_ACCURACY
TUNING_OBJECTIVE_TYPE = "Maximize"

_NUMBER = r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf)"
_FIELDS = {TRAIN_LOSS: "train_loss", VALIDATION_LOSS: "validation_loss", VALIDATION_ACCURACY: "validation_accuracy"}

METRIC_DEFINITIONS: list[dict[str, str]] = [
    {"Name": name, "Regex": rf"\b{field}={_NUMBER}"} for name, field in _FIELDS.items()
]


def epoch_line(epoch: int, train_loss: float, validation_loss: float, validation_accuracy: float) -> str:
    return (
        f"epoch={epoch} train_loss={train_loss:.6f} validation_loss={validation_loss:.6f} "
        f"validation_accuracy={validation_accuracy:.6f}"
    )


def final_line(best_epoch: int, validation_loss: float, validation_accuracy: float) -> str:
    """Printed last: SageMaker tuning reads the final value of the objective, which must be the saved model's."""
    return (
        f"final best_epoch={best_epoch} validation_loss={validation_loss:.6f} "
        f"validation_accuracy={validation_accuracy:.6f}"
    )


def parse_metrics(log: str) -> dict[str, list[float]]:
    """Every value of each metric in a training log, in order, read with the same regexes as SageMaker."""
    return {
        definition["Name"]: [float(value) for value in re.findall(definition["Regex"], log)]
        for definition in METRIC_DEFINITIONS
    }
