"""Feature columns as training saw them: numbers standardized, text columns one-hot encoded, missing cells imputed.

Fitted on the training split only (Preprocess), carried in the model artifact, and applied the same way by training,
evaluation and the serving container. Each cell becomes a *code* first (the number itself, a category's position,
NaN for a missing cell, -1 for a category training never saw), so that CSV cells, JSON values and NumPy arrays meet
in one matrix, which `transform` turns into the network's input.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

# What marks a missing cell in a CSV file or a request (besides JSON's null), as spreadsheets and R export them.
MISSING_MARKERS = frozenset({"", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "?"})
NUMERIC, CATEGORICAL = "numeric", "categorical"
UNKNOWN_CATEGORY = -1.0
# A standardized value beyond this many deviations is clipped: it would only saturate the network, and beyond
# float32's range it would become infinite.
MAX_DEVIATIONS = 1e6
MIN_RELATIVE_SCALE = 1e-12
# A text column with more distinct values than this (identifiers, free text) keeps its most frequent ones; the rest
# are encoded like a category training never saw, which one-hot encoding cannot grow without bound for.
MAX_CATEGORIES = 100
ENCODING_FORMAT_VERSION = 1


class EncodingError(ValueError):
    """A cell the encoding cannot take; `row` (from 1) and `column` (the column's name) say where."""

    def __init__(self, message: str, row: int, column: str) -> None:
        super().__init__(message)
        self.row, self.column = row, column


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    # What a missing cell becomes (a numeric column's training median, a text column's most frequent category's
    # position); None where training had no missing cell in this column, so that one in a request is refused.
    fill: float | None = None
    mean: float = 0.0
    scale: float = 1.0
    categories: tuple[str, ...] = ()

    @property
    def width(self) -> int:
        return len(self.categories) if self.kind == CATEGORICAL else 1

    @cached_property
    def positions(self) -> dict[str, int]:
        return {category: position for position, category in enumerate(self.categories)}

    def code(self, value: object) -> float:
        """One cell (CSV text, or a JSON value) as its code; EncodingError names what is wrong (row 0: unknown)."""
        missing = value is None or (isinstance(value, str) and value.strip() in MISSING_MARKERS)
        if missing:
            if self.fill is None:
                shown = "null" if value is None else (repr(value.strip()) if value.strip() else "empty")
                raise EncodingError(
                    f"missing value ({shown}); training had no missing values in this column, so there is nothing "
                    "to fill in",
                    0,
                    self.name,
                )
            return math.nan
        if self.kind == CATEGORICAL:
            if isinstance(value, bool) or not isinstance(value, (str, int, float)) or value != value:  # noqa: PLR0124
                raise EncodingError(f"{json.dumps(value)[:40]} is not a category (a text value)", 0, self.name)
            text = value.strip() if isinstance(value, str) else _number_text(value)
            return float(self.positions.get(text, UNKNOWN_CATEGORY))
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                raise EncodingError(f"{value.strip()[:40]!r} is not a number", 0, self.name) from None
        elif type(value) in (int, float):
            number = float(value) if abs(value) < 1e308 or isinstance(value, float) else math.inf
        else:
            raise EncodingError(f"{json.dumps(value)[:40]} is not a number", 0, self.name)
        if not math.isfinite(number):
            raise EncodingError(f"{str(value).strip()[:40]} is not a finite number", 0, self.name)
        return number

    def to_dict(self) -> dict:
        values = {"name": self.name, "kind": self.kind, "fill": self.fill}
        if self.kind == CATEGORICAL:
            values["categories"] = list(self.categories)
        else:
            values.update(mean=self.mean, scale=self.scale)
        return values

    @classmethod
    def from_dict(cls, values: dict) -> Column:
        return cls(
            name=values["name"],
            kind=values["kind"],
            fill=values["fill"],
            mean=values.get("mean", 0.0),
            scale=values.get("scale", 1.0),
            categories=tuple(values.get("categories", ())),
        )


def _number_text(value: int | float) -> str:
    """A JSON number as CSV would spell the category: 3 and 3.0 are both "3"."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


@dataclass(frozen=True)
class Encoding:
    columns: tuple[Column, ...]
    label_column: str

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @property
    def width(self) -> int:
        return sum(column.width for column in self.columns)

    @cached_property
    def categorical(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns if column.kind == CATEGORICAL)

    @cached_property
    def fills(self) -> np.ndarray:
        """Per column, what a missing cell becomes; NaN where none may be missing."""
        return np.array([np.nan if column.fill is None else column.fill for column in self.columns])

    @cached_property
    def _numeric(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positions of the numeric columns, their means and scales."""
        positions = [index for index, column in enumerate(self.columns) if column.kind == NUMERIC]
        return (
            np.array(positions, dtype=np.int64),
            np.array([self.columns[index].mean for index in positions]),
            np.array([self.columns[index].scale for index in positions]),
        )

    def codes(self, cells: np.ndarray) -> np.ndarray:
        """Text cells (rows x columns) as codes; EncodingError names the first bad cell's row (from 1) and column."""
        codes = np.empty(cells.shape, dtype=np.float64)
        for index, column in enumerate(self.columns):
            values = cells[:, index]
            if column.kind == NUMERIC:
                try:
                    codes[:, index] = values.astype(np.float64)
                    if np.isfinite(codes[:, index]).all():
                        continue
                except ValueError:
                    pass
            for row, value in enumerate(values):
                try:
                    codes[row, index] = column.code(value)
                except EncodingError as error:
                    raise EncodingError(str(error), row + 1, column.name) from None
        return codes

    def transform(self, codes: np.ndarray) -> np.ndarray:
        """Codes (rows x columns, float) as the network's input (float32 rows x `width`)."""
        missing = np.isnan(codes)
        if missing.any():
            codes = np.where(missing, self.fills, codes)
        if not self.categorical:
            _, mean, scale = self._numeric
            return _standardized(codes, mean, scale)
        inputs = np.zeros((len(codes), self.width), dtype=np.float32)
        offset = 0
        for index, column in enumerate(self.columns):
            if column.kind == NUMERIC:
                inputs[:, offset] = _standardized(codes[:, index], column.mean, column.scale)
            else:
                known = np.flatnonzero(codes[:, index] >= 0)
                inputs[known, offset + codes[known, index].astype(np.int64)] = 1.0
            offset += column.width
        return inputs

    @classmethod
    def fit(
        cls, cells: np.ndarray, names: tuple[str, ...], label_column: str, kinds: dict[str, str], may_miss: frozenset
    ) -> Encoding:
        """Statistics from the training split's cells; the columns' kinds and which may miss come from
        `infer_columns` over all the data (what a column is, not what its values are)."""
        columns = []
        for index, name in enumerate(names):
            values = [str(value).strip() for value in cells[:, index]]
            present = [value for value in values if value not in MISSING_MARKERS]
            if not present:
                raise EncodingError("no values in the training split; drop the column", 0, name)
            fills = name in may_miss
            if kinds[name] == NUMERIC:
                numbers = np.array(present, dtype=np.float64)
                median = float(np.median(numbers))
                filled = np.concatenate([numbers, np.full(len(values) - len(present), median)])
                # Divided by the largest magnitude first: sums of numbers near 1e308 would overflow.
                magnitude = float(np.abs(filled).max()) or 1.0
                mean = float((filled / magnitude).mean()) * magnitude
                deviation = float((filled / magnitude).std()) * magnitude
                # A constant feature (or one whose spread is rounding noise) carries no information; a scale of 1
                # keeps it near zero instead of blowing tiny differences up.
                scale = deviation if deviation > MIN_RELATIVE_SCALE * magnitude else 1.0
                columns.append(Column(name, NUMERIC, median if fills else None, mean, scale))
                continue
            counts = Counter(present)
            kept = sorted(counts, key=lambda category: (-counts[category], category))[:MAX_CATEGORIES]
            categories = tuple(sorted(kept))
            fill = float(categories.index(kept[0])) if fills else None
            columns.append(Column(name, CATEGORICAL, fill, categories=categories))
        return cls(tuple(columns), label_column)

    def summary(self) -> dict:
        """Per column, what training does with it (for the preprocessing report and the README's examples)."""
        return {
            column.name: {
                "kind": column.kind,
                "missing_filled_with": None
                if column.fill is None
                else (column.categories[int(column.fill)] if column.kind == CATEGORICAL else column.fill),
                **({"categories": len(column.categories)} if column.kind == CATEGORICAL else {}),
            }
            for column in self.columns
        }

    def to_dict(self) -> dict:
        return {
            "format_version": ENCODING_FORMAT_VERSION,
            "label_column": self.label_column,
            "columns": [column.to_dict() for column in self.columns],
        }

    @classmethod
    def from_dict(cls, values: dict) -> Encoding:
        return cls(tuple(Column.from_dict(column) for column in values["columns"]), values["label_column"])

    @classmethod
    def from_scaling(cls, scaling: dict, label_column: str) -> Encoding:
        """Artifacts of format 1 carried standardization statistics of numeric columns only."""
        return cls(
            tuple(
                Column(name, NUMERIC, mean=float(mean), scale=float(scale))
                for name, mean, scale in zip(scaling["feature_names"], scaling["mean"], scaling["scale"], strict=True)
            ),
            label_column,
        )

    @classmethod
    def from_metadata(cls, metadata: dict) -> Encoding:
        """The encoding in a model artifact's metadata (model.json), of either format."""
        if metadata["format_version"] == 1:
            return cls.from_scaling(metadata["scaling"], metadata["label_column"])
        return cls.from_dict(metadata["encoding"])

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: Path) -> Encoding:
        return cls.from_dict(json.loads(path.read_text()))


