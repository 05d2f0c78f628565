"""Request bodies to feature rows, predictions to response bodies; every rejection names the row and column."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from training_code.contract import CSV, JSON, JSON_LINES, REQUEST_CONTENT_TYPES, RESPONSE_CONTENT_TYPES
from training_code.serving.predictor import softmax

# Media types that clients send for the same formats.
CONTENT_TYPE_ALIASES = {"application/x-jsonlines": JSON_LINES, "application/jsonl": JSON_LINES}
PROBABILITY_DECIMALS = 6


class PayloadError(ValueError):
    """A request the server cannot answer; `status` is the HTTP status (4xx) to answer with."""

    def __init__(self, message: str, status: int = 400, row: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.row = row
        self.column = column

    def body(self) -> bytes:
        error: dict[str, object] = {"error": str(self)}
        if self.row is not None:
            error["row"] = self.row
        if self.column is not None:
            error["column"] = self.column
        return json.dumps(error).encode()


@dataclass(frozen=True)
class Schema:
    """What a request must provide: the model's features, in order; the label column is allowed and ignored."""

    feature_names: tuple[str, ...]
    label_column: str

    @cached_property
    def columns(self) -> frozenset[str]:
        return frozenset((*self.feature_names, self.label_column))

    def describe_column(self, column: int) -> str:
        return f"column {column} ({self.feature_names[column - 1]})" if column <= len(self.feature_names) else ""


def media_type(header: str | None) -> str:
    """`text/csv; charset=utf-8` -> `text/csv`."""
    value = (header or "").split(";", 1)[0].strip().lower()
    return CONTENT_TYPE_ALIASES.get(value, value)


def request_content_type(header: str | None) -> str:
    content_type = media_type(header)
    if not content_type:
        raise PayloadError(f"Content-Type header missing; send one of {', '.join(REQUEST_CONTENT_TYPES)}", 415)
    if content_type not in REQUEST_CONTENT_TYPES:
        raise PayloadError(
            f"Content-Type {content_type!r} is not supported; send one of {', '.join(REQUEST_CONTENT_TYPES)}", 415
        )
    return content_type


def response_content_type(accept: str | None, content_type: str) -> str:
    """The supported type that Accept rates highest (RFC 9110: the most specific range that matches sets a type's
    q-value); on a tie, or with no Accept, the request's own type."""
    if not accept or not accept.strip() or accept == "*/*":
        return content_type
    if accept in RESPONSE_CONTENT_TYPES:
        return accept
    ranges = [_media_range(item, accept) for item in accept.split(",") if item.strip()]

    def preference(candidate: str) -> tuple[float, int]:
        """(q-value, -position) of the most specific range that matches the candidate; (0, 0) if none does."""
        best_specificity, best = -1, (0.0, 0)
        for position, (kind, range_quality) in enumerate(ranges):
            if kind == candidate:
                specificity = 2
            elif kind.endswith("/*") and candidate.startswith(kind[:-1]):
                specificity = 1
            elif kind == "*/*":
                specificity = 0
            else:
                continue
            if specificity > best_specificity:
                best_specificity, best = specificity, (range_quality, -position)
        return best

    # max() keeps the first of equals: the request's own type wins a tie.
    candidates = [content_type, *(kind for kind in RESPONSE_CONTENT_TYPES if kind != content_type)]
    best = max(candidates, key=preference)
    if preference(best)[0] <= 0:
        supported = ", ".join(RESPONSE_CONTENT_TYPES)
        raise PayloadError(f"Accept {accept!r} is not supported; accept one of {supported}", 406)
    return best


def _media_range(item: str, accept: str) -> tuple[str, float]:
    kind, *parameters = item.split(";")
    quality = 1.0
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                quality = float(value)
            except ValueError:
                raise PayloadError(f"Accept {accept!r}: q-value {value.strip()!r} is not a number") from None
    return media_type(kind), quality


