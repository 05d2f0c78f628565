"""Request bodies to feature rows and predictions to response bodies, without HTTP."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from tests.encodings import numbers_only
from training_code.contract import CSV, JSON, JSON_LINES, NPY, NPZ
from training_code.features import NUMERIC, Column, Encoding
from training_code.serving import arrays, payload
from training_code.serving.answers import Answer, render
from training_code.serving.errors import PayloadError
from training_code.serving.payload import BLANK_LINE, HEADER_LINE
from training_code.serving.schema import Schema

SCHEMA = Schema(numbers_only(("height", "width", "depth")))
CLASSES = ("cat", "dog", "fish")


def parse(body: str | bytes, content_type: str, schema: Schema = SCHEMA) -> np.ndarray:
    matrix = payload.parse(body.encode() if isinstance(body, str) else body, content_type, schema).features
    assert matrix.dtype == np.float64
    return matrix


def lines_of(body: str, content_type: str = CSV, **options) -> list[int]:
    return payload.parse(body.encode(), content_type, SCHEMA, **options).lines.tolist()


def rejected(body: str | bytes, content_type: str, schema: Schema = SCHEMA) -> PayloadError:
    with pytest.raises(PayloadError) as raised:
        payload.parse(body.encode() if isinstance(body, str) else body, content_type, schema)
    error = raised.value
    assert 400 <= error.status < 500
    # The HTTP body of the error is JSON with the message, and the row and column where known.
    answer = json.loads(error.body())
    assert answer["error"] == str(error)
    assert answer.get("row") == error.row and answer.get("column") == error.column
    return error


# Content types.


@pytest.mark.parametrize(
    "header, expected",
    [
        ("text/csv", CSV),
        ("text/csv; charset=utf-8", CSV),
        ("Text/CSV", CSV),
        ("application/json", JSON),
        ("application/json;charset=UTF-8", JSON),
        ("application/jsonlines", JSON_LINES),
        ("application/x-jsonlines", JSON_LINES),
        ("application/jsonl", JSON_LINES),
    ],
)
def test_request_content_types(header: str, expected: str) -> None:
    assert payload.request_content_type(header) == expected


@pytest.mark.parametrize("header", [None, "", "text/plain", "application/xml", "application/x-www-form-urlencoded"])
def test_unsupported_request_content_type_is_415_naming_the_supported_ones(header: str | None) -> None:
    with pytest.raises(PayloadError) as raised:
        payload.request_content_type(header)
    assert raised.value.status == 415
    assert all(kind in str(raised.value) for kind in (CSV, JSON, JSON_LINES))


@pytest.mark.parametrize(
    "accept, content_type, expected",
    [
        # No Accept, or any type: the request's own type.
        (None, CSV, CSV),
        (None, JSON_LINES, JSON_LINES),
        ("", JSON, JSON),
        ("*/*", JSON_LINES, JSON_LINES),
        ("*/*", CSV, CSV),
        # A supported type, with parameters or in other case.
        ("application/json", CSV, JSON),
        ("text/csv", JSON, CSV),
        ("application/jsonlines", CSV, JSON_LINES),
        ("application/x-jsonlines", CSV, JSON_LINES),
        ("text/csv; charset=utf-8", JSON, CSV),
        ("TEXT/CSV", JSON, CSV),
        # q-values rank; equal q-values keep the client's order.
        ("application/json;q=0.5, text/csv", JSON, CSV),
        ("text/csv;q=0.2, application/jsonlines;q=0.9", CSV, JSON_LINES),
        ("application/json, text/csv", CSV, JSON),
        ("text/csv, application/json", JSON, CSV),
        ("text/csv; q=0.5, application/json; q=0.6", CSV, JSON),
        # Unsupported types are passed over for supported ones.
        ("text/html, application/json;q=0.1", CSV, JSON),
        ("text/html, */*;q=0.1", JSON, JSON),
        ("image/png, text/*", CSV, CSV),
        # q=0 means "not acceptable".
        ("application/json;q=0, text/csv;q=0.1", JSON, CSV),
    ],
)
def test_accept_negotiation(accept: str | None, content_type: str, expected: str) -> None:
    assert payload.response_content_type(accept, content_type) == expected


def test_accept_wildcard_subtype_matches_a_type_other_than_the_requests() -> None:
    """application/* accepts application/json and application/jsonlines, whatever the request's type."""
    assert payload.response_content_type("application/*", CSV) in (JSON, JSON_LINES)
    assert payload.response_content_type("application/*", JSON_LINES) == JSON_LINES


def test_accept_q_zero_for_a_type_overrides_a_wildcard() -> None:
    """RFC 9110 12.5.1: the most specific range decides; text/csv;q=0 excludes CSV though */* is acceptable."""
    assert payload.response_content_type("text/csv;q=0, */*", CSV) in (JSON, JSON_LINES)
    assert payload.response_content_type("application/json;q=0, */*;q=0.5", JSON) in (CSV, JSON_LINES)


@pytest.mark.parametrize(
    "accept",
    ["text/html", "application/xml, text/plain", "text/csv;q=0", "*/*;q=0", "image/*", "application/json;q=0"],
)
def test_unsupported_accept_is_406_naming_the_supported_types(accept: str) -> None:
    with pytest.raises(PayloadError) as raised:
        payload.response_content_type(accept, CSV)
    assert raised.value.status == 406
    assert accept in str(raised.value)
    assert all(kind in str(raised.value) for kind in (CSV, JSON, JSON_LINES))


def test_a_q_value_that_is_not_a_number_is_400() -> None:
    with pytest.raises(PayloadError) as raised:
        payload.response_content_type("text/csv;q=high", CSV)
    assert raised.value.status == 400
    assert "high" in str(raised.value)


# CSV bodies.

ROWS = [[1.0, 2.0, 3.0], [4.5, -5.0, 6e-3], [0.0, 1e10, -7.25]]


@pytest.mark.parametrize("body", ["1,2,3", "1,2,3\n", "1,2,3\r\n", " 1 , 2 ,3 ", "1.0,2e0,+3"])
def test_csv_one_row(body: str) -> None:
    np.testing.assert_array_equal(parse(body, CSV), [[1, 2, 3]])


def test_csv_many_rows_keep_their_order_and_values() -> None:
    rng = np.random.default_rng(0)
    rows = rng.normal(scale=1e3, size=(200, 3))
    body = "\n".join(",".join(repr(value) for value in row) for row in rows.tolist())

    np.testing.assert_array_equal(parse(body, CSV), rows)


@pytest.mark.parametrize("separator", ["\n", "\r\n"])
def test_csv_line_endings(separator: str) -> None:
    body = separator.join(",".join(str(value) for value in row) for row in ROWS) + separator
    np.testing.assert_array_equal(parse(body, CSV), ROWS)


def test_a_lone_carriage_return_ends_no_line() -> None:
    """Batch transform splits records at line feeds; a line that splits elsewhere would misalign its answers."""
    error = rejected("1,2,3\r4,5,6\r", CSV)
    assert error.row == 1


def test_csv_blank_lines_are_no_rows_but_keep_their_place() -> None:
    np.testing.assert_array_equal(parse("\n1,2,3\n\n\n4.5,-5,0.006\n\n", CSV), ROWS[:2])
    np.testing.assert_array_equal(parse("\n\n1,2,3\n\n", CSV), [[1, 2, 3]])
    assert lines_of("\n1,2,3\n\n\n4.5,-5,0.006\n\n") == [BLANK_LINE, 0, BLANK_LINE, BLANK_LINE, 1, BLANK_LINE]
    assert lines_of("1,2,3\r\n \r\n4,5,6") == [0, BLANK_LINE, 1]


@pytest.mark.parametrize("content_type", [CSV, JSON_LINES])
@pytest.mark.parametrize("body", ["\n", "  ", "\n\n", "\r\n \t", "\u2028", "\x1c\n"])
def test_a_body_of_blank_lines_is_no_error_but_blank_lines(content_type: str, body: str) -> None:
    """Batch transform may send a mini-batch of blank lines: failing it would fail the job."""
    parsed = payload.parse(body.encode(), content_type, SCHEMA)
    assert parsed.features.shape == (0, 3)
    assert parsed.lines.tolist() == [BLANK_LINE] * (body.count("\n") + (0 if body.endswith("\n") else 1))


def test_a_header_is_a_line_of_its_own() -> None:
    assert lines_of("height,width,depth\n1,2,3\n\n4,5,6\n") == [HEADER_LINE, 0, BLANK_LINE, 1]
    assert lines_of("\ndepth,height,width,label\n3,1,2,cat") == [BLANK_LINE, HEADER_LINE, 0]
    assert lines_of("height,width,depth") == [HEADER_LINE]


@pytest.mark.parametrize("rows", [1, 3])
def test_csv_header_in_the_model_order(rows: int) -> None:
    body = "height,width,depth\n" + "\n".join(",".join(str(value) for value in row) for row in ROWS[:rows])
    np.testing.assert_array_equal(parse(body, CSV), ROWS[:rows])


@pytest.mark.parametrize("rows", [1, 3])
def test_csv_header_in_another_order_reorders_the_columns(rows: int) -> None:
    # depth, height, width: the values of each row in that order.
    body = "depth,height,width\n" + "\n".join(f"{row[2]},{row[0]},{row[1]}" for row in ROWS[:rows])
    np.testing.assert_array_equal(parse(body, CSV), ROWS[:rows])


@pytest.mark.parametrize("rows", [1, 3])
def test_csv_header_with_the_label_column_ignores_the_labels(rows: int) -> None:
    body = "width,label,depth,height\n" + "\n".join(
        f"{row[1]},{label},{row[2]},{row[0]}" for row, label in zip(ROWS[:rows], CLASSES, strict=False)
    )
    np.testing.assert_array_equal(parse(body, CSV), ROWS[:rows])


def test_csv_header_names_are_trimmed() -> None:
    np.testing.assert_array_equal(parse(" depth , height ,width\n3,1,2", CSV), [[1, 2, 3]])


def test_csv_quoted_fields() -> None:
    np.testing.assert_array_equal(parse('"1","2","3"\n"4.5",-5,"0.006"', CSV), ROWS[:2])
    np.testing.assert_array_equal(parse('"depth","height","width"\n"3","1",2', CSV), [[1, 2, 3]])
    # A quoted label may hold the delimiter.
    np.testing.assert_array_equal(
        parse('height,width,depth,label\n1,2,3,"cat, large"\n4,5,6,dog', CSV), [[1, 2, 3], [4, 5, 6]]
    )


def test_csv_rows_of_numbers_are_data_even_where_the_feature_names_are_numbers() -> None:
    schema = Schema(numbers_only(("0", "1", "2")))
    np.testing.assert_array_equal(parse("0,1,2\n5,6,7", CSV, schema), [[0, 1, 2], [5, 6, 7]])
    np.testing.assert_array_equal(parse("2,1,0", CSV, schema), [[2, 1, 0]])


# JSON and JSON Lines bodies.


@pytest.mark.parametrize(
    "document",
    [
        {"instances": ROWS},
        ROWS,
        {"instances": [dict(zip(("width", "depth", "height"), (r[1], r[2], r[0]), strict=True)) for r in ROWS]},
        [{"depth": r[2], "label": "cat", "height": r[0], "width": r[1]} for r in ROWS],
        [{"features": r} for r in ROWS],
        {"instances": [{"features": r} for r in ROWS]},
    ],
    ids=[
        "instances",
        "list-of-rows",
        "objects-by-name",
        "objects-with-label",
        "features-objects",
        "instances-features",
    ],
)
def test_json_many_rows(document: object) -> None:
    np.testing.assert_array_equal(parse(json.dumps(document), JSON), ROWS)


@pytest.mark.parametrize("document", [[1, 2, 3], {"instances": [1, 2, 3]}, [1, 2.0, 3], [[1, 2, 3]]])
def test_json_single_row(document: object) -> None:
    np.testing.assert_array_equal(parse(json.dumps(document), JSON), [[1, 2, 3]])


def test_json_integers_beyond_64_bits_are_numbers() -> None:
    np.testing.assert_array_equal(parse(f"[[1, 2, {2**64 - 1}]]", JSON), [[1, 2, float(2**64 - 1)]])


@pytest.mark.parametrize(
    "lines",
    [
        [json.dumps(row) for row in ROWS],
        [json.dumps({"features": row}) for row in ROWS],
        [json.dumps(dict(zip(reversed(SCHEMA.feature_names), reversed(row), strict=True))) for row in ROWS],
    ],
    ids=["lists", "features-objects", "objects-by-name"],
)
@pytest.mark.parametrize("separator", ["\n", "\r\n", "\n\n"])
def test_json_lines(lines: list[str], separator: str) -> None:
    np.testing.assert_array_equal(parse(separator.join(lines) + separator, JSON_LINES), ROWS)


# Rejections.


def test_empty_bodies_are_rejected() -> None:
    for content_type in (CSV, JSON, JSON_LINES):
        assert "empty" in str(rejected("", content_type))
    for body in ("  ", "\n\n", "\r\n \t", "\u2028"):
        assert "empty" in str(rejected(body, JSON))


@pytest.mark.parametrize("content_type", [CSV, JSON, JSON_LINES])
def test_non_utf8_bodies_are_rejected(content_type: str) -> None:
    error = rejected(b"1,2,\xff\xfe", content_type)
    assert "UTF-8" in str(error)


@pytest.mark.parametrize(
    "body, row",
    [("1,2", 1), ("1,2,3,4", 1), ("1,2,3\n4,5\n7,8,9", 2), ("1,2,3\n4,5,6\n7,8,9,10", 3), ("1,2,3,", 1)],
)
def test_csv_wrong_value_count_names_the_row(body: str, row: int) -> None:
    error = rejected(body, CSV)
    assert error.row == row
    assert f"row {row}" in str(error)
    assert "3" in str(error)


def test_csv_wrong_value_count_after_a_header_counts_rows_after_it() -> None:
    error = rejected("height,width,depth\n1,2,3\n4,5", CSV)
    assert error.row == 2 and "row 2" in str(error)
    error = rejected("depth,height,width\n1,2,3\n4,5", CSV)
    assert error.row == 2 and "row 2" in str(error)


@pytest.mark.parametrize(
    "body, row, column, name, text",
    [
        ("1,abc,3", 1, 2, "width", "abc"),
        ("1,2,3\n4,5,six", 2, 3, "depth", "six"),
        ("1,2,3\n4,5,6\nx1,5,6", 3, 1, "height", "x1"),
        ('"1","2","3"\n"4","five","6"', 2, 2, "width", "five"),
        ("height,width,depth\n1,2,3\n4,5,0x10", 2, 3, "depth", "0x10"),
        # With the header in another order, the column is the model's: depth is its third.
        ("depth,height,width\nbad,1,2", 1, 3, "depth", "bad"),
        ("depth,height,width\n3,1,2\n6,4,oops", 2, 2, "width", "oops"),
    ],
)
def test_csv_non_numeric_value_names_row_and_column(body: str, row: int, column: int, name: str, text: str) -> None:
    error = rejected(body, CSV)
    assert (error.status, error.row, error.column) == (400, row, column)
    message = str(error)
    assert f"row {row}" in message and name in message and text in message


@pytest.mark.parametrize("value", ["inf", "-inf", "Infinity", "1e999", "-1e999"])
@pytest.mark.parametrize("template", ["1,{},3", "1,2,3\n4,{},6", "1,2,3\n4,5,6\n7,{},9"])
def test_csv_non_finite_values_are_rejected(value: str, template: str) -> None:
    body = template.format(value)
    error = rejected(body, CSV)
    assert error.column == 2
    assert error.row == body.count("\n") + 1
    assert "finite" in str(error) and "width" in str(error)


@pytest.mark.parametrize("body, row, column", [("1,,3", 1, 2), ("1,2,3\n4,5,", 2, 3), ("1,2,3\n ,5,6", 2, 1)])
def test_csv_empty_value_names_row_and_column(body: str, row: int, column: int) -> None:
    """The model was trained without missing values: there is nothing to fill an empty cell with."""
    error = rejected(body, CSV)
    assert (error.row, error.column) == (row, column)
    assert "missing value (empty)" in str(error)


@pytest.mark.parametrize("marker", ["nan", "NaN", "NA", "null", "?"])
def test_csv_missing_markers_are_missing_values_like_empty_cells(marker: str) -> None:
    error = rejected(f"1,2,3\n4,{marker},6", CSV)
    assert (error.row, error.column) == (2, 2)
    assert f"missing value ({marker!r})" in str(error) and "width" in str(error)


def test_malformed_csv_is_rejected() -> None:
    error = rejected('1,2,"' + "9" * 200_000 + '"', CSV)
    assert "CSV" in str(error)


@pytest.mark.parametrize(
    "header, named",
    [("height,width,depth,color", "color"), ("height,width", "depth"), ("height,width,size", "size")],
)
def test_csv_header_with_unknown_or_missing_columns_names_them(header: str, named: str) -> None:
    error = rejected(f"{header}\n1,2,3,4", CSV)
    assert error.row == 0
    assert named in str(error)


def test_csv_header_with_a_duplicate_column_is_rejected() -> None:
    error = rejected("height,width,depth,depth\n1,2,3,3", CSV)
    assert error.row == 0 and "twice" in str(error)
    error = rejected("height,width,depth,label,label\n1,2,3,cat,dog", CSV)
    assert error.row == 0


@pytest.mark.parametrize(
    "body, batch",
    [("depth,height,width\n3,1,2", True), ("height,width,depth,label\n1,2,3,cat", True), ("height,depth\n1,2", False)],
)
def test_in_batch_transform_a_header_must_be_the_model_columns_in_order(body: str, batch: bool) -> None:
    """Only a file's first mini-batch carries the header: a reordering or an extra column would hold for it alone."""
    with pytest.raises(PayloadError) as raised:
        payload.parse(body.encode(), CSV, SCHEMA, batch=batch)
    assert raised.value.row == 0
    assert lines_of("height,width,depth\n1,2,3", batch=True) == [HEADER_LINE, 0]
    assert lines_of("depth,height,width\n3,1,2", batch=False) == [HEADER_LINE, 0]


