"""Request bodies to feature rows; every rejection names the row and column.

Line-based bodies (CSV, JSON Lines) keep where each input line went (`Parsed.lines`): the answer has one line per
input line, so that batch transform's JoinSource=Input pairs every input line with its own answer. A blank line is
answered with a blank line, a CSV header with the label column's name. Large bodies are read in line-aligned pieces
(`parse_pieces`), so that the text of only one piece exists at a time beside the body.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from training_code.contract import CSV, JSON, JSON_LINES, NPY, NPZ, REQUEST_CONTENT_TYPES, RESPONSE_CONTENT_TYPES
from training_code.serving import arrays
from training_code.serving.errors import PayloadError
from training_code.serving.schema import Schema

# Media types that clients send for the same formats.
CONTENT_TYPE_ALIASES = {"application/x-jsonlines": JSON_LINES, "application/jsonl": JSON_LINES}
# Where an input line went, besides a row: nowhere (a blank line), or the header.
BLANK_LINE = -1
HEADER_LINE = -2
# A piece of a large body: its text, its lines and their numbers exist one piece at a time.
PIECE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Parsed:
    """Feature rows (float64, in the model's feature order) and, for line-based bodies, per input line its row in
    `features`, BLANK_LINE or HEADER_LINE."""

    features: np.ndarray
    lines: np.ndarray | None = None


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


def response_content_type(accept: str | None, content_type: str, default: str | None = None) -> str:
    """The supported type that Accept rates highest (RFC 9110: the most specific range that matches sets a type's
    q-value). With no Accept, or `*/*`, and on a tie: `default` (SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT) where set,
    else the request's own type (NumPy's for an .npz request, which is no answer type)."""
    preferred = default or (content_type if content_type in RESPONSE_CONTENT_TYPES else NPY)
    if not accept or not accept.strip() or accept.strip() == "*/*":
        return preferred
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

    # max() keeps the first of equals: the preferred type wins a tie.
    candidates = [preferred, *(kind for kind in RESPONSE_CONTENT_TYPES if kind != preferred)]
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


def parse(body: bytes | bytearray, content_type: str, schema: Schema, *, batch: bool = False) -> Parsed:
    """The whole body at once."""
    (parsed,) = parse_pieces(body, content_type, schema, batch=batch, piece_bytes=len(body) + 1)
    return parsed


def parse_pieces(
    body: bytes | bytearray, content_type: str, schema: Schema, *, batch: bool = False, piece_bytes: int = PIECE_BYTES
) -> Iterator[Parsed]:
    """The body's rows in line-aligned pieces of about `piece_bytes` (one piece for JSON and NumPy bodies). `batch`:
    the body is a batch transform mini-batch, of which only the first of a file carries its header."""
    if not body:
        raise PayloadError("the request body is empty; send at least one row")
    if content_type in (NPY, NPZ):
        yield Parsed(arrays.read(body, content_type, schema))
        return
    if content_type == JSON:
        text = _text(body, 0)
        if not text.strip():
            raise PayloadError("the request body is empty; send at least one row")
        rows = _json_rows(text, schema)
        yield Parsed(_json_matrix(rows, schema, text, rows_before=0))
        return
    reader = _LineReader(schema, content_type, batch)
    start = 0
    while start < len(body):
        end = body.find(b"\n", start + piece_bytes)
        end = len(body) if end < 0 else end + 1
        yield reader.read(_text(body[start:end], start))
        start = end


def _text(data: bytes | bytearray, offset: int) -> str:
    try:
        # utf-8-sig drops a byte-order mark at the start of the body, as training reads its CSV files.
        return data.decode("utf-8-sig" if offset == 0 else "utf-8")
    except UnicodeDecodeError as error:
        raise PayloadError(f"the request body is not UTF-8 text (byte {offset + error.start})") from None


@dataclass
class _LineReader:
    """Reads the pieces of one CSV or JSON Lines body in order: the header (CSV) and the row numbers carry over."""

    schema: Schema
    content_type: str
    batch: bool
    rows_before: int = 0
    first_line_seen: bool = False
    header: list[str] | None = None
    order: list[int] | None = field(default=None)
    # The first line's values when it is a row of numbers: a one-row body is then read once, not twice.
    first_values: np.ndarray | None = None

    def read(self, text: str) -> Parsed:
        pieces = text.split("\n")
        if text.endswith("\n"):
            pieces.pop()
        lines = [line[:-1] if line.endswith("\r") else line for line in pieces]
        layout = np.empty(len(lines), dtype=np.int64)
        records: list[str] = []
        for number, line in enumerate(lines):
            if not line.strip():
                layout[number] = BLANK_LINE
            elif not self.first_line_seen and self._is_header(line):
                layout[number] = HEADER_LINE
            else:
                layout[number] = len(records)
                records.append(line)
            self.first_line_seen = self.first_line_seen or bool(line.strip())
        if self.content_type == CSV:
            features = self._csv_matrix(records)
        else:
            rows = [_json_row(_load_json(record, row), self.schema, row) for row, record in self._numbered(records)]
            features = _json_matrix(rows, self.schema, "\n".join(records), rows_before=self.rows_before)
        self.rows_before += len(records)
        self.first_values = None  # it belonged to this piece
        return Parsed(features, layout)

    def _numbered(self, records: list[str]) -> Iterator[tuple[int, str]]:
        return enumerate(records, start=self.rows_before + 1)

    def _is_header(self, line: str) -> bool:
        """A CSV header: a first line that is not numbers and names the model's columns."""
        if self.content_type != CSV:
            return False
        fields = _split([line], '"' in line)[0]
        self.first_values = _numbers_or_none(fields)
        if self.first_values is not None:
            return False  # a row of numbers is data, even where feature names look like numbers ("0", "1", ...)
        header = [name.strip() for name in fields]
        if self.schema.columns.isdisjoint(header):
            return False
        self.order = _column_order(header, self.schema)
        self.header = header
        if self.batch and header != list(self.schema.feature_names):
            raise PayloadError(
                "CSV header: in batch transform a header must name the model's features in its order and nothing "
                "else, as the mini-batches after a file's first arrive without it (drop other columns with the job's "
                f"input filter); the model's columns are {', '.join(self.schema.feature_names)}",
                row=0,
            )
        return True

    def _csv_matrix(self, records: list[str]) -> np.ndarray:
        width = len(self.schema.feature_names)
        if not records:
            return np.empty((0, width))
        first = self.first_values
        if (
            self.schema.numeric
            and len(records) == 1
            and first is not None
            and first.shape == (width,)
            and np.isfinite(first).all()
        ):
            return first.reshape(1, width)
        quoted = any('"' in record for record in records)
        if quoted or self.order is not None or len(records) == 1 or not self.schema.numeric:
            fields = _split(records, quoted)
            if self.order is not None:
                for row, record in enumerate(fields, start=self.rows_before + 1):
                    if len(record) != len(self.header):
                        raise PayloadError(
                            f"row {row}: {len(record)} values, the header names {len(self.header)}", row=row
                        )
                fields = [[record[index] for index in self.order] for record in fields]
            return _text_matrix(fields, self.schema, self.rows_before)
        # Many plain rows: numpy's C parser reads them twice as fast as converting split fields.
        try:
            matrix = np.loadtxt(records, delimiter=",", dtype=np.float64, ndmin=2, comments=None)
        except ValueError:
            matrix = None
        if matrix is not None and matrix.shape[1] == width and np.isfinite(matrix).all():
            return matrix
        return _checked(_split(records, quoted), self.schema, from_text=True, rows_before=self.rows_before)


