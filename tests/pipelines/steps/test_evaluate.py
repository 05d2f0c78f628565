"""Evaluation: SageMaker model-quality JSON that agrees with an independent scoring of the model, and two plots."""

from __future__ import annotations

import csv
import json
import math
import re
from collections import Counter
from functools import reduce
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.image import imread
from sklearn import metrics

from pipelines.sample_data import write_digits_csv
from pipelines.steps import evaluate as evaluate_step
from pipelines.steps.evaluate import evaluate
from pipelines.steps.preprocess import preprocess
from training_code.artifact import ModelArtifact, write_archive
from training_code.contract import (
    ACCURACY_JSON_PATH,
    CONFUSION_MATRIX_PLOT,
    EVALUATION_FILE,
    MODEL_ARCHIVE,
    TRAINING_CURVES_PLOT,
)
from training_code.train import main as train

MULTICLASS = "multiclass_classification_metrics"
BINARY = "binary_classification_metrics"
SCALAR_METRICS = (
    "accuracy",
    "macro_precision",
    "macro_recall",
    "macro_f1",
    "weighted_precision",
    "weighted_recall",
    "weighted_f1",
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def train_model(splits: Path, workdir: Path) -> Path:
    model_dir, failure_file = workdir / "model", workdir / "failure"
    train(
        [
            *("--train", str(splits / "train"), "--validation", str(splits / "validation")),
            *("--model-dir", str(model_dir), "--checkpoint-dir", str(workdir / "checkpoints")),
            *("--failure-file", str(failure_file), "--epochs", "5", "--patience", "5", "--seed", "0"),
        ]
    )
    assert not failure_file.exists()
    return model_dir


def read_test_csv(path: Path) -> tuple[list[str], np.ndarray, list[str]]:
    with path.open(newline="") as file:
        header, *rows = csv.reader(file)
    label = header.index("label")
    features = np.array([[float(cell) for i, cell in enumerate(row) if i != label] for row in rows], dtype=np.float32)
    return header, features, [row[label] for row in rows]


class Scored:
    """The test split scored here, straight from the artifact, without the evaluation step's code."""

    def __init__(self, model: Path, test_csv: Path) -> None:
        self.artifact = ModelArtifact.load(model)
        _, features, self.truth = read_test_csv(test_csv)
        self.classes = list(self.artifact.classes)
        self.probabilities = self.artifact.predict_proba(features)
        self.predicted = [self.classes[index] for index in self.probabilities.argmax(axis=1)]


def load_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


# --- Ten classes ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(splits, tmp_path_factory) -> Path:
    return train_model(splits, tmp_path_factory.mktemp("ten_classes"))


@pytest.fixture(scope="module")
def scored(model_dir, splits) -> Scored:
    return Scored(model_dir, splits / "test" / "test.csv")


@pytest.fixture(scope="module")
def evaluation_dir(model_dir, splits, invoke, tmp_path_factory) -> Path:
    """The step run from its command line, as the pipeline runs it."""
    output, failure_file = tmp_path_factory.mktemp("evaluation"), tmp_path_factory.mktemp("failure") / "message"
    result = invoke(
        evaluate_step.main,
        model_dir=model_dir,
        test_dir=splits / "test",
        output_dir=output,
        failure_file=failure_file,
    )
    assert result.exit_code == 0, result.output
    assert not failure_file.exists()
    return output


@pytest.fixture(scope="module")
def report(evaluation_dir) -> dict[str, Any]:
    return load_json(evaluation_dir / EVALUATION_FILE)


def test_scalar_metrics_carry_a_value_and_a_standard_deviation(report):
    multiclass = report[MULTICLASS]

    for name in SCALAR_METRICS:
        metric = multiclass[name]
        assert set(metric) == {"value", "standard_deviation"}, name
        assert isinstance(metric["value"], float) and 0 <= metric["value"] <= 1, name
        deviation = metric["standard_deviation"]
        assert isinstance(deviation, float) and math.isfinite(deviation) and deviation >= 0, name
    accuracy = multiclass["accuracy"]
    if 0 < accuracy["value"] < 1:
        assert accuracy["standard_deviation"] > 0


def test_accuracy_equals_an_independent_scoring_of_the_model(report, scored):
    accuracy = metrics.accuracy_score(scored.truth, scored.predicted)

    assert report[MULTICLASS]["accuracy"]["value"] == pytest.approx(accuracy)
    # The pipeline's condition step reads the accuracy at this JSON path.
    assert reduce(lambda node, key: node[key], ACCURACY_JSON_PATH.split("."), report) == pytest.approx(accuracy)
    assert report["test_rows"] == len(scored.truth)
    assert report["best_epoch"] == scored.artifact.best_epoch


def test_averaged_metrics_equal_sklearns(report, scored):
    for average in ("macro", "weighted"):
        precision, recall, f1, _ = metrics.precision_recall_fscore_support(
            scored.truth, scored.predicted, average=average, zero_division=0
        )
        assert report[MULTICLASS][f"{average}_precision"]["value"] == pytest.approx(precision)
        assert report[MULTICLASS][f"{average}_recall"]["value"] == pytest.approx(recall)
        assert report[MULTICLASS][f"{average}_f1"]["value"] == pytest.approx(f1)


def test_confusion_matrix_maps_actual_to_predicted_counts(report, scored):
    matrix = report[MULTICLASS]["confusion_matrix"]
    expected = metrics.confusion_matrix(scored.truth, scored.predicted, labels=scored.classes)

    assert list(matrix) == scored.classes
    assert all(list(row) == scored.classes for row in matrix.values())
    assert [[matrix[actual][guess] for guess in scored.classes] for actual in scored.classes] == expected.tolist()
    total = sum(sum(row.values()) for row in matrix.values())
    assert total == len(scored.truth)
    correct = sum(matrix[label][label] for label in scored.classes)
    assert correct / total == pytest.approx(report[MULTICLASS]["accuracy"]["value"])


def test_per_class_metrics_and_support(report, scored):
    per_class = report[MULTICLASS]["per_class"]
    precision, recall, f1, _ = metrics.precision_recall_fscore_support(
        scored.truth, scored.predicted, labels=scored.classes, zero_division=0
    )
    support = Counter(scored.truth)

    assert list(per_class) == scored.classes
    for index, label in enumerate(scored.classes):
        assert per_class[label]["support"] == support[label]
        assert per_class[label]["precision"] == pytest.approx(precision[index])
        assert per_class[label]["recall"] == pytest.approx(recall[index])
        assert per_class[label]["f1"] == pytest.approx(f1[index])


def test_ten_classes_get_no_binary_metrics(report, scored):
    assert len(scored.classes) == 10
    assert BINARY not in report


@pytest.mark.parametrize("plot", [CONFUSION_MATRIX_PLOT, TRAINING_CURVES_PLOT])
def test_plots_are_non_trivial_png_images(evaluation_dir, plot):
    path = evaluation_dir / plot
    content = path.read_bytes()

    assert content[:8] == PNG_SIGNATURE
    # An empty canvas of these sizes compresses to a few KB; text, axes and data take far more.
    assert len(content) > 10_000
    image = imread(path)[..., :3]
    assert image.shape[0] > 100 and image.shape[1] > 100
    # Something is drawn: a fair share of the pixels is not the white background.
    assert (image < 0.99).any(axis=-1).mean() > 0.02


def point_estimates(report: dict[str, Any]) -> dict[str, Any]:
    """The report without its bootstrap standard deviations."""
    multiclass = report[MULTICLASS]
    return {
        **report,
        MULTICLASS: {name: value["value"] if name in SCALAR_METRICS else value for name, value in multiclass.items()},
    }


@pytest.mark.parametrize("location", ["directory holding model.tar.gz", "the archive itself"])
def test_model_can_be_given_as_an_archive(model_dir, splits, report, tmp_path, monkeypatch, location):
    # The same model must give the same scores; the bootstrap adds nothing to that and is slow, so keep it short.
    monkeypatch.setattr(evaluate_step, "BOOTSTRAP_SAMPLES", 3)
    if location == "the archive itself":
        model = write_archive(model_dir, tmp_path / "packed.tar.gz")
    else:
        (tmp_path / "holder").mkdir()
        write_archive(model_dir, tmp_path / "holder" / MODEL_ARCHIVE)
        model = tmp_path / "holder"

    evaluate(model, splits / "test", tmp_path / "evaluation")

    assert point_estimates(load_json(tmp_path / "evaluation" / EVALUATION_FILE)) == point_estimates(report)
    assert (tmp_path / "evaluation" / CONFUSION_MATRIX_PLOT).is_file()
    assert (tmp_path / "evaluation" / TRAINING_CURVES_PLOT).is_file()


# --- Two classes ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def binary_splits(tmp_path_factory) -> Path:
    """Only the digits 1 and 8: alike enough that a briefly trained model makes mistakes (0 and 1 score perfectly,
    which would hide a metric computed for the wrong class)."""
    directory = tmp_path_factory.mktemp("binary")
    header, *lines = write_digits_csv(directory / "all.csv", duplicates=0, rows=600).read_text().splitlines()
    raw = directory / "raw" / "binary.csv"
    raw.parent.mkdir()
    raw.write_text("\n".join([header, *(line for line in lines if line.rsplit(",", 1)[1] in {"1", "8"})]) + "\n")
    preprocess(raw.parent, directory / "splits", "label", validation_ratio=0.15, test_ratio=0.15, seed=0)
    return directory / "splits"


@pytest.fixture(scope="module")
def binary_model(binary_splits, tmp_path_factory) -> Path:
    return train_model(binary_splits, tmp_path_factory.mktemp("two_classes"))


@pytest.fixture(scope="module")
def binary_evaluation_dir(binary_model, binary_splits, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("binary_evaluation")
    evaluate(binary_model, binary_splits / "test", output)
    return output


@pytest.fixture(scope="module")
def binary_report(binary_evaluation_dir) -> dict[str, Any]:
    return load_json(binary_evaluation_dir / EVALUATION_FILE)


def test_two_classes_also_get_binary_metrics(binary_report, binary_model, binary_splits):
    scored = Scored(binary_model, binary_splits / "test" / "test.csv")
    assert scored.classes == ["1", "8"]
    positive = scored.classes[1]
    binary = binary_report[BINARY]
    precision, recall, f1, _ = metrics.precision_recall_fscore_support(
        scored.truth, scored.predicted, pos_label=positive, average="binary", zero_division=0
    )
    expected = {
        "accuracy": metrics.accuracy_score(scored.truth, scored.predicted),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "auc": metrics.roc_auc_score([label == positive for label in scored.truth], scored.probabilities[:, 1]),
    }

    for name, value in expected.items():
        assert "standard_deviation" in binary[name], name
        assert 0 <= binary[name]["value"] <= 1, name
        assert binary[name]["value"] == pytest.approx(value), name
    assert binary["accuracy"] == binary_report[MULTICLASS]["accuracy"]
    assert binary["confusion_matrix"] == binary_report[MULTICLASS]["confusion_matrix"]


def test_binary_metrics_include_the_roc_curve(binary_report):
    curve = binary_report[BINARY]["receiver_operating_characteristic_curve"]
    false_positives, true_positives = curve["false_positive_rates"], curve["true_positive_rates"]

    assert len(false_positives) == len(true_positives) >= 2
    for rates in (false_positives, true_positives):
        assert rates[0] == 0 and rates[-1] == 1
        assert all(0 <= rate <= 1 for rate in rates)
        assert np.all(np.diff(rates) >= 0)
    area = float(np.trapezoid(true_positives, false_positives))
    assert area == pytest.approx(binary_report[BINARY]["auc"]["value"])


@pytest.mark.parametrize("classes", ["ten", "two"])
def test_evaluation_json_is_strict_json(request, classes):
    """Python's json writes NaN and Infinity as bare words, which are not JSON; SageMaker writes "NaN" as a string."""
    directory = request.getfixturevalue("evaluation_dir" if classes == "ten" else "binary_evaluation_dir")

    def reject(constant: str) -> None:
        raise ValueError(f"{constant} is not valid JSON")

    json.loads((directory / EVALUATION_FILE).read_text(), parse_constant=reject)


# --- Failure contract -----------------------------------------------------------------------------------------------


def write_test_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as file:
        csv.writer(file).writerows([header, *rows])
    return path


def test_a_class_the_model_never_saw_fails_naming_file_row_and_column(model_dir, splits, failure_reason, tmp_path):
    with (splits / "test" / "test.csv").open(newline="") as file:
        header, *rows = csv.reader(file)
    rows[3][header.index("label")] = "42"
    path = write_test_csv(tmp_path / "test" / "test.csv", header, rows)

    reason = failure_reason(evaluate_step.main, model_dir=model_dir, test_dir=path.parent, output_dir=tmp_path / "out")

    assert str(path) in reason
    assert re.search(r"\brow 4\b", reason), reason
    assert "'label'" in reason
    assert "'42'" in reason
    assert not (tmp_path / "out" / EVALUATION_FILE).exists()


@pytest.mark.parametrize(
    ("change", "missing", "unexpected"),
    [("rename", ["pixel_63"], ["brightness"]), ("drop", ["pixel_10"], []), ("add", [], ["extra"])],
)
def test_other_feature_columns_fail_naming_them(
    model_dir, splits, failure_reason, tmp_path, change, missing, unexpected
):
    with (splits / "test" / "test.csv").open(newline="") as file:
        header, *rows = csv.reader(file)
    if change == "rename":
        header[header.index("pixel_63")] = "brightness"
    elif change == "drop":
        keep = [index for index, name in enumerate(header) if name != "pixel_10"]
        header, rows = [header[i] for i in keep], [[row[i] for i in keep] for row in rows]
    else:
        header, rows = ["extra", *header], [["0", *row] for row in rows]
    path = write_test_csv(tmp_path / "test" / "test.csv", header, rows)

    reason = failure_reason(evaluate_step.main, model_dir=model_dir, test_dir=path.parent, output_dir=tmp_path / "out")

    assert str(path) in reason
    for column in (*missing, *unexpected):
        assert repr(column) in reason
    assert not (tmp_path / "out" / EVALUATION_FILE).exists()