@pytest.mark.parametrize("body", ["[[1, 2, 3]", "{instances: []}", "[1, 2, 3]]", "[[1, 2, 3],]", "[[1 2 3]]"])
def test_malformed_json_is_rejected(body: str) -> None:
    assert "malformed JSON" in str(rejected(body, JSON))


@pytest.mark.parametrize("body", ["5", "null", '"1,2,3"', "true", '{"rows": [[1, 2, 3]]}', '{"instances": 5}'])
def test_json_that_is_not_rows_is_rejected(body: str) -> None:
    error = rejected(body, JSON)
    assert "instances" in str(error) or "list" in str(error)


@pytest.mark.parametrize("body", ["[]", '{"instances": []}'])
def test_json_without_rows_is_rejected(body: str) -> None:
    assert "no rows" in str(rejected(body, JSON))


@pytest.mark.parametrize(
    "document, row",
    [([[1, 2, 3], [1, 2]], 2), ([1, 2], 1), ([[1, 2, 3, 4]], 1), ([[1, 2, 3], [4, 5, 6], []], 3), ([[1, 2, 3], 5], 2)],
)
def test_json_wrong_value_count_names_the_row(document: list, row: int) -> None:
    error = rejected(json.dumps(document), JSON)
    assert error.row == row and f"row {row}" in str(error)


