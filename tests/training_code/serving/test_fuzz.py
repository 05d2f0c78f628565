"""Property tests: any body gives feature rows or a 4xx PayloadError, in process and over HTTP; never a 500."""

from __future__ import annotations

import io
import json

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tests.encodings import numbers_only
from tests.training_code.serving.conftest import ServerProcess, TrainedModel, child_pids, invocation_headers
from training_code.contract import (
    CSV,
    EXECUTION_PARAMETERS_PATH,
    INVOCATIONS_PATH,
    JSON,
    JSON_LINES,
    LINE_CONTENT_TYPES,
    NPY,
    NPZ,
    PING_PATH,
    RESPONSE_CONTENT_TYPES,
)
from training_code.serving import payload
from training_code.serving.errors import PayloadError
from training_code.serving.schema import Schema

SCHEMA = Schema(numbers_only(("height", "width", "depth")))
NAMES = SCHEMA.feature_names
CONTENT_TYPES = (CSV, JSON, JSON_LINES)
ALL_CONTENT_TYPES = (*CONTENT_TYPES, NPY, NPZ)

# No example database: the tests write nothing outside their temporary directories.
in_process = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def check_parse(body: bytes, content_type: str, schema: Schema = SCHEMA) -> np.ndarray | None:
    """The parse property: a finite float64 matrix of the schema's width, or a 4xx error. A line-based body maps
    each of its lines, in order, to a row, a blank or the header, and every row comes from exactly one line; others
    have at least one row."""
    try:
        parsed = payload.parse(body, content_type, schema)
    except PayloadError as error:
        assert 400 <= error.status < 500
        assert json.loads(error.body())["error"]
        return None
    matrix = parsed.features
    assert isinstance(matrix, np.ndarray)
    assert matrix.dtype == np.float64
    assert matrix.ndim == 2 and matrix.shape[1] == len(schema.feature_names)
    assert np.isfinite(matrix).all()
    if content_type in LINE_CONTENT_TYPES:
        text = body.decode("utf-8-sig")
        assert len(parsed.lines) == text.count("\n") + (0 if text.endswith("\n") else 1)
        rows = parsed.lines[parsed.lines >= 0]
        np.testing.assert_array_equal(rows, np.arange(len(matrix)))
        assert set(parsed.lines[parsed.lines < 0]) <= {payload.BLANK_LINE, payload.HEADER_LINE}
    else:
        assert parsed.lines is None and matrix.shape[0] >= 1
    return matrix


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=8),
    st.sampled_from(NAMES),
)
json_keys = st.one_of(st.sampled_from([*NAMES, SCHEMA.label_column, "features", "instances"]), st.text(max_size=6))
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(st.lists(children, max_size=6), st.dictionaries(json_keys, children, max_size=5)),
    max_leaves=25,
)
number_tokens = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.floats().map(repr),
    st.floats(width=32, allow_nan=False, allow_infinity=False).map(lambda value: f"{value:.4e}"),
)
junk_tokens = st.one_of(
    st.sampled_from(
        ["", " ", "nan", "-inf", "1e999", '"', '"1"', '""', "a", *NAMES, "label", "\t", "1_0", "0x1", "+", "-", ".",
         "e5", "\u2028", "\x1c", "\x85", "\x00", "'", ";", "\\", "1,2", "\ufeff1", "\u0661", "１", "True"]
    ),
    st.text(max_size=4),
)  # fmt: skip
csv_lines = st.lists(st.one_of(number_tokens, junk_tokens), max_size=5).map(",".join)
header_lines = st.one_of(
    st.permutations(NAMES).map(",".join),
    st.permutations([*NAMES, SCHEMA.label_column]).map(",".join),
    st.lists(st.sampled_from([*NAMES, SCHEMA.label_column, "x"]), max_size=5).map(",".join),
)
line_separators = st.sampled_from(["\n", "\r\n", "\r", "\n\n", "\u2028", "\x85"])


@st.composite
def csv_texts(draw: st.DrawFn) -> str:
    lines = draw(st.lists(csv_lines, min_size=1, max_size=6))
    if draw(st.booleans()):
        lines.insert(0, draw(header_lines))
    return draw(line_separators).join(lines)


def check_every_content_type(body: bytes) -> None:
    for content_type in ALL_CONTENT_TYPES:
        check_parse(body, content_type)