# A column whose present cells are mostly numbers (this percentage or more), but not all, holds typos rather than
# categories.
NUMERIC_PERCENT_OF_TYPOS = 90


def infer_columns(cells: np.ndarray, names: tuple[str, ...]) -> tuple[dict[str, str], frozenset[str]]:
    """Per column its kind (numeric when every present cell is a number, categorical when few are), and the columns
    with missing cells. EncodingError names the row (from 1) of a non-finite number, or of a text cell in a column
    of numbers."""
    kinds, may_miss = {}, set()
    for index, name in enumerate(names):
        values = np.char.strip(cells[:, index].astype(str))
        missing = np.isin(values, list(MISSING_MARKERS))
        if missing.all():
            raise EncodingError("no values in any row; drop the column", 0, name)
        if missing.any():
            may_miss.add(name)
        present = np.flatnonzero(~missing)
        numbers = np.array([_number_or_nan(value) for value in values[present]])
        text = np.flatnonzero(np.isnan(numbers))
        numeric_percent_short = 100 * (len(present) - len(text)) < NUMERIC_PERCENT_OF_TYPOS * len(present)
        if len(text) == len(present) or (len(text) and numeric_percent_short):
            kinds[name] = CATEGORICAL
            continue
        if len(text):
            row = int(present[text[0]])
            share = 1 - len(text) / len(present)
            raise EncodingError(
                f"{str(values[row])!r} is not a number, in a column of numbers ({share:.0%} of its values); fix "
                "the cell or leave it empty",
                row + 1,
                name,
            )
        kinds[name] = NUMERIC
        infinite = np.flatnonzero(np.isinf(numbers))
        if len(infinite):
            row = int(present[infinite[0]])
            raise EncodingError(f"{str(values[row])!r} is not a finite number", row + 1, name)
    return kinds, frozenset(may_miss)


def _standardized(codes: np.ndarray, mean: np.ndarray | float, scale: np.ndarray | float) -> np.ndarray:
    return np.clip((codes - mean) / scale, -MAX_DEVIATIONS, MAX_DEVIATIONS).astype(np.float32)


def _number_or_nan(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan
