"""Processing step: deduplicate, split stratified into train/validation/test, and fit scaling on train only.

    python -m pipelines.steps.preprocess [--input-dir /opt/ml/processing/input] [--output-dir /opt/ml/processing/output]

Exact duplicate rows are dropped before splitting, so no row can sit in two splits. Writes <output>/train/train.csv
with the scaling statistics beside it (the training channel carries both), <output>/validation/validation.csv,
<output>/test/test.csv and <output>/report/preprocessing.json.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from training_code.contract import (
    DEFAULT_LABEL_COLUMN,
    PREPROCESSING_REPORT_FILE,
    PROCESSING_FAILURE_FILE,
    PROCESSING_ROOT,
    SCALING_FILE,
    SPLITS,
)
from training_code.data import DataError, Scaling, Table, read_directory
from training_code.failure import ArgumentParser, run_script


def deduplicate(table: Table) -> tuple[np.ndarray, int]:
    """Indices of the first occurrence of every distinct (features, label) row, in file order; and how many dropped."""
    keys = [row.tobytes() + label.encode() for row, label in zip(table.features, table.labels, strict=True)]
    first: dict[bytes, int] = {}
    for index, key in enumerate(keys):
        first.setdefault(key, index)
    kept = np.array(sorted(first.values()))
    return kept, len(keys) - len(kept)


def split(
    labels: np.ndarray, validation_ratio: float, test_ratio: float, seed: int, source: str
) -> dict[str, np.ndarray]:
    """Row positions per split, stratified by label."""
    classes, counts = np.unique(labels, return_counts=True)
    if counts.min() < 3:
        rare = classes[counts < 3]
        raise DataError(
            f"{source}: classes {rare.tolist()} have fewer than 3 distinct rows; a stratified split "
            "into train, validation and test needs at least 3 of each"
        )
    positions = np.arange(len(labels))
    # Whole row counts: a fraction of a fraction (validation of the non-test rest) would round up a row at times.
    test_rows, validation_rows = round(test_ratio * len(labels)), round(validation_ratio * len(labels))
    rest, test = train_test_split(positions, test_size=test_rows, stratify=labels, random_state=seed)
    train, validation = train_test_split(rest, test_size=validation_rows, stratify=labels[rest], random_state=seed)
    return dict(zip(SPLITS, (np.sort(train), np.sort(validation), np.sort(test)), strict=True))


def write_rows(path: Path, header: list[str], rows: np.ndarray, labels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows([*map(_number, features), label] for features, label in zip(rows, labels, strict=True))


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def preprocess(
    input_dir: Path, output_dir: Path, label_column: str, validation_ratio: float, test_ratio: float, seed: int
) -> dict:
    if not (0 < validation_ratio < 1 and 0 < test_ratio < 1 and validation_ratio + test_ratio < 1):
        raise ValueError(
            f"validation ratio {validation_ratio} and test ratio {test_ratio} must each be in (0, 1) and sum below 1"
        )
    table = read_directory(input_dir, label_column, dtype=np.float64)
    kept, duplicates = deduplicate(table)
    features, labels = table.features[kept], table.labels[kept]
    positions = split(labels, validation_ratio, test_ratio, seed, table.source)
    header = [*table.feature_names, label_column]
    for name, rows in positions.items():
        write_rows(output_dir / name / f"{name}.csv", header, features[rows], labels[rows])
    train = Table(table.source, table.feature_names, features[positions["train"]], labels[positions["train"]])
    Scaling.fit(train).save(output_dir / "train" / SCALING_FILE)
    report = {
        "input_rows": len(table),
        "duplicates_removed": duplicates,
        "rows": {name: len(rows) for name, rows in positions.items()},
        "class_counts": {
            name: dict(zip(*(v.tolist() for v in np.unique(labels[rows], return_counts=True)), strict=True))
            for name, rows in positions.items()
        },
        "seed": seed,
    }
    (output_dir / "report").mkdir(parents=True, exist_ok=True)
    (output_dir / "report" / PREPROCESSING_REPORT_FILE).write_text(json.dumps(report, indent=1))
    return report


def main(argv: list[str] | None = None) -> None:
    run_script(_run, argv, PROCESSING_FAILURE_FILE)


def _run(argv: list[str]) -> None:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input-dir", type=Path, default=PROCESSING_ROOT / "input", help="raw CSV files")
    parser.add_argument("--output-dir", type=Path, default=PROCESSING_ROOT / "output", help="where the splits go")
    parser.add_argument("--label-column", default=DEFAULT_LABEL_COLUMN)
    parser.add_argument("--validation-ratio", type=float, default=0.15)
    parser.add_argument("--test-ratio", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--failure-file", type=Path, default=PROCESSING_FAILURE_FILE)
    arguments = parser.parse_args(argv)
    report = preprocess(
        arguments.input_dir,
        arguments.output_dir,
        arguments.label_column,
        arguments.validation_ratio,
        arguments.test_ratio,
        arguments.seed,
    )
    print(
        f"read {report['input_rows']} rows, removed {report['duplicates_removed']} exact duplicates, "
        f"split {report['rows']}"
    )


if __name__ == "__main__":
    main()
