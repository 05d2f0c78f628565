"""Tabular CSV data: reading with errors that name file, row and column; class labels."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training_code.features import MISSING_MARKERS, Encoding, EncodingError


class DataError(ValueError):
    """Bad input data; the message names the file and, where known, the row and column."""


@dataclass(frozen=True)
class Table:
    """A CSV file's cells as text (stripped), the label column apart; `columns` is the file's own column order."""

    source: str
    columns: tuple[str, ...]
    label_column: str
    cells: np.ndarray
    labels: np.ndarray

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(name for name in self.columns if name != self.label_column)

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, rows: np.ndarray) -> Table:
        return Table(self.source, self.columns, self.label_column, self.cells[rows], self.labels[rows])

    def codes(self, encoding: Encoding) -> np.ndarray:
        """The feature cells as the encoding's codes; a bad cell is a DataError naming this file, row and column."""
        if self.feature_names != encoding.feature_names:
            missing = [name for name in encoding.feature_names if name not in self.feature_names]
            extra = [name for name in self.feature_names if name not in encoding.feature_names]
            detail = f"missing {missing}, unexpected {extra}" if missing or extra else "same columns, other order"
            raise DataError(f"{self.source}: feature columns differ from the model's: {detail}")
        try:
            return encoding.codes(self.cells)
        except EncodingError as error:
            raise self.error(error) from None

    def error(self, error: EncodingError) -> DataError:
        """An encoding's complaint about this table's cells, naming the file, the row where known, and the column."""
        row = f" row {error.row}" if error.row else ""
        return DataError(f"{self.source}{row} column {error.column!r}: {error}")

    def write(self, path: Path) -> None:
        """As CSV, in the file's own column order (the label where it was)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        position = self.columns.index(self.label_column)
        rows = np.insert(self.cells.astype(object), position, self.labels.astype(object), axis=1)
        with path.open("w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(self.columns)
            writer.writerows(rows.tolist())


def read_csv_lines(path: Path, source: str | None = None) -> list[tuple[int, list[str]]]:
    """(line number, fields) of a CSV file's non-blank lines; errors name `source` (default: the path)."""
    try:
        # utf-8-sig: spreadsheet exports often start with a byte-order mark that would otherwise join the first name.
        with path.open(newline="", encoding="utf-8-sig") as file:
            reader = csv.reader(file)
            return [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    except UnicodeDecodeError as error:
        raise DataError(f"{source or path}: not UTF-8 text (byte {error.start}); save it as UTF-8 CSV") from None
    except csv.Error as error:
        raise DataError(f"{source or path}: malformed CSV ({error})") from None


def read_table(path: Path, label_column: str, source: str | None = None) -> Table:
    """Read one CSV file with a header row. Rows are numbered from 1, the first row after the header; errors name
    `source` (default: the path), where the file is a copy of the user's."""
    source = source or str(path)
    rows = [row for _, row in read_csv_lines(path, source)]
    if not rows:
        raise DataError(f"{source}: empty file; expected a header row and data rows")
    header = tuple(name.strip() for name in rows[0])
    if label_column not in header:
        raise DataError(f"{source}: {missing_label_message(label_column, header)}")
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise DataError(f"{source}: columns {duplicated} appear more than once in the header")
    body = rows[1:]
    if not body:
        raise DataError(f"{source}: no data rows after the header")
    for number, row in enumerate(body, start=1):
        if len(row) != len(header):
            raise DataError(f"{source} row {number}: expected {len(header)} fields, found {len(row)}")
    if len(header) < 2:
        raise DataError(f"{source}: no feature columns besides the label column {label_column!r}")
    label_index = header.index(label_column)
    # Objects, not fixed-width text: one long cell would otherwise widen every cell of the array to its length.
    cells = np.array([[cell.strip() for cell in row] for row in body], dtype=object)
    labels = cells[:, label_index]
    empty = np.flatnonzero([label in MISSING_MARKERS for label in labels])
    if empty.size:
        raise DataError(
            f"{source} row {empty[0] + 1} column {label_column!r}: missing label {labels[empty[0]]!r}; "
            "drop the rows without a label"
        )
    return Table(source, header, label_column, np.delete(cells, label_index, axis=1), labels)


LISTED_COLUMNS = 8


def missing_label_message(label_column: str, header: tuple[str, ...]) -> str:
    shown = ", ".join(header[:LISTED_COLUMNS]) + (
        f" and {len(header) - LISTED_COLUMNS} more" if len(header) > LISTED_COLUMNS else ""
    )
    return (
        f"no label column {label_column!r}; name the column that holds the classes with --label-column NAME "
        f"(pipeline: -p LabelColumn=NAME); the columns are {shown}"
    )


def read_directory(directory: Path, label_column: str, source: str | None = None) -> Table:
    """All CSV files of a directory (a SageMaker channel), in name order, as one table with one header. Errors name
    each file under `source` (default: the directory) by its name."""
    paths = sorted(directory.glob("*.csv"))
    if not paths:
        raise DataError(f"{source or directory}: no .csv files")
    tables = [read_table(path, label_column, f"{source.rstrip('/')}/{path.name}" if source else None) for path in paths]
    for table in tables[1:]:
        if table.columns != tables[0].columns:
            raise DataError(f"{table.source}: columns differ from {tables[0].source}")
    if len(tables) == 1:
        return tables[0]
    return Table(
        source=source or str(directory),
        columns=tables[0].columns,
        label_column=label_column,
        cells=np.concatenate([table.cells for table in tables]),
        labels=np.concatenate([table.labels for table in tables]),
    )


# A numeric column with more distinct values than this is a quantity to predict (regression), not a set of classes.
MAX_NUMERIC_CLASSES = 50


def check_classification_target(table: Table) -> None:
    """Refuse a continuous label column (prices, measurements), which a classifier cannot learn."""
    distinct = np.unique(table.labels)
    if len(distinct) <= MAX_NUMERIC_CLASSES:
        return
    try:
        distinct.astype(np.float64)
    except ValueError:
        return
    raise DataError(
        f"{table.source}: label column {table.label_column!r} holds {len(distinct)} distinct numbers in {len(table)} "
        f"rows, a continuous quantity; this kit trains classifiers (at most {MAX_NUMERIC_CLASSES} numeric classes): "
        "bin it into classes or name another --label-column"
    )


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