NOT_NUMBERS = [("true", "true"), ("false", "false"), ('"2"', '"2"'), ('"abc"', "abc"), ("null", "null")]


@pytest.mark.parametrize("value, text", [*NOT_NUMBERS, ("[2]", "[2]"), ('{"v": 2}', "v")], ids=lambda value: str(value))
@pytest.mark.parametrize("wrap", ["[[1, {}, 3]]", '{{"instances": [[1, 2, 3], [4, {}, 6]]}}'])
def test_json_values_other_than_numbers_are_rejected(value: str, text: str, wrap: str) -> None:
    """Booleans and numeric strings too: numpy would turn them into 1.0 and 2.0 without complaint."""
    error = rejected(wrap.format(value), JSON)
    assert error.column == 2
    assert error.row == (2 if "instances" in wrap else 1)
    assert "width" in str(error) and text in str(error)


@pytest.mark.parametrize("value, text", NOT_NUMBERS, ids=lambda value: str(value))
def test_json_single_flat_row_with_a_value_other_than_a_number_is_rejected(value: str, text: str) -> None:
    error = rejected(f"[1, {value}, 3]", JSON)
    assert (error.row, error.column) == (1, 2)
    assert text in str(error)


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", str(10**400)])
def test_json_non_finite_values_are_rejected(value: str) -> None:
    error = rejected(f"[[1, 2, 3], [4, 5, {value}]]", JSON)
    assert (error.row, error.column) == (2, 3)
    assert "finite" in str(error) and "depth" in str(error)