@in_process
@given(body=st.binary(max_size=300))
# Bodies that str.splitlines() breaks into nothing but empty lines, though bytes.strip() leaves them non-empty.
@example(body=b"\x1c")
@example(body="\u2028".encode())
@example(body="\n\x85 \x1e".encode())
def test_any_bytes(body: bytes) -> None:
    check_every_content_type(body)


@in_process
@given(text=st.text(max_size=200))
@example(text="\u2029")
def test_any_text(text: str) -> None:
    check_every_content_type(text.encode())


@settings(in_process, max_examples=200)
@given(value=json_values, lines=st.lists(json_values, max_size=3))
def test_any_json_value(value: object, lines: list[object]) -> None:
    check_every_content_type(json.dumps(value).encode())
    check_every_content_type(json.dumps({"instances": value}).encode())
    check_every_content_type("\n".join(json.dumps(line) for line in [value, *lines]).encode())


@in_process
@given(text=csv_texts())
@example(text="\x1d\x1e")
def test_csv_like_text(text: str) -> None:
    check_every_content_type(text.encode())


finite_matrices = st.integers(1, 12).flatmap(
    lambda rows: arrays(np.float64, (rows, len(NAMES)), elements=st.floats(allow_nan=False, allow_infinity=False))
)


@in_process
@given(
    matrix=finite_matrices,
    order=st.permutations(range(len(NAMES))),
    header=st.sampled_from(["none", "model-order", "permuted", "permuted-with-label"]),
    quoted=st.booleans(),
    blank_lines=st.booleans(),
    separator=st.sampled_from(["\n", "\r\n"]),
)
def test_csv_round_trip(matrix, order, header, quoted, blank_lines, separator) -> None:
    """Finite numbers written as CSV, in whatever layout, come back exactly, in the model's column order."""
    columns = list(range(len(NAMES))) if header in ("none", "model-order") else list(order)
    names = [NAMES[column] for column in columns]
    cells = [[repr(value) for value in row] for row in matrix[:, columns].tolist()]
    if header == "permuted-with-label":
        names.append(SCHEMA.label_column)
        cells = [[*row, f"class {index}"] for index, row in enumerate(cells)]
    if quoted:
        names, cells = [f'"{name}"' for name in names], [[f'"{cell}"' for cell in row] for row in cells]
    lines = [",".join(row) for row in cells]
    if header != "none":
        lines.insert(0, ",".join(names))
    text = (separator * 2 if blank_lines else separator).join(lines)

    parsed = check_parse(text.encode(), CSV)

    assert parsed is not None, text
    np.testing.assert_array_equal(parsed, matrix)


@in_process
@given(matrix=finite_matrices, archive=st.booleans(), dtype=st.sampled_from(["<f8", "<f4", ">f8", "<i8"]))
def test_numpy_round_trip(matrix, archive, dtype) -> None:
    """What the SageMaker SDK's NumpySerializer sends (np.save), or np.savez, comes back as the same rows."""
    # float32 holds up to about 3.4e38, int64 up to about 9.2e18: values are clipped into what the type holds.
    bound = {"<f4": 3e38, "<i8": 1e15}.get(dtype, np.inf)
    values = np.clip(matrix, -bound, bound).astype(dtype)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, instances=values) if archive else np.save(buffer, values)

    parsed = check_parse(buffer.getvalue(), NPZ if archive else NPY)

    assert parsed is not None
    np.testing.assert_array_equal(parsed, values.astype(np.float64))


@in_process
@given(
    matrix=finite_matrices,
    layout=st.sampled_from(["rows", "instances", "features", "objects", "flat"]),
    lines=st.booleans(),
    indices=st.permutations(range(len(NAMES))),
)
def test_json_round_trip(matrix, layout, lines, indices) -> None:
    rows = matrix.tolist()
    if layout == "features":
        rows = [{"features": row} for row in rows]
    elif layout == "objects":
        rows = [{NAMES[index]: row[index] for index in indices} for row in rows]
    if lines:
        text, content_type = "\n".join(json.dumps(row) for row in rows), JSON_LINES
    else:
        document = {"rows": rows, "instances": {"instances": rows}, "flat": rows[0]}.get(layout, rows)
        text, content_type = json.dumps(document), JSON
        if layout == "flat":
            matrix = matrix[:1]
        elif layout == "instances":
            text = json.dumps({"instances": rows})
        elif layout in ("features", "objects") and len(rows) == 1 and lines is False:
            text = json.dumps(rows[0])  # one row as an object of its own

    parsed = check_parse(text.encode(), content_type)

    assert parsed is not None, text
    np.testing.assert_array_equal(parsed, matrix)


