"""Tabular CSV data: reading with errors that name file, row and column; feature scaling; class labels."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class DataError(ValueError):
    """Bad input data; the message names the file and, where known, the row and column."""


@dataclass(frozen=True)
class Table:
    source: str
    feature_names: tuple[str, ...]
    features: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def read_table(path: Path, label_column: str, dtype: type = np.float32) -> Table:
    """Read one CSV file with a header row. Rows are numbered from 1, the first row after the header."""
    # utf-8-sig: spreadsheet exports often start with a byte-order mark that would otherwise join the first name.
    with path.open(newline="", encoding="utf-8-sig") as file:
        rows = [row for row in csv.reader(file) if any(cell.strip() for cell in row)]
    if not rows:
        raise DataError(f"{path}: empty file; expected a header row and data rows")
    header = [name.strip() for name in rows[0]]
    if label_column not in header:
        raise DataError(f"{path}: label column {label_column!r} not found; columns: {', '.join(header)}")
    body = rows[1:]
    if not body:
        raise DataError(f"{path}: no data rows after the header")
    for number, row in enumerate(body, start=1):
        if len(row) != len(header):
            raise DataError(f"{path} row {number}: expected {len(header)} fields, found {len(row)}")

    label_index = header.index(label_column)
    feature_indices = [index for index in range(len(header)) if index != label_index]
    if not feature_indices:
        raise DataError(f"{path}: no feature columns besides the label column {label_column!r}")
    cells = np.array(body, dtype=object)
    labels = np.array([label.strip() for label in cells[:, label_index]], dtype=str)
    empty = np.flatnonzero(labels == "")
    if empty.size:
        raise DataError(f"{path} row {empty[0] + 1} column {label_column!r}: empty label")
    features = _as_numbers(path, cells[:, feature_indices], [header[i] for i in feature_indices], dtype)
    return Table(str(path), tuple(header[i] for i in feature_indices), features, labels)


def read_directory(directory: Path, label_column: str, dtype: type = np.float32) -> Table:
    """All CSV files of a directory (a SageMaker channel), in name order, as one table with one header."""
    paths = sorted(directory.glob("*.csv"))
    if not paths:
        raise DataError(f"{directory}: no .csv files")
    tables = [read_table(path, label_column, dtype) for path in paths]
    for table in tables[1:]:
        if table.feature_names != tables[0].feature_names:
            raise DataError(f"{table.source}: columns differ from {tables[0].source}")
    if len(tables) == 1:
        return tables[0]
    return Table(
        source=str(directory),
        feature_names=tables[0].feature_names,
        features=np.concatenate([table.features for table in tables]),
        labels=np.concatenate([table.labels for table in tables]),
    )


def _as_numbers(path: Path, cells: np.ndarray, names: list[str], dtype: type) -> np.ndarray:
    try:
        values = cells.astype(dtype)
    except ValueError:
        for (row, column), cell in np.ndenumerate(cells):
            try:
                float(cell)
            except ValueError:
                raise DataError(f"{path} row {row + 1} column {names[column]!r}: {cell!r} is not a number") from None
        raise
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:
        row, column = bad[0]
        raise DataError(f"{path} row {row + 1} column {names[column]!r}: {cells[row, column]!r} is not a finite number")
    return values


def class_labels(labels: np.ndarray) -> tuple[str, ...]:
    """The distinct labels in a stable order: numerically when every label is a number, else alphabetically."""
    distinct = set(labels.tolist())
    try:
        # Ties ("1" and "1.0") are broken by the text, so the order never depends on set iteration order.
        return tuple(sorted(distinct, key=lambda label: (float(label), label)))
    except ValueError:
        return tuple(sorted(distinct))


def encode_labels(table: Table, classes: tuple[str, ...], label_column: str) -> np.ndarray:
    index = {label: position for position, label in enumerate(classes)}
    unknown = [row for row, label in enumerate(table.labels) if label not in index]
    if unknown:
        row = unknown[0]
        raise DataError(
            f"{table.source} row {row + 1} column {label_column!r}: class {str(table.labels[row])!r} does not occur in "
            f"the training data (classes: {', '.join(classes)})"
        )
    return np.array([index[label] for label in table.labels], dtype=np.int64)


@dataclass(frozen=True)
class Scaling:
    """Standardization statistics (mean and scale per feature), fitted on the training split only."""

    feature_names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, table: Table) -> Scaling:
        std = table.features.astype(np.float64).std(axis=0)
        # A constant feature carries no information; a scale of 1 keeps it at zero instead of dividing by zero.
        scale = np.where(std > 0, std, 1.0)
        return cls(table.feature_names, table.features.astype(np.float64).mean(axis=0), scale)

    def apply(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.mean) / self.scale).astype(np.float32)

    def check_columns(self, table: Table) -> None:
        if table.feature_names != self.feature_names:
            missing = [name for name in self.feature_names if name not in table.feature_names]
            extra = [name for name in table.feature_names if name not in self.feature_names]
            detail = f"missing {missing}, unexpected {extra}" if missing or extra else "same columns, other order"
            raise DataError(f"{table.source}: feature columns differ from the scaling statistics: {detail}")

    def to_dict(self) -> dict:
        return {"feature_names": list(self.feature_names), "mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, values: dict) -> Scaling:
        return cls(tuple(values["feature_names"]), np.array(values["mean"]), np.array(values["scale"]))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: Path) -> Scaling:
        return cls.from_dict(json.loads(path.read_text()))