@pytest.mark.parametrize(
    "row, named",
    [
        ({"height": 1, "width": 2}, "depth"),
        ({"height": 1, "width": 2, "depth": 3, "colour": 4}, "colour"),
        ({"features": "1,2,3"}, "list"),
        ({"features": {"height": 1}}, "list"),
        ("1,2,3", "list"),
    ],
)
def test_json_object_rows_with_wrong_fields_are_rejected(row: object, named: str) -> None:
    error = rejected(json.dumps([[1, 2, 3], row]), JSON)
    assert error.row == 2 and "row 2" in str(error) and named in str(error)


def test_json_object_row_values_must_be_numbers() -> None:
    error = rejected(json.dumps([{"height": 1, "width": "2", "depth": 3}]), JSON)
    assert (error.row, error.column) == (1, 2)


def test_json_lines_errors_name_the_line() -> None:
    error = rejected("[1, 2, 3]\n[4, 5, 6]\n[7, 8", JSON_LINES)
    assert error.row == 3 and "row 3" in str(error) and "malformed JSON" in str(error)
    error = rejected("[1, 2, 3]\n[4, 5]\n", JSON_LINES)
    assert error.row == 2
    error = rejected('[1, 2, 3]\n{"height": 1, "width": true, "depth": 3}\n', JSON_LINES)
    assert (error.row, error.column) == (2, 2)
    error = rejected("[1, 2, 3]\n7\n", JSON_LINES)
    assert error.row == 2
    error = rejected("[1, 2, 3]\n[4, 5, NaN]\n", JSON_LINES)
    assert (error.row, error.column) == (2, 3)


