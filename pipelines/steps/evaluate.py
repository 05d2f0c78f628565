"""Evaluation step: score the trained model on the test split and write evaluation.json plus two pictures.

It scores with the serving container's forward pass (numpy), so the metrics are those of what an endpoint serves, and
the step loads no torch.

    python -m pipelines.steps.evaluate [--model-dir /opt/ml/processing/model] [--test-dir /opt/ml/processing/test]
                                       [--output-dir /opt/ml/processing/evaluation]

evaluation.json follows SageMaker's model-quality format: `multiclass_classification_metrics` always (the
pipeline's condition reads its accuracy), `binary_classification_metrics` too when there are two classes. Every
scalar carries a bootstrap standard deviation. Beside it: the confusion matrix and the training curves as PNG.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sklearn import metrics

from training_code.contract import (
    BINARY_METRICS,
    CONFUSION_MATRIX_PLOT,
    EVALUATION_FILE,
    MODEL_METADATA_FILE,
    MULTICLASS_METRICS,
    PROCESSING_FAILURE_FILE,
    PROCESSING_ROOT,
    TRAINING_CURVES_PLOT,
)
from training_code.data import encode_labels, read_directory
from training_code.failure import ArgumentParser, run_script
from training_code.serving.predictor import Predictor, model_directory

BOOTSTRAP_SAMPLES = 100


@dataclass(frozen=True)
class TrainedModel:
    """What evaluation reads of a model artifact: its served forward pass, and the training record the report and the
    curves show."""

    predictor: Predictor
    history: list[dict[str, float]]
    best_epoch: int

    @classmethod
    def load(cls, location: Path) -> TrainedModel:
        with model_directory(location) as directory:
            predictor = Predictor.load(directory)
            metadata = json.loads((directory / MODEL_METADATA_FILE).read_text())
        return cls(predictor, metadata["history"], metadata["best_epoch"])


def _multiclass_scalars(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    def averaged(average: str) -> dict[str, float]:
        precision, recall, f1, _ = metrics.precision_recall_fscore_support(
            truth, predicted, average=average, zero_division=0
        )
        return {f"{average}_precision": precision, f"{average}_recall": recall, f"{average}_f1": f1}

    return {"accuracy": metrics.accuracy_score(truth, predicted), **averaged("macro"), **averaged("weighted")}


def _binary_scalars(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    precision, recall, f1, _ = metrics.precision_recall_fscore_support(
        truth, predicted, average="binary", zero_division=0
    )
    return {"precision": precision, "recall": recall, "f1": f1}


def _with_deviation(
    scalars: Callable[[np.ndarray, np.ndarray], dict[str, float]], truth: np.ndarray, predicted: np.ndarray
) -> dict[str, dict[str, float]]:
    """Each metric with the standard deviation of its bootstrap distribution (fixed seed: reproducible)."""
    point = scalars(truth, predicted)
    random = np.random.default_rng(0)
    samples = [
        scalars(truth[rows], predicted[rows])
        for rows in (random.integers(0, len(truth), len(truth)) for _ in range(BOOTSTRAP_SAMPLES))
    ]
    return {
        name: {"value": float(value), "standard_deviation": float(np.std([sample[name] for sample in samples]))}
        for name, value in point.items()
    }


def evaluation_report(
    classes: Sequence[str], best_epoch: int, truth: np.ndarray, probabilities: np.ndarray
) -> dict[str, Any]:
    predicted = probabilities.argmax(axis=1)
    labels = list(range(len(classes)))
    matrix = metrics.confusion_matrix(truth, predicted, labels=labels)
    per_class = metrics.precision_recall_fscore_support(truth, predicted, labels=labels, zero_division=0)
    report: dict[str, Any] = {
        MULTICLASS_METRICS: {
            **_with_deviation(_multiclass_scalars, truth, predicted),
            "confusion_matrix": {
                actual: {guess: int(matrix[i, j]) for j, guess in enumerate(classes)}
                for i, actual in enumerate(classes)
            },
            "per_class": {
                label: {
                    "precision": float(per_class[0][i]),
                    "recall": float(per_class[1][i]),
                    "f1": float(per_class[2][i]),
                    "support": int(per_class[3][i]),
                }
                for i, label in enumerate(classes)
            },
        },
        "test_rows": len(truth),
        "best_epoch": best_epoch,
    }
    if len(classes) == 2:
        positive = probabilities[:, 1]
        false_positive_rates, true_positive_rates, _ = metrics.roc_curve(truth, positive)
        report[BINARY_METRICS] = {
            "accuracy": report[MULTICLASS_METRICS]["accuracy"],
            **_with_deviation(_binary_scalars, truth, predicted),
            # A resample may hold one class only, where AUC is undefined; SageMaker writes "NaN" for no deviation.
            "auc": {"value": float(metrics.roc_auc_score(truth, positive)), "standard_deviation": "NaN"},
            "confusion_matrix": report[MULTICLASS_METRICS]["confusion_matrix"],
            "receiver_operating_characteristic_curve": {
                "false_positive_rates": false_positive_rates.tolist(),
                "true_positive_rates": true_positive_rates.tolist(),
            },
        }
    return report


def plot_confusion_matrix(report: dict[str, Any], path: Path) -> None:
    matrix_by_label = report[MULTICLASS_METRICS]["confusion_matrix"]
    classes = list(matrix_by_label)
    matrix = np.array([[matrix_by_label[actual][guess] for guess in classes] for actual in classes])
    figure = Figure(figsize=(1.0 + 0.6 * len(classes), 0.6 + 0.6 * len(classes)), dpi=100)
    axes = figure.subplots()
    axes.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        axes.text(j, i, str(count), ha="center", va="center", color="white" if count > matrix.max() / 2 else "black")
    axes.set(xticks=range(len(classes)), yticks=range(len(classes)), xticklabels=classes, yticklabels=classes)
    accuracy = report[MULTICLASS_METRICS]["accuracy"]["value"]
    axes.set(xlabel="predicted", ylabel="actual", title=f"Confusion matrix (test accuracy {accuracy:.3f})")
    figure.tight_layout()
    figure.savefig(path)


def plot_training_curves(model: TrainedModel, path: Path) -> None:
    epochs = [entry["epoch"] for entry in model.history]
    figure = Figure(figsize=(10, 4), dpi=100)
    losses, accuracy = figure.subplots(1, 2)
    losses.plot(epochs, [e["train_loss"] for e in model.history], label="train")
    losses.plot(epochs, [e["validation_loss"] for e in model.history], label="validation")
    accuracy.plot(epochs, [e["validation_accuracy"] for e in model.history], label="validation", color="tab:orange")
    for axes, title in ((losses, "cross-entropy loss"), (accuracy, "accuracy")):
        axes.axvline(model.best_epoch, color="grey", linestyle="--", label=f"best epoch ({model.best_epoch})")
        axes.set(xlabel="epoch", title=title)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.legend()
    figure.tight_layout()
    figure.savefig(path)


def evaluate(model_dir: Path, test_dir: Path, output_dir: Path) -> dict[str, Any]:
    model = TrainedModel.load(model_dir)
    encoding, classes = model.predictor.encoding, model.predictor.classes
    test = read_directory(test_dir, encoding.label_column)
    truth = encode_labels(test, classes, encoding.label_column)
    report = evaluation_report(classes, model.best_epoch, truth, model.predictor.predict_proba(test.codes(encoding)))
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / EVALUATION_FILE).write_text(json.dumps(report, indent=1, allow_nan=False))
    plot_confusion_matrix(report, output_dir / CONFUSION_MATRIX_PLOT)
    plot_training_curves(model, output_dir / TRAINING_CURVES_PLOT)
    return report


def main(argv: list[str] | None = None) -> None:
    run_script(_run, argv, PROCESSING_FAILURE_FILE)


def _run(argv: list[str]) -> None:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=PROCESSING_ROOT / "model", help="model.tar.gz or its dir")
    parser.add_argument("--test-dir", type=Path, default=PROCESSING_ROOT / "test", help="the test split")
    parser.add_argument("--output-dir", type=Path, default=PROCESSING_ROOT / "evaluation")
    parser.add_argument("--failure-file", type=Path, default=PROCESSING_FAILURE_FILE)
    arguments = parser.parse_args(argv)
    report = evaluate(arguments.model_dir, arguments.test_dir, arguments.output_dir)
    accuracy = report[MULTICLASS_METRICS]["accuracy"]
    print(f"test accuracy {accuracy['value']:.4f} (bootstrap sd {accuracy['standard_deviation']:.4f})")


if __name__ == "__main__":
    main()