def _split(lines: list[str], quoted: bool) -> list[list[str]]:
    if not quoted:
        return [line.split(",") for line in lines]
    try:
        return list(csv.reader(lines))
    except csv.Error as error:
        raise PayloadError(f"malformed CSV: {error}") from None


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
        if "instances" in document:
            document = document["instances"]
        elif "features" in document or not schema.columns.isdisjoint(document):
            return [_json_row(document, schema, 1)]  # one row: {"features": [...]} or keyed by feature name
        else:
            raise PayloadError(
                "JSON object without 'instances' (rows), 'features' (one row) or the model's columns (one row); "
                f"keys are {sorted(document)[:10]}"
            )
    if not isinstance(document, list):
        raise PayloadError("JSON body must be a list of rows, one row, or an object with 'instances'")
    if not document:
        raise PayloadError("JSON body holds no rows")
    if not any(isinstance(value, (list, dict)) for value in document):
        return [document]
    return [_json_row(value, schema, row) for row, value in enumerate(document, start=1)]


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


def _text_matrix(records: list[list[str]], schema: Schema, rows_before: int) -> np.ndarray:
    if schema.numeric and all(len(record) == len(schema.feature_names) for record in records):
        try:
            matrix = np.array(records, dtype=np.float64)
        except ValueError:
            matrix = None
        if matrix is not None and np.isfinite(matrix).all():
            return matrix
    return _checked(records, schema, from_text=True, rows_before=rows_before)


def _json_matrix(rows: list, schema: Schema, text: str, rows_before: int) -> np.ndarray:
    if not rows:
        return np.empty((0, len(schema.feature_names)))
    # numpy turns true and false into 1 and 0 beside numbers; their presence sends the body to the strict check.
    if schema.numeric and "true" not in text and "false" not in text:
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
    return _checked(rows, schema, from_text=False, rows_before=rows_before)


def _checked(rows: Sequence[Sequence[object]], schema: Schema, from_text: bool, rows_before: int) -> np.ndarray:
    """The value-by-value conversion to codes that the fast paths fall back to (and text columns need): it names the
    first wrong row and value. It decides alone: a body that numpy's parsers refused but Python's float() accepts
    value by value is served."""
    width = len(schema.feature_names)
    matrix = np.empty((len(rows), width))
    for index, row in enumerate(rows):
        row_number = rows_before + index + 1
        if len(row) != width:
            raise PayloadError(f"row {row_number}: {len(row)} values, the model takes {width}", row=row_number)
        for column, value in enumerate(row, start=1):
            matrix[index, column - 1] = schema.code(value, row_number, column, from_text)
    return matrix