def test_a_pretty_printed_json_document_is_not_json_lines() -> None:
    rejected(json.dumps({"instances": ROWS}, indent=2), JSON_LINES)


def test_deeply_nested_json_is_rejected() -> None:
    rejected("[" * 100_000 + "]" * 100_000, JSON)
    rejected("[[" + "[" * 70 + "1" + "]" * 70 + ", 2, 3]]", JSON)


# Rendering.

LOGITS = np.array([[0.0, 5.0, 1.0], [3.0, 0.0, 0.0], [-1.0, -2.0, 4.0], [1000.0, -1000.0, 0.0]], dtype=np.float32)
LABELS = ["dog", "cat", "fish", "cat"]


def test_render_csv_is_one_label_per_line() -> None:
    assert render(LOGITS, CLASSES, CSV) == b"dog\ncat\nfish\ncat\n"


def softmax(logits: np.ndarray) -> np.ndarray:
    exponentials = np.exp(logits.astype(np.float64) - logits.max(axis=1, keepdims=True))
    return exponentials / exponentials.sum(axis=1, keepdims=True)


def check_predictions(predictions: list[dict]) -> None:
    assert [prediction["label"] for prediction in predictions] == LABELS
    for prediction, expected in zip(predictions, softmax(LOGITS), strict=True):
        probabilities = prediction["probabilities"]
        assert list(probabilities) == list(CLASSES)
        np.testing.assert_allclose(list(probabilities.values()), expected, atol=1e-6)
        assert sum(probabilities.values()) == pytest.approx(1, abs=1e-5)