header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)


@in_process
@given(content_type=st.one_of(st.none(), header_text), accept=st.one_of(st.none(), header_text))
def test_content_type_and_accept_headers(content_type: str | None, accept: str | None) -> None:
    try:
        chosen = payload.request_content_type(content_type)
    except PayloadError as error:
        assert error.status == 415
        chosen = CSV
    try:
        assert payload.response_content_type(accept, chosen) in RESPONSE_CONTENT_TYPES
    except PayloadError as error:
        assert error.status in (400, 406)


# Over HTTP: one server with two workers, random requests.


@st.composite
def http_requests(draw: st.DrawFn, rows: list[str]) -> tuple[str, str, dict[str, str], bytes]:
    """(method, path, headers, body), mostly POST /invocations with a body that is sometimes valid."""
    valid_lines = st.sampled_from(rows)
    body = draw(
        st.one_of(
            st.binary(max_size=300),
            st.text(max_size=200).map(str.encode),
            json_values.map(lambda value: json.dumps(value).encode()),
            csv_texts().map(str.encode),
            st.tuples(
                st.lists(st.one_of(valid_lines, csv_lines, header_lines), min_size=1, max_size=5), line_separators
            ).map(lambda parts: parts[1].join(parts[0]).encode()),
            st.lists(valid_lines, min_size=1, max_size=4).map(
                lambda lines: json.dumps([[float(value) for value in line.split(",")] for line in lines]).encode()
            ),
        )
    )
    known_types = ["text/csv; charset=utf-8", "application/x-jsonlines", "text/plain", ""]
    content_type = draw(st.one_of(st.sampled_from([*CONTENT_TYPES, *known_types]), header_text, st.none()))
    accept = draw(st.one_of(st.none(), st.sampled_from([*CONTENT_TYPES, "*/*", "text/*", "text/html"]), header_text))
    method, path = draw(
        st.one_of(
            st.just(("POST", INVOCATIONS_PATH)),
            st.tuples(
                st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
                st.sampled_from([INVOCATIONS_PATH, PING_PATH, EXECUTION_PARAMETERS_PATH, "/", "/invocations/x"]),
            ),
        )
    )
    return method, path, invocation_headers(content_type, accept), body


def check_http_answer(server: ServerProcess, request: tuple[str, str, dict[str, str], bytes], classes) -> None:
    method, path, headers, body = request
    connection = server.connection(timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        status, content_type, answer = response.status, response.getheader("content-type"), response.read()
    finally:
        connection.close()
    assert status < 500, (request, answer)
    if status != 200:
        assert content_type == JSON
        assert json.loads(answer)["error"]
    elif (method, path) == ("POST", INVOCATIONS_PATH):
        assert content_type in RESPONSE_CONTENT_TYPES
        text = answer.decode()
        if content_type == CSV:
            labels = [line for line in text.split("\n")[:-1] if line not in ("", "label")]
        elif content_type == JSON:
            labels = [prediction["label"] for prediction in json.loads(text)["predictions"]]
        elif content_type == NPY:
            labels = list(np.load(io.BytesIO(answer), allow_pickle=False)["label"])
        else:
            answers = [json.loads(line) for line in text.split("\n")[:-1]]
            labels = [line["label"] for line in answers if "label" in line]
        assert set(labels) <= set(classes)


def test_random_requests_over_http(server: ServerProcess, trained_model: TrainedModel) -> None:
    workers = child_pids(server.process.pid)
    assert workers
    rows = trained_model.rows

    @settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(request=http_requests(rows.csv_lines()))
    def answers_without_a_server_error(request) -> None:
        check_http_answer(server, request, rows.classes)

    answers_without_a_server_error()

    # Every worker survived: the same processes still run and answer.
    assert server.process.poll() is None
    assert child_pids(server.process.pid) == workers
    connection = server.connection(timeout=5)
    try:
        connection.request("GET", PING_PATH)
        assert connection.getresponse().status == 200
    finally:
        connection.close()