def parse(body: bytes, content_type: str, schema: Schema) -> np.ndarray:
    """Feature rows (float64, one per record, in the model's feature order) from a request body."""
    try:
        # utf-8-sig drops a byte-order mark, as training reads its CSV files.
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise PayloadError(f"the request body is not UTF-8 text (byte {error.start})") from None
    if not text.strip():
        raise PayloadError("the request body is empty; send at least one row")
    if content_type == CSV:
        return _csv_matrix(text, schema)
    rows = _json_rows(text, schema) if content_type == JSON else _json_lines_rows(text, schema)
    return _json_matrix(rows, schema, text)


def _csv_matrix(text: str, schema: Schema) -> np.ndarray:
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise PayloadError("the CSV body holds no rows")
    quoted = '"' in text

    def split(lines: list[str]) -> list[list[str]]:
        if not quoted:
            return [line.split(",") for line in lines]
        try:
            return list(csv.reader(lines))
        except csv.Error as error:
            raise PayloadError(f"malformed CSV: {error}") from None

    first = split(lines[:1])[0]
    # A row of numbers is data, never a header, even where feature names look like numbers ("0", "1", ...).
    first_values = _numbers_or_none(first)
    if first_values is not None:
        if len(lines) == 1 and len(first) == len(schema.feature_names) and np.isfinite(first_values).all():
            return first_values.reshape(1, -1)
        header, order, data = first, None, lines
    else:
        header = [name.strip() for name in first]
        if schema.columns.isdisjoint(header):
            order, data = None, lines
        else:
            order, data = _column_order(header, schema), lines[1:]
            if not data:
                raise PayloadError("the CSV body holds a header and no rows", row=0)
    if quoted or order is not None or len(data) == 1:
        records = split(data)
        if order is not None:
            for row, record in enumerate(records, start=1):
                if len(record) != len(header):
                    raise PayloadError(f"row {row}: {len(record)} values, the header names {len(header)}", row=row)
            records = [[record[index] for index in order] for record in records]
        return _text_matrix(records, schema)
    # Many plain rows: numpy's C parser reads them twice as fast as converting split fields.
    try:
        matrix = np.loadtxt(data, delimiter=",", dtype=np.float64, ndmin=2, comments=None)
    except ValueError:
        matrix = None
    if matrix is not None and matrix.shape[1] == len(schema.feature_names) and np.isfinite(matrix).all():
        return matrix
    return _checked(split(data), schema, from_text=True)


def _column_order(header: list[str], schema: Schema) -> list[int] | None:
    """Where each feature sits in the header (None: already in the model's order)."""
    unknown = [name for name in header if name not in schema.feature_names and name != schema.label_column]
    missing = [name for name in schema.feature_names if name not in header]
    if unknown or missing:
        raise PayloadError(f"CSV header: unknown columns {unknown}, missing columns {missing}", row=0)
    if len(set(header)) != len(header):
        raise PayloadError("CSV header: a column appears twice", row=0)
    if header == list(schema.feature_names):
        return None
    return [header.index(name) for name in schema.feature_names]


def _numbers_or_none(fields: list[str]) -> np.ndarray | None:
    try:
        return np.array(fields, dtype=np.float64)
    except ValueError:
        return None


def _json_rows(text: str, schema: Schema) -> list:
    document = _load_json(text, row=None)
    if isinstance(document, dict):
        if "instances" not in document:
            raise PayloadError(f"JSON object without 'instances'; keys are {sorted(document)[:10]}")
        document = document["instances"]
    if not isinstance(document, list):
        raise PayloadError("JSON body must be a list of rows or an object with 'instances'")
    if not document:
        raise PayloadError("JSON body holds no rows")
    if not any(isinstance(value, (list, dict)) for value in document):
        return [document]
    return [_json_row(value, schema, row) for row, value in enumerate(document, start=1)]


def _json_lines_rows(text: str, schema: Schema) -> list:
    # JSON Lines ends records at newlines only; JSON strings may hold other line separators.
    lines = [line for line in text.split("\n") if line.strip()]
    if not lines:
        raise PayloadError("the JSON Lines body holds no rows")
    return [_json_row(_load_json(line, row), schema, row) for row, line in enumerate(lines, start=1)]