def test_render_json_holds_labels_and_probabilities() -> None:
    document = json.loads(render(LOGITS, CLASSES, JSON))
    assert list(document) == ["predictions"]
    check_predictions(document["predictions"])


def test_render_json_lines_is_one_object_per_line() -> None:
    body = render(LOGITS, CLASSES, JSON_LINES).decode()
    assert body.endswith("\n")
    lines = body.splitlines()
    assert len(lines) == len(LOGITS)
    check_predictions([json.loads(line) for line in lines])


def test_payload_error_body_is_json_with_row_and_column() -> None:
    assert json.loads(PayloadError("bad", 400, row=3, column=2).body()) == {"error": "bad", "row": 3, "column": 2}
    assert json.loads(PayloadError("too big", 413).body()) == {"error": "too big"}


# NumPy bodies.


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "array", [np.array(ROWS), np.array(ROWS, dtype=np.float32), np.array(ROWS[0]), np.asfortranarray(ROWS)]
)
def test_npy_rows(array: np.ndarray) -> None:
    np.testing.assert_array_equal(parse(npy_bytes(array), NPY), np.atleast_2d(array).astype(np.float64))


def test_npy_is_read_in_place_without_copying_the_body() -> None:
    body = bytearray(npy_bytes(np.array(ROWS)))
    array = arrays._npy(body)
    assert np.shares_memory(array, np.frombuffer(body, dtype=np.uint8))


