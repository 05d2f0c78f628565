"""Baseline step: the data-quality statistics and constraints of the training features, which the version is
registered with and which monitoring compares served requests with.

The features are baselined as a request carries them: the raw cells of the training split without the label, in the
model's feature order, and named as Model Monitor's analyzer names the columns of captured CSV (`_c0`, `_c1`, ...);
features.json says which feature each column is.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pipelines.steps import data_quality
from training_code.contract import (
    BASELINE_FEATURES_FILE,
    DEFAULT_DRIFT_THRESHOLD,
    DEFAULT_LABEL_COLUMN,
    MODEL_QUALITY_CONSTRAINTS_FILE,
    MULTICLASS_CONSTRAINTS,
    PROCESSING_FAILURE_FILE,
    PROCESSING_ROOT,
)
from training_code.data import read_directory
from training_code.failure import ArgumentParser, run_script


def baseline(
    train_dir: Path, output_dir: Path, label_column: str, drift_threshold: float, accuracy_threshold: float
) -> dict:
    table = read_directory(train_dir, label_column)
    columns = [f"_c{position}" for position in range(len(table.feature_names))]
    statistics = data_quality.write_baseline(table.cells.tolist(), columns, output_dir, drift_threshold)
    data_quality.write_json(output_dir / BASELINE_FEATURES_FILE, dict(zip(columns, table.feature_names, strict=True)))
    data_quality.write_json(output_dir / MODEL_QUALITY_CONSTRAINTS_FILE, model_quality_constraints(accuracy_threshold))
    return statistics


def model_quality_constraints(accuracy_threshold: float) -> dict:
    """What model-quality monitoring of the version holds its accuracy on labelled requests to (Model Monitor's
    format): the accuracy the version had to reach to be registered."""
    if not 0 <= accuracy_threshold <= 1:
        raise ValueError(f"accuracy threshold {accuracy_threshold} must be in [0, 1]")
    accuracy = {"threshold": accuracy_threshold, "comparison_operator": "LessThanThreshold"}
    return {"version": 0.0, MULTICLASS_CONSTRAINTS: {"accuracy": accuracy}}


def main(argv: list[str] | None = None) -> None:
    run_script(_run, argv, PROCESSING_FAILURE_FILE)


def _run(argv: list[str]) -> None:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-dir", type=Path, default=PROCESSING_ROOT / "train", help="the training split")
    parser.add_argument("--output-dir", type=Path, default=PROCESSING_ROOT / "baseline", help="where the files go")
    parser.add_argument("--label-column", default=DEFAULT_LABEL_COLUMN, help="the column that holds the classes")
    parser.add_argument(
        "--drift-threshold", type=float, default=DEFAULT_DRIFT_THRESHOLD, help="the distance that counts as drift"
    )
    parser.add_argument("--accuracy-threshold", type=float, required=True, help="the accuracy the version had to reach")
    parser.add_argument("--failure-file", type=Path, default=PROCESSING_FAILURE_FILE)
    arguments = parser.parse_args(argv)
    statistics = baseline(
        arguments.train_dir,
        arguments.output_dir,
        arguments.label_column,
        arguments.drift_threshold,
        arguments.accuracy_threshold,
    )
    print(f"baselined {len(statistics['features'])} features of {statistics['dataset']['item_count']} rows")


if __name__ == "__main__":
    main()