def _load_json(text: str, row: int | None) -> object:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        where = f"row {row}: " if row is not None else ""
        raise PayloadError(f"{where}malformed JSON: {error}", row=row) from None


def _json_row(value: object, schema: Schema, row: int) -> list:
    """A row is a list of numbers, an object with 'features', or an object keyed by feature name."""
    if isinstance(value, dict):
        if "features" in value:
            value = value["features"]
        else:
            unknown = sorted(set(value) - {*schema.feature_names, schema.label_column})
            missing = [name for name in schema.feature_names if name not in value]
            if unknown or missing:
                raise PayloadError(f"row {row}: unknown fields {unknown[:10]}, missing fields {missing[:10]}", row=row)
            return [value[name] for name in schema.feature_names]
    if not isinstance(value, list):
        raise PayloadError(f"row {row}: expected a list of {len(schema.feature_names)} numbers", row=row)
    return value


def _text_matrix(records: list[list[str]], schema: Schema) -> np.ndarray:
    if all(len(record) == len(schema.feature_names) for record in records):
        try:
            matrix = np.array(records, dtype=np.float64)
        except ValueError:
            matrix = None
        if matrix is not None and np.isfinite(matrix).all():
            return matrix
    return _checked(records, schema, from_text=True)


def _json_matrix(rows: list, schema: Schema, text: str) -> np.ndarray:
    # numpy turns true and false into 1 and 0 beside numbers; their presence sends the body to the strict check.
    if "true" not in text and "false" not in text:
        try:
            matrix = np.array(rows)
        except (ValueError, TypeError):
            matrix = None
        if (
            matrix is not None
            and matrix.ndim == 2
            and matrix.dtype.kind in "fi"
            and matrix.shape[1] == len(schema.feature_names)
            and np.isfinite(matrix).all()
        ):
            return matrix.astype(np.float64)
    return _checked(rows, schema, from_text=False)


def _checked(rows: Sequence[Sequence[object]], schema: Schema, from_text: bool) -> np.ndarray:
    """The value-by-value conversion that the fast paths fall back to: it names the first wrong row and value.

    It decides alone: a body that numpy's parsers refused but Python's float() accepts value by value is served.
    """
    width = len(schema.feature_names)
    matrix = np.empty((len(rows), width))
    for row_number, row in enumerate(rows, start=1):
        if len(row) != width:
            raise PayloadError(f"row {row_number}: {len(row)} values, the model takes {width}", row=row_number)
        for column, value in enumerate(row, start=1):
            matrix[row_number - 1, column - 1] = _number(value, row_number, column, schema, from_text)
    return matrix


def _number(value: object, row: int, column: int, schema: Schema, from_text: bool) -> float:
    where = f"row {row}, {schema.describe_column(column)}"
    if from_text:
        text = str(value).strip()
        if not text:
            raise PayloadError(f"{where}: empty value", row=row, column=column)
        try:
            number = float(text)
        except ValueError:
            raise PayloadError(f"{where}: {text[:40]!r} is not a number", row=row, column=column) from None
    elif type(value) in (int, float):
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
    else:
        raise PayloadError(f"{where}: {json.dumps(value)[:40]} is not a number", row=row, column=column)
    if not math.isfinite(number):
        raise PayloadError(f"{where}: {str(value)[:40]} is not a finite number", row=row, column=column)
    return number


def render(logits: np.ndarray, classes: Sequence[str], accept: str) -> bytes:
    """CSV answers one label per row; JSON and JSON Lines add the probability of every class."""
    labels = [classes[index] for index in logits.argmax(axis=1)]
    if accept == CSV:
        return ("\n".join(labels) + "\n").encode()
    rounded = np.round(softmax(logits).astype(np.float64), PROBABILITY_DECIMALS).tolist()
    predictions = [
        {"label": label, "probabilities": dict(zip(classes, row, strict=True))}
        for label, row in zip(labels, rounded, strict=True)
    ]
    if accept == JSON:
        return json.dumps({"predictions": predictions}).encode()
    return "".join(json.dumps(prediction) + "\n" for prediction in predictions).encode()