@pytest.mark.parametrize(
    "body, status, fragment",
    [
        (npy_bytes(np.array(["a", "b", "c"])), 415, "numbers"),
        (npy_bytes(np.array([1 + 2j, 3, 4])), 415, "numbers"),
        (npy_bytes(np.zeros(3, dtype=[("a", "<f8")])), 415, "numbers"),
        (npy_bytes(np.zeros((2, 4))), 400, "shape"),
        (npy_bytes(np.zeros((2, 3, 1))), 400, "shape"),
        (npy_bytes(np.zeros((0, 3))), 400, "no rows"),
        (npy_bytes(np.array([1.0, np.nan, 3.0])), 400, "finite"),
        (npy_bytes(np.array(ROWS))[:-8], 400, "bytes"),
        (b"\x93NUMPY\x09\x00", 400, ".npy"),
        (b"1,2,3", 400, ".npy"),
    ],
)
def test_bad_npy_bodies_are_4xx(body: bytes, status: int, fragment: str) -> None:
    with pytest.raises(PayloadError) as raised:
        payload.parse(body, NPY, SCHEMA)
    assert raised.value.status == status and fragment in str(raised.value)


def test_npy_nan_is_a_missing_value_filled_in_only_where_training_had_missing_values() -> None:
    """NaN is how arrays carry a missing cell: its code is NaN, which the encoding fills with the training median."""
    depth_may_miss = Encoding(
        (Column("height", NUMERIC), Column("width", NUMERIC), Column("depth", NUMERIC, fill=5.0)), "label"
    )
    codes = payload.parse(npy_bytes(np.array([[1.0, 2.0, np.nan]])), NPY, Schema(depth_may_miss)).features
    assert np.isnan(codes[0, 2])
    np.testing.assert_array_equal(depth_may_miss.transform(codes), [[1.0, 2.0, 5.0]])
    with pytest.raises(PayloadError) as raised:
        payload.parse(npy_bytes(np.array([[1.0, np.nan, 3.0]])), NPY, Schema(depth_may_miss))
    assert (raised.value.row, raised.value.column) == (1, 2)
    assert "training had no missing values in this column" in str(raised.value)


def test_an_object_array_is_never_unpickled() -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.array([object(), 1, 2], dtype=object), allow_pickle=True)
    with pytest.raises(PayloadError) as raised:
        payload.parse(buffer.getvalue(), NPY, SCHEMA)
    assert raised.value.status == 415


def npz_bytes(compressed: bool = False, **named: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **named)
    return buffer.getvalue()


