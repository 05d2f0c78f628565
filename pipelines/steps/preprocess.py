"""Processing step: deduplicate, split stratified into train/validation/test, and fit the feature encoding on train.

    python -m pipelines.steps.preprocess [--input-dir /opt/ml/processing/input] [--output-dir /opt/ml/processing/output]
        [--label-column label] [--input-uri s3://...]

Exact duplicate rows are dropped before splitting, so no row can sit in two splits. Writes the splits as the user's
columns (<output>/train/train.csv with the fitted encoding beside it, as the training channel carries both;
<output>/validation/validation.csv, <output>/test/test.csv) and <output>/report/preprocessing.json. Text columns
become categories, missing cells are filled (training's median or most frequent value), numbers are standardized:
all of it fitted on the train split alone. Errors name the user's files: under --input-uri where it is given.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from training_code.contract import (
    DEFAULT_LABEL_COLUMN,
    ENCODING_FILE,
    PREPROCESSING_REPORT_FILE,
    PROCESSING_FAILURE_FILE,
    PROCESSING_ROOT,
    SPLITS,
)
from training_code.data import DataError, Table, check_classification_target, read_directory
from training_code.failure import ArgumentParser, run_script
from training_code.features import Encoding, EncodingError, infer_columns


def deduplicate(table: Table) -> tuple[np.ndarray, int]:
    """Indices of the first occurrence of every distinct (features, label) row, in file order; and how many dropped."""
    first: dict[tuple, int] = {}
    for index, row in enumerate(np.column_stack([table.cells, table.labels]).tolist()):
        first.setdefault(tuple(row), index)
    kept = np.array(sorted(first.values()))
    return kept, len(table) - len(kept)


def split(
    labels: np.ndarray, validation_ratio: float, test_ratio: float, seed: int, source: str
) -> dict[str, np.ndarray]:
    """Row positions per split, stratified by label."""
    classes, counts = np.unique(labels, return_counts=True)
    if counts.min() < 3:
        rare = classes[counts < 3].tolist()
        shown = ", ".join(map(repr, rare[:5])) + (f" and {len(rare) - 5} more" if len(rare) > 5 else "")
        raise DataError(
            f"{source}: {len(rare)} of {len(classes)} classes have fewer than 3 distinct rows ({shown}); a "
            "stratified split into train, validation and test needs at least 3 of each"
        )
    positions = np.arange(len(labels))
    # Whole row counts: a fraction of a fraction (validation of the non-test rest) would round up a row at times.
    test_rows, validation_rows = round(test_ratio * len(labels)), round(validation_ratio * len(labels))
    rest, test = train_test_split(positions, test_size=test_rows, stratify=labels, random_state=seed)
    train, validation = train_test_split(rest, test_size=validation_rows, stratify=labels[rest], random_state=seed)
    return dict(zip(SPLITS, (np.sort(train), np.sort(validation), np.sort(test)), strict=True))


def preprocess(
    input_dir: Path,
    output_dir: Path,
    label_column: str,
    validation_ratio: float,
    test_ratio: float,
    seed: int,
    input_uri: str | None = None,
) -> dict:
    if not (0 < validation_ratio < 1 and 0 < test_ratio < 1 and validation_ratio + test_ratio < 1):
        raise ValueError(
            f"validation ratio {validation_ratio} and test ratio {test_ratio} must each be in (0, 1) and sum below 1"
        )
    table = read_directory(input_dir, label_column, source=input_uri)
    check_classification_target(table)
    try:
        kinds, may_miss = infer_columns(table.cells, table.feature_names)
    except EncodingError as error:
        raise table.error(error) from None
    kept, duplicates = deduplicate(table)
    table = table.take(kept)
    positions = split(table.labels, validation_ratio, test_ratio, seed, table.source)
    for name, rows in positions.items():
        table.take(rows).write(output_dir / name / f"{name}.csv")
    train = table.take(positions["train"])
    try:
        encoding = Encoding.fit(train.cells, table.feature_names, label_column, kinds, may_miss)
    except EncodingError as error:
        raise table.error(error) from None
    encoding.save(output_dir / "train" / ENCODING_FILE)
    report = {
        "input_rows": len(kept) + duplicates,
        "duplicates_removed": duplicates,
        "label_column": label_column,
        "rows": {name: len(rows) for name, rows in positions.items()},
        "class_counts": {
            name: dict(zip(*(v.tolist() for v in np.unique(table.labels[rows], return_counts=True)), strict=True))
            for name, rows in positions.items()
        },
        "columns": encoding.summary(),
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
    parser.add_argument("--label-column", default=DEFAULT_LABEL_COLUMN, help="the column that holds the classes")
    parser.add_argument("--input-uri", help="where the input files came from, to name them in errors")
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
        arguments.input_uri,
    )
    print(
        f"read {report['input_rows']} rows, removed {report['duplicates_removed']} exact duplicates, "
        f"split {report['rows']}"
    )


if __name__ == "__main__":
    main()
