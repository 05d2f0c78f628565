"""The Baseline step: the training features as requests carry them, in Model Monitor's formats."""

from __future__ import annotations

import json

from pipelines.steps.baseline import main
from training_code.contract import (
    BASELINE_FEATURES_FILE,
    CONSTRAINTS_FILE,
    MODEL_QUALITY_CONSTRAINTS_FILE,
    MULTICLASS_CONSTRAINTS,
    STATISTICS_FILE,
)
from training_code.data import read_directory


def test_the_training_features_are_baselined_in_the_model_order_as_captured_csv_names_them(invoke, splits, tmp_path):
    output = tmp_path / "baseline"
    result = invoke(
        main,
        train_dir=splits / "train",
        output_dir=output,
        label_column="label",
        drift_threshold=0.25,
        accuracy_threshold=0.8,
    )
    assert result.exit_code == 0, result.output
    train = read_directory(splits / "train", "label")
    columns = [f"_c{position}" for position in range(len(train.feature_names))]
    assert json.loads((output / BASELINE_FEATURES_FILE).read_text()) == dict(
        zip(columns, train.feature_names, strict=True)
    )
    statistics = json.loads((output / STATISTICS_FILE).read_text())
    assert statistics["dataset"]["item_count"] == len(train)
    assert [feature["name"] for feature in statistics["features"]] == columns
    first = statistics["features"][0]["numerical_statistics"]
    assert first["min"] == min(float(cell) for cell in train.cells[:, 0])
    assert first["max"] == max(float(cell) for cell in train.cells[:, 0])
    constraints = json.loads((output / CONSTRAINTS_FILE).read_text())
    assert [feature["name"] for feature in constraints["features"]] == columns
    assert constraints["monitoring_config"]["distribution_constraints"]["comparison_threshold"] == 0.25
    assert "label" not in (output / STATISTICS_FILE).read_text()
    assert json.loads((output / MODEL_QUALITY_CONSTRAINTS_FILE).read_text()) == {
        "version": 0.0,
        MULTICLASS_CONSTRAINTS: {"accuracy": {"threshold": 0.8, "comparison_operator": "LessThanThreshold"}},
    }, "Model Monitor's model-quality constraints: below the registration gate is a violation"


def test_a_split_without_the_label_column_fails_naming_it(failure_reason, splits, tmp_path):
    reason = failure_reason(
        main, train_dir=splits / "train", output_dir=tmp_path / "baseline", label_column="class", accuracy_threshold=0.8
    )
    assert "class" in reason
    assert not (tmp_path / "baseline" / STATISTICS_FILE).exists()


def test_an_accuracy_threshold_outside_0_to_1_fails_naming_it(failure_reason, splits, tmp_path):
    reason = failure_reason(
        main, train_dir=splits / "train", output_dir=tmp_path / "baseline", label_column="label", accuracy_threshold=1.5
    )
    assert "accuracy threshold 1.5 must be in [0, 1]" in reason