def test_npz_one_array_or_the_one_named_instances() -> None:
    np.testing.assert_array_equal(parse(npz_bytes(rows=np.array(ROWS)), NPZ), ROWS)
    np.testing.assert_array_equal(parse(npz_bytes(instances=np.array(ROWS), ids=np.arange(3)), NPZ), ROWS)
    error = rejected(npz_bytes(a=np.array(ROWS), b=np.array(ROWS)), NPZ)
    assert "['a', 'b']" in str(error) and "instances" in str(error)
    assert "not a NumPy .npz" in str(rejected(b"PK\x03\x04 broken", NPZ))


def test_an_npz_that_unpacks_far_beyond_its_size_is_refused() -> None:
    bomb = npz_bytes(compressed=True, instances=np.zeros((300_000, 3)))
    with pytest.raises(PayloadError) as raised:
        payload.parse(bomb, NPZ, SCHEMA)
    assert raised.value.status == 413


# Large bodies in pieces: the same rows and lines as the whole body, rows numbered across pieces.


def test_pieces_give_the_rows_and_lines_of_the_whole_body() -> None:
    lines = ["depth,height,width", *[f"{r},{r + 1},{r + 2}" for r in range(300)]]
    lines[50] = lines[150] = ""
    body = ("\n".join(lines) + "\n").encode()
    whole = payload.parse(body, CSV, SCHEMA)
    pieces = list(payload.parse_pieces(body, CSV, SCHEMA, piece_bytes=256))
    assert len(pieces) > 5
    np.testing.assert_array_equal(np.concatenate([piece.features for piece in pieces]), whole.features)
    offsets = np.cumsum([0, *(len(piece.features) for piece in pieces)])
    glued = [
        np.where(piece.lines >= 0, piece.lines + offset, piece.lines)
        for piece, offset in zip(pieces, offsets, strict=False)
    ]
    np.testing.assert_array_equal(np.concatenate(glued), whole.lines)
    # The header's column order holds for every piece, not only the first.
    np.testing.assert_array_equal(pieces[-1].features[-1], [299 + 1, 299 + 2, 299])


def test_an_error_in_a_later_piece_names_its_row_in_the_whole_body() -> None:
    lines = [f"{r},{r},{r}" for r in range(200)]
    lines[180] = "1,x,3"
    body = "\n".join(lines).encode()
    with pytest.raises(PayloadError) as raised:
        list(payload.parse_pieces(body, CSV, SCHEMA, piece_bytes=100))
    assert (raised.value.row, raised.value.column) == (181, 2)


# Answers.


def test_npy_answers_are_labels_and_probabilities_np_load_reads() -> None:
    answer = np.load(io.BytesIO(render(LOGITS, CLASSES, NPY)), allow_pickle=False)
    assert list(answer["label"]) == LABELS
    np.testing.assert_allclose(answer["probabilities"], softmax(LOGITS), atol=1e-6)


def test_line_answers_keep_blank_lines_and_answer_the_header_with_the_label_column() -> None:
    lines = np.array([HEADER_LINE, 0, BLANK_LINE, 1, 2, 3, BLANK_LINE])
    csv_answer = render(LOGITS, CLASSES, CSV, lines, label_column="kind").decode()
    assert csv_answer == "kind\ndog\n\ncat\nfish\ncat\n\n"
    jsonl = render(LOGITS, CLASSES, JSON_LINES, lines, label_column="kind").decode().split("\n")[:-1]
    assert [json.loads(line) for line in jsonl][0] == {"header": "kind"}
    assert jsonl[2] == "{}" and len(jsonl) == len(lines)


def test_an_answer_rendered_in_pieces_is_the_whole_answer() -> None:
    for accept in (CSV, JSON, JSON_LINES, NPY):
        answer = Answer(CLASSES, "label", accept, rows=len(LOGITS))
        pieces = answer.head() + answer.piece(LOGITS[:1]) + answer.piece(LOGITS[1:3]) + answer.piece(LOGITS[3:])
        assert pieces + answer.tail() == render(LOGITS, CLASSES, accept), accept
