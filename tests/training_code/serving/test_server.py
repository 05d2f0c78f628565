"""The inference server over real HTTP: `python -m training_code.serving serve` in a subprocess."""

from __future__ import annotations

import io
import json
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tests.training_code.conftest import PROJECT_ROOT
from tests.training_code.serving.conftest import (
    SERVING_VARIABLES,
    Response,
    ServerProcess,
    SplitRows,
    TrainedModel,
    child_pids,
    free_port,
    running_server,
    serve_command,
    server_environment,
)
from training_code.artifact import write_archive
from training_code.contract import (
    BATCH_VARIABLE,
    CSV,
    DEFAULT_ACCEPT_VARIABLE,
    DEFAULT_MAX_PAYLOAD_MB,
    DEFAULT_MODEL_DIR,
    EXECUTION_PARAMETERS_PATH,
    INVOCATIONS_PATH,
    JSON,
    JSON_LINES,
    MAX_PAYLOAD_VARIABLE,
    MODEL_ARCHIVE,
    MODEL_METADATA_FILE,
    NPY,
    NPZ,
    PING_PATH,
    PORT_VARIABLE,
    SERVE_COMMAND,
    SERVING_WEIGHTS_FILE,
    WORKERS_VARIABLE,
)
from training_code.serving.__main__ import main as serving_main

MEGABYTE = 1024 * 1024
# Probabilities travel rounded to 6 decimals; the numpy forward pass agrees with torch to about 1e-7.
TOLERANCE = 1e-5
BLAS_THREADS = "OPENBLAS_NUM_THREADS"


def csv_body(rows: SplitRows, indices=None) -> bytes:
    return ("\n".join(rows.csv_lines(indices)) + "\n").encode()


def number_rows(rows: SplitRows, indices=None) -> list[list[float]]:
    chosen = range(len(rows)) if indices is None else indices
    return [[float(value) for value in rows.texts[index]] for index in chosen]


def body_for(rows: SplitRows, content_type: str, indices=None) -> bytes:
    if content_type == CSV:
        return csv_body(rows, indices)
    if content_type == JSON:
        return json.dumps({"instances": number_rows(rows, indices)}).encode()
    return "".join(json.dumps(row) + "\n" for row in number_rows(rows, indices)).encode()


def answer_of(response: Response) -> tuple[list[str], np.ndarray | None]:
    """The labels of a 200 answer, and the probabilities (rows in the order of the classes) for JSON types."""
    assert response.status == 200, response.body[:500]
    # Framed by Content-Length, not chunked, unless the body was larger than a real-time one (streamed as rendered).
    if response.headers.get("transfer-encoding") != "chunked":
        assert response.headers["content-length"] == str(len(response.body))
    content_type = response.headers["content-type"]
    text = response.body.decode()
    if content_type == CSV:
        assert text.endswith("\n")
        return [line for line in text.splitlines() if line], None
    if content_type == JSON:
        predictions = json.loads(text)["predictions"]
    else:
        assert content_type == JSON_LINES and text.endswith("\n")
        predictions = [json.loads(line) for line in text.splitlines()]
    labels = [prediction["label"] for prediction in predictions]
    probabilities = np.array([list(prediction["probabilities"].values()) for prediction in predictions])
    return labels, probabilities


def check_answer(response: Response, rows: SplitRows, indices=None) -> None:
    labels, probabilities = answer_of(response)
    assert labels == rows.reference_labels(indices)
    if probabilities is not None:
        expected = rows.reference if indices is None else rows.reference[np.asarray(indices)]
        np.testing.assert_allclose(probabilities, expected, rtol=0, atol=TOLERANCE)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=TOLERANCE)


def check_error(response: Response, status: int) -> dict:
    assert response.status == status, response.body[:500]
    assert response.headers["content-type"] == JSON
    assert response.headers["content-length"] == str(len(response.body))
    error = json.loads(response.body)
    assert isinstance(error["error"], str) and error["error"]
    return error


# The hosting contract's routes.


def test_ping_answers_200_with_an_empty_body(server: ServerProcess) -> None:
    response = server.request("GET", PING_PATH)
    assert (response.status, response.body) == (200, b"")


def test_head_ping_answers_like_get_without_a_body(server: ServerProcess) -> None:
    response = server.request("HEAD", PING_PATH)
    assert (response.status, response.body, response.headers["content-length"]) == (200, b"", "0")


def test_execution_parameters(server: ServerProcess) -> None:
    response = server.request("GET", EXECUTION_PARAMETERS_PATH)
    assert response.status == 200
    assert response.headers["content-type"] == JSON
    assert response.json() == {"MaxConcurrentTransforms": 2, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 6}


@pytest.mark.parametrize(
    "method, path", [("GET", "/"), ("GET", "/predict"), ("POST", "/invocation"), ("GET", "/ping/")]
)
def test_unknown_paths_are_404(server: ServerProcess, method: str, path: str) -> None:
    error = check_error(server.request(method, path, b"1,2" if method == "POST" else None), 404)
    assert path in error["error"]


@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("POST", PING_PATH, "GET, HEAD"),
        ("DELETE", PING_PATH, "GET, HEAD"),
        ("GET", INVOCATIONS_PATH, "POST"),
        ("PUT", INVOCATIONS_PATH, "POST"),
        ("POST", EXECUTION_PARAMETERS_PATH, "GET"),
    ],
)
def test_wrong_methods_are_405_with_allow(server: ServerProcess, method: str, path: str, allowed: str) -> None:
    response = server.request(method, path, b"" if method in ("POST", "PUT") else None)
    check_error(response, 405)
    assert response.headers["allow"] == allowed


# Predictions.


@pytest.mark.parametrize("accept", [None, CSV, JSON, JSON_LINES])
@pytest.mark.parametrize("content_type", [CSV, JSON, JSON_LINES])
def test_predictions_equal_the_torch_model(
    server: ServerProcess, trained_model: TrainedModel, content_type: str, accept: str | None
) -> None:
    rows = trained_model.rows
    response = server.invoke(body_for(rows, content_type), content_type, accept)

    assert response.headers["content-type"] == (accept or content_type)
    check_answer(response, rows)


def reversed_header_csv(rows: SplitRows) -> bytes:
    header = ",".join(reversed(rows.feature_names))
    return "\n".join([header, *(",".join(reversed(text)) for text in rows.texts)]).encode()


def labelled_csv(rows: SplitRows) -> bytes:
    """The test split as the file holds it: a header with the label column, and the labels."""
    header = ",".join([*rows.feature_names, rows.label_column])
    lines = [",".join([*text, label]) for text, label in zip(rows.texts, rows.labels, strict=True)]
    return "\r\n".join([header, *lines]).encode()


def quoted_csv(rows: SplitRows) -> bytes:
    return "\n".join(",".join(f'"{value}"' for value in text) for text in rows.texts).encode()


def objects_json(rows: SplitRows) -> bytes:
    names = list(reversed(rows.feature_names))
    instances = [dict(zip(names, reversed(row), strict=True)) for row in number_rows(rows)]
    return json.dumps({"instances": instances}).encode()


def features_json(rows: SplitRows) -> bytes:
    return json.dumps([{"features": row} for row in number_rows(rows)]).encode()


def features_json_lines(rows: SplitRows) -> bytes:
    return "\n".join(json.dumps({"features": row}) for row in number_rows(rows)).encode()


@pytest.mark.parametrize(
    "content_type, make_body",
    [
        ("text/csv; charset=utf-8", lambda rows: csv_body(rows)),
        (CSV, reversed_header_csv),
        (CSV, labelled_csv),
        (CSV, quoted_csv),
        (JSON, lambda rows: json.dumps(number_rows(rows)).encode()),
        (JSON, objects_json),
        ("application/json; charset=utf-8", features_json),
        ("application/x-jsonlines", features_json_lines),
        ("application/jsonl", lambda rows: body_for(rows, JSON_LINES)),
    ],
    ids=["csv-charset", "csv-reversed-header", "csv-with-labels", "csv-quoted", "json-list", "json-objects",
         "json-features", "x-jsonlines", "jsonl"],
)  # fmt: skip
def test_request_layouts(server: ServerProcess, trained_model: TrainedModel, content_type: str, make_body) -> None:
    check_answer(server.invoke(make_body(trained_model.rows), content_type, JSON), trained_model.rows)


def test_a_single_flat_json_row(server: ServerProcess, trained_model: TrainedModel) -> None:
    rows = trained_model.rows
    response = server.invoke(json.dumps(number_rows(rows, [7])[0]).encode(), JSON)
    check_answer(response, rows, [7])


@pytest.mark.parametrize(
    "accept, expected",
    [("*/*", CSV), ("application/json;q=0.4, application/jsonlines;q=0.8", JSON_LINES), ("text/html, */*;q=0.1", CSV)],
)
def test_accept_negotiation_over_http(server: ServerProcess, trained_model: TrainedModel, accept, expected) -> None:
    response = server.invoke(csv_body(trained_model.rows, [0, 1]), CSV, accept)
    assert response.headers["content-type"] == expected
    check_answer(response, trained_model.rows, [0, 1])


@pytest.mark.parametrize("content_type", [CSV, JSON, JSON_LINES])
def test_500_rows_in_one_request_come_back_in_order(
    server: ServerProcess, trained_model: TrainedModel, content_type: str
) -> None:
    rows = trained_model.rows
    indices = np.random.default_rng(1).integers(0, len(rows), size=500)

    response = server.invoke(body_for(rows, content_type, indices), content_type, JSON_LINES)

    check_answer(response, rows, indices)


# Bad input: a 4xx JSON answer that says what is wrong.


def bad_requests(rows: SplitRows) -> list[tuple[str, str | None, str | None, bytes, int, str, dict]]:
    """(id, content type, accept, body, status, message fragment, expected row and column)."""
    names = rows.feature_names
    line = rows.csv_lines([0])[0]
    values = line.split(",")
    numbers = number_rows(rows, [0, 1])
    with_bad = ",".join([*values[:4], "abc", *values[5:]])
    header = ",".join(names)
    return [
        ("csv-malformed", CSV, None, f'{line}\n"{"9" * 200_000}"'.encode(), 400, "CSV", {}),
        ("csv-too-few-values", CSV, None, f"{line}\n1,2,3\n".encode(), 400, "row 2", {"row": 2}),
        ("csv-too-many-values", CSV, None, f"{line},1\n".encode(), 400, "row 1", {"row": 1}),
        ("csv-not-a-number", CSV, None, f"{line}\n{with_bad}".encode(), 400, names[4], {"row": 2, "column": 5}),
        ("csv-nan", CSV, None, f"nan{line[len(values[0]):]}".encode(), 400, "missing value", {"row": 1, "column": 1}),
        ("csv-inf", CSV, None, f"{line}\n{line}\n-inf{line[len(values[0]):]}".encode(), 400, "finite", {"row": 3}),
        ("csv-1e999", CSV, None, f"1e999{line[len(values[0]):]}".encode(), 400, "finite", {"row": 1, "column": 1}),
        ("csv-empty-value", CSV, None, f",{line.split(',', 1)[1]}".encode(), 400, "empty", {"row": 1, "column": 1}),
        ("csv-unknown-column", CSV, None, f"{header},colour\n{line},1".encode(), 400, "colour", {"row": 0}),
        ("csv-missing-column", CSV, None, f"{header.rsplit(',', 1)[0]}\n1".encode(), 400, names[-1], {"row": 0}),
        ("csv-duplicate-column", CSV, None, f"{header},{names[0]}\n{line},1".encode(), 400, "twice", {"row": 0}),
        ("json-malformed", JSON, None, json.dumps(numbers).encode()[:-1], 400, "malformed JSON", {}),
        ("json-no-rows", JSON, None, b'{"instances": []}', 400, "no rows", {}),
        ("json-not-rows", JSON, None, b'{"data": [1]}', 400, "instances", {}),
        ("json-short-row", JSON, None, json.dumps([numbers[0], numbers[1][:-1]]).encode(), 400, "row 2", {"row": 2}),
        ("json-boolean", JSON, None, json.dumps([[True, *numbers[0][1:]]]).encode(), 400, "true", {"column": 1}),
        ("json-string", JSON, None, json.dumps([[*numbers[0][:-1], "7"]]).encode(), 400, names[-1], {"column": 64}),
        ("json-nan", JSON, None, json.dumps([numbers[0], [*numbers[1][:-1], float("nan")]]).encode(), 400, "finite",
         {"row": 2, "column": 64}),
        ("json-unknown-field", JSON, None, json.dumps([{"colour": 1}]).encode(), 400, "colour", {"row": 1}),
        ("jsonl-malformed-line", JSON_LINES, None, f"{json.dumps(numbers[0])}\n[1,".encode(), 400, "row 2", {"row": 2}),
        ("empty-body", CSV, None, b"", 400, "empty", {}),
        ("blank-body", JSON, None, b" \r\n\n", 400, "empty", {}),
        ("not-utf8", CSV, None, line.encode() + b"\xff", 400, "UTF-8", {}),
        ("unsupported-content-type", "text/plain", None, line.encode(), 415, "text/plain", {}),
        ("missing-content-type", None, None, line.encode(), 415, "Content-Type", {}),
        ("unsupported-accept", CSV, "text/html", line.encode(), 406, "text/html", {}),
        ("accept-q-not-a-number", CSV, "text/csv;q=x", line.encode(), 400, "q-value", {}),
    ]  # fmt: skip


BAD_REQUESTS = [
    "csv-malformed", "csv-too-few-values", "csv-too-many-values", "csv-not-a-number", "csv-nan", "csv-inf",
    "csv-1e999", "csv-empty-value", "csv-unknown-column", "csv-missing-column", "csv-duplicate-column",
    "json-malformed", "json-no-rows", "json-not-rows",
    "json-short-row", "json-boolean", "json-string", "json-nan", "json-unknown-field", "jsonl-malformed-line",
    "empty-body", "blank-body", "not-utf8", "unsupported-content-type",
    "missing-content-type", "unsupported-accept", "accept-q-not-a-number",
]  # fmt: skip


@pytest.fixture(scope="module")
def bad_request_cases(trained_model: TrainedModel) -> dict[str, tuple]:
    cases = {case[0]: case[1:] for case in bad_requests(trained_model.rows)}
    assert list(cases) == BAD_REQUESTS
    return cases


@pytest.mark.parametrize("case", BAD_REQUESTS)
def test_bad_input_is_a_4xx_json_answer(server: ServerProcess, bad_request_cases: dict[str, tuple], case: str) -> None:
    content_type, accept, body, status, fragment, where = bad_request_cases[case]

    error = check_error(server.invoke(body, content_type, accept), status)

    assert fragment in error["error"]
    for key, value in where.items():
        assert error[key] == value


def test_the_server_still_answers_after_bad_input(server: ServerProcess, trained_model: TrainedModel) -> None:
    connection = server.connection()
    try:
        for body, content_type in [
            (b"\xff", CSV),
            (b"[1,", JSON),
            (b"", JSON_LINES),
            (csv_body(trained_model.rows), CSV),
        ]:
            connection.request("POST", INVOCATIONS_PATH, body=body, headers={"Content-Type": content_type})
            last = Response.read(connection.getresponse())
    finally:
        connection.close()
    check_answer(last, trained_model.rows)


# Concurrency: answers split correctly out of the micro-batches.


def test_concurrent_requests_get_their_own_answers(server: ServerProcess, trained_model: TrainedModel) -> None:
    rows = trained_model.rows
    rng = np.random.default_rng(2)
    content_types = (CSV, JSON, JSON_LINES)
    requests = []
    for number in range(64):
        indices = rng.integers(0, len(rows), size=int(rng.integers(1, 12)))
        content_type = content_types[number % 3]
        requests.append((indices, content_type, body_for(rows, content_type, indices)))
    sequential = [server.invoke(body, content_type, JSON) for _, content_type, body in requests]
    for (indices, _, _), response in zip(requests, sequential, strict=True):
        check_answer(response, rows, indices)
    threads, per_thread = 32, 20
    start = threading.Barrier(threads)

    def client(thread: int) -> list[tuple[int, Response]]:
        connection = server.connection()
        answers = []
        try:
            start.wait()
            for number in range(per_thread):
                chosen = (thread * 7 + number * 13) % len(requests)
                _, content_type, body = requests[chosen]
                headers = {"Content-Type": content_type, "Accept": JSON}
                connection.request("POST", INVOCATIONS_PATH, body=body, headers=headers)
                answers.append((chosen, Response.read(connection.getresponse())))
        finally:
            connection.close()
        return answers

    with ThreadPoolExecutor(threads) as pool:
        answers = [answer for result in pool.map(client, range(threads)) for answer in result]

    assert len(answers) == threads * per_thread
    for chosen, response in answers:
        labels, probabilities = answer_of(response)
        expected_labels, expected_probabilities = answer_of(sequential[chosen])
        assert labels == expected_labels
        np.testing.assert_allclose(probabilities, expected_probabilities, rtol=0, atol=2e-6)


# Formats SageMaker clients send, and line-for-line answers for batch transform.


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_numpy_rows_in_and_out(server: ServerProcess, trained_model: TrainedModel) -> None:
    """application/x-npy is what the SDK's PyTorch predictor sends and reads by default (np.save / np.load)."""
    rows = trained_model.rows
    indices = list(range(12))
    features = rows.features[indices]
    response = server.invoke(npy(features), NPY, NPY)
    assert response.status == 200 and response.headers["content-type"] == NPY
    answer = np.load(io.BytesIO(response.body), allow_pickle=False)
    assert list(answer["label"]) == rows.reference_labels(indices)
    np.testing.assert_allclose(answer["probabilities"], rows.reference[indices], rtol=0, atol=TOLERANCE)
    archive = io.BytesIO()
    np.savez(archive, instances=features.astype(np.float32))
    labels, _ = answer_of(server.invoke(archive.getvalue(), NPZ, CSV))
    assert labels == rows.reference_labels(indices)
    error = check_error(server.invoke(npy(np.array(["a", "b"])), NPY), 415)
    assert "numbers" in error["error"]
    error = check_error(server.invoke(npy(features[:, :5]), NPY), 400)
    assert "shape" in error["error"]


def test_every_input_line_gets_its_answer_line(server: ServerProcess, trained_model: TrainedModel) -> None:
    """Batch transform's JoinSource=Input pairs input and answer line by line: a header and blank lines keep theirs."""
    rows = trained_model.rows
    lines = [",".join(rows.feature_names), *rows.csv_lines([0, 1]), "", *rows.csv_lines([2]), "   "]
    body = ("\n".join(lines) + "\n").encode()
    labels = rows.reference_labels([0, 1, 2])
    csv_answer = server.invoke(body, CSV, CSV).body.decode().split("\n")
    assert csv_answer == [rows.label_column, labels[0], labels[1], "", labels[2], "", ""]
    jsonl_answer = [json.loads(line) for line in server.invoke(body, CSV, JSON_LINES).body.decode().splitlines()]
    assert [answer.get("label", answer.get("header")) for answer in jsonl_answer] == [
        rows.label_column, labels[0], labels[1], None, labels[2], None
    ]  # fmt: skip
    assert server.invoke(b"\n", CSV).body == b"\n", "a blank line alone is no error"
    assert server.invoke(f"{lines[0]}\n".encode(), CSV).body == f"{rows.label_column}\n".encode()


def test_one_json_row_object_is_one_row(server: ServerProcess, trained_model: TrainedModel) -> None:
    rows = trained_model.rows
    values = number_rows(rows, [5])[0]
    for document in ({"features": values}, dict(zip(rows.feature_names, values, strict=True))):
        labels, _ = answer_of(server.invoke(json.dumps(document).encode(), JSON))
        assert labels == rows.reference_labels([5])


# The payload limit, from the flag or from SageMaker's variable.


def csv_body_of_size(rows: SplitRows, size: int) -> bytes:
    """Valid CSV rows padded with blank lines (which are skipped) to exactly `size` bytes."""
    line = (rows.csv_lines([0])[0] + "\n").encode()
    body = line * (size // len(line))
    return body + b"\n" * (size - len(body))


@pytest.fixture(scope="module", params=["flag", "environment"])
def limited_server(
    request: pytest.FixtureRequest, trained_model: TrainedModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """A 1 MB limit: `--max-payload-mb 1 --workers 1 --port P` over contrary variables, or the variables alone; started
    without the BLAS thread count that the image sets and this test run sets for every process."""
    port, model_dir = free_port(), str(trained_model.model_dir)
    if request.param == "flag":
        arguments = ("--model-dir", model_dir, "--max-payload-mb", "1", "--workers", "1", "--port", str(port))
        environment = {MAX_PAYLOAD_VARIABLE: "6", WORKERS_VARIABLE: "3", PORT_VARIABLE: str(free_port())}
    else:
        arguments = ("--model-dir", model_dir)
        environment = {MAX_PAYLOAD_VARIABLE: "1", WORKERS_VARIABLE: "3", PORT_VARIABLE: str(port)}
    environment = {name: value for name, value in server_environment(**environment).items() if name != BLAS_THREADS}
    with running_server(tmp_path_factory.mktemp("server"), *arguments, port=port, environment=environment) as process:
        yield process


def test_settings_come_from_flags_over_variables(limited_server: ServerProcess) -> None:
    workers = 1 if "--workers" in limited_server.process.args else 3
    parameters = limited_server.request("GET", EXECUTION_PARAMETERS_PATH).json()
    assert parameters["MaxConcurrentTransforms"] == workers
    assert parameters["MaxPayloadInMB"] == 1
    spawned = [pid for pid in child_pids(limited_server.process.pid) if b"spawn_main" in command_line(pid)]
    assert len(spawned) == (workers if workers > 1 else 0)
    # Each worker loads numpy with one BLAS thread: more would compete with the other workers for the cores.
    assert all(f"{BLAS_THREADS}=1".encode() in process_file(pid, "environ").split(b"\0") for pid in spawned)


def process_file(pid: int, name: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return b""


def command_line(pid: int) -> bytes:
    return process_file(pid, "cmdline")


def test_a_body_at_the_limit_is_served(limited_server: ServerProcess, trained_model: TrainedModel) -> None:
    body = csv_body_of_size(trained_model.rows, MEGABYTE)
    response = limited_server.invoke(body, CSV)
    labels, _ = answer_of(response)
    assert labels == trained_model.rows.reference_labels([0]) * len([line for line in body.splitlines() if line])


def test_a_body_just_over_the_limit_is_413(limited_server: ServerProcess, trained_model: TrainedModel) -> None:
    error = check_error(limited_server.invoke(csv_body_of_size(trained_model.rows, MEGABYTE + 1), CSV), 413)
    assert str(MEGABYTE) in error["error"]


def send_chunked(server: ServerProcess, line: bytes, total: int) -> Response:
    """POSTs about `total` bytes of CSV in 64 KB chunks, without Content-Length."""

    def chunks() -> Iterator[bytes]:
        chunk = line * (65536 // len(line))
        sent = 0
        while sent + len(chunk) <= total:
            sent += len(chunk)
            yield chunk
        yield line * ((total - sent) // len(line))

    connection = server.connection()
    try:
        connection.request("POST", INVOCATIONS_PATH, body=chunks(), headers={"Content-Type": CSV}, encode_chunked=True)
        return Response.read(connection.getresponse())
    finally:
        connection.close()


def test_a_chunked_body_over_the_limit_is_413(limited_server: ServerProcess, trained_model: TrainedModel) -> None:
    line = (trained_model.rows.csv_lines([0])[0] + "\n").encode()
    check_error(send_chunked(limited_server, line, MEGABYTE + 100 * len(line)), 413)


def test_a_chunked_body_under_the_limit_is_served(limited_server: ServerProcess, trained_model: TrainedModel) -> None:
    line = (trained_model.rows.csv_lines([3])[0] + "\n").encode()
    response = send_chunked(limited_server, line, MEGABYTE - len(line))
    labels, _ = answer_of(response)
    assert len(labels) == (MEGABYTE - len(line)) // len(line)
    assert set(labels) == set(trained_model.rows.reference_labels([3]))


def test_an_asynchronous_size_body_is_served_where_the_variable_allows_it(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    """The asynchronous model sets SAGEMAKER_MAX_PAYLOAD_IN_MB above real-time's 6 MB (infra/serving/modes.py)."""
    port = free_port()
    environment = server_environment(**{MAX_PAYLOAD_VARIABLE: "24", PORT_VARIABLE: str(port), WORKERS_VARIABLE: "1"})
    # Over real-time's limit, so it takes the large-body path and its answer streams in several pieces.
    body = csv_body_of_size(trained_model.rows, (DEFAULT_MAX_PAYLOAD_MB + 1) * MEGABYTE)
    with running_server(tmp_path, "--model-dir", str(trained_model.model_dir), port=port, environment=environment) as s:
        labels, _ = answer_of(s.invoke(body, CSV))
        check_error(s.invoke(csv_body_of_size(trained_model.rows, 24 * MEGABYTE + 1), CSV), 413)
    assert labels == trained_model.rows.reference_labels([0]) * len([line for line in body.splitlines() if line])


# Shutdown.


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_exits_0_instead_of_waiting_to_be_killed(
    trained_model: TrainedModel, tmp_path: Path, workers: int
) -> None:
    port = free_port()
    arguments = ("--model-dir", str(trained_model.model_dir), "--port", str(port), "--workers", str(workers))
    with running_server(tmp_path, *arguments, port=port) as server:
        # SageMaker sends SIGKILL 30 s after SIGTERM; a server that hangs on SIGTERM outlives this wait.
        assert server.stop(timeout=25) == 0


@pytest.mark.parametrize("workers", [1, 2])
def test_a_request_in_flight_at_sigterm_is_answered(trained_model: TrainedModel, tmp_path: Path, workers: int) -> None:
    rows = trained_model.rows
    indices = np.arange(len(rows)).repeat(20)
    body = csv_body(rows, indices)
    port = free_port()
    arguments = ("--model-dir", str(trained_model.model_dir), "--port", str(port), "--workers", str(workers))
    with running_server(tmp_path, *arguments, port=port) as server:
        connection = server.connection()
        connection.putrequest("POST", INVOCATIONS_PATH)
        connection.putheader("Content-Type", CSV)
        connection.putheader("Accept", JSON)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders()
        connection.send(body[: len(body) // 2])
        time.sleep(0.3)
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        # Still draining: the server waits for the request it is reading.
        assert server.process.poll() is None
        connection.send(body[len(body) // 2 :])
        response = Response.read(connection.getresponse())
        connection.close()

        check_answer(response, rows, indices)
        assert server.process.wait(10) == 0


# Startup errors: one line on stderr and a non-zero exit, before the port is taken. The process's own exit is tested
# with a subprocess for the cases main() cannot see (a bad port variable, the default model directory); each bad input
# goes through main() in this process, as the entry point's argv and environment.


def run_server_command(*arguments: str, environment: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Runs the server with its port already taken: a server that got as far as listening would fail on that."""
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", port))
        taken.listen()
        return subprocess.run(
            serve_command(*arguments, "--port", str(port)),
            cwd=PROJECT_ROOT,
            env=server_environment(**(environment or {})),
            capture_output=True,
            text=True,
            timeout=60,
        )


def run_server_main(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *arguments: str,
    environment: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """main() as `python -m training_code.serving serve` runs it, with the port taken as in run_server_command."""
    for variable in SERVING_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    for variable, value in (environment or {}).items():
        monkeypatch.setenv(variable, value)
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", port))
        taken.listen()
        returncode = serving_main([SERVE_COMMAND, *arguments, "--port", str(port)])
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(["main"], returncode, captured.out, captured.err)


def check_one_line_error(result: subprocess.CompletedProcess, *named: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert any(name in lines[0] for name in named), lines[0]


def broken_model_dirs(trained_model: TrainedModel, root: Path) -> dict[str, tuple[Path, tuple[str, ...]]]:
    """Each a model directory and what its error must name (any of)."""

    def copy(name: str) -> Path:
        return Path(shutil.copytree(trained_model.model_dir, root / name))

    without_weights = copy("without-weights")
    (without_weights / SERVING_WEIGHTS_FILE).unlink()
    bad_metadata = copy("bad-metadata")
    (bad_metadata / MODEL_METADATA_FILE).write_text("{")
    (root / "empty").mkdir()
    bad_archive = root / "bad-archive"
    bad_archive.mkdir()
    (bad_archive / MODEL_ARCHIVE).write_bytes(b"\x1f\x8b\x08\x00 not a tar.gz")
    good_archive = root / "good-archive"
    good_archive.mkdir()
    write_archive(trained_model.model_dir, good_archive / MODEL_ARCHIVE)
    truncated = good_archive / MODEL_ARCHIVE
    truncated_dir = root / "truncated-archive"
    truncated_dir.mkdir()
    (truncated_dir / MODEL_ARCHIVE).write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])
    return {
        "does-not-exist": (root / "does-not-exist", ("does-not-exist",)),
        "empty": (root / "empty", (MODEL_METADATA_FILE,)),
        "without-weights": (without_weights, (SERVING_WEIGHTS_FILE,)),
        "bad-metadata": (bad_metadata, (str(bad_metadata), MODEL_METADATA_FILE)),
        "bad-archive": (bad_archive, (str(bad_archive), MODEL_ARCHIVE)),
        "truncated-archive": (truncated_dir, (str(truncated_dir), MODEL_ARCHIVE)),
    }


@pytest.mark.parametrize(
    "case", ["does-not-exist", "empty", "without-weights", "bad-metadata", "bad-archive", "truncated-archive"]
)
def test_a_bad_model_dir_is_a_one_line_error_before_listening(
    trained_model: TrainedModel, tmp_path: Path, case: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    model_dir, named = broken_model_dirs(trained_model, tmp_path)[case]
    check_one_line_error(run_server_main(monkeypatch, capsys, "--model-dir", str(model_dir)), *named)


@pytest.mark.skipif(DEFAULT_MODEL_DIR.exists(), reason="this machine has a model in SageMaker's default directory")
def test_without_model_dir_the_default_is_read_and_named() -> None:
    check_one_line_error(run_server_command(), str(DEFAULT_MODEL_DIR))


@pytest.mark.parametrize(
    "variable, value, named",
    [
        (WORKERS_VARIABLE, "abc", WORKERS_VARIABLE),
        (WORKERS_VARIABLE, "-1", WORKERS_VARIABLE),
        (WORKERS_VARIABLE, "2.5", WORKERS_VARIABLE),
        (WORKERS_VARIABLE, "0", "workers"),
        (WORKERS_VARIABLE, "\u00b2", WORKERS_VARIABLE),
        (MAX_PAYLOAD_VARIABLE, "big", MAX_PAYLOAD_VARIABLE),
        (DEFAULT_ACCEPT_VARIABLE, "text/html", DEFAULT_ACCEPT_VARIABLE),
        (DEFAULT_ACCEPT_VARIABLE, "application/x-npz", DEFAULT_ACCEPT_VARIABLE),
    ],
)
def test_a_bad_variable_is_a_one_line_error_before_listening(
    trained_model: TrainedModel, variable: str, value: str, named: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    model_dir = str(trained_model.model_dir)
    result = run_server_main(monkeypatch, capsys, "--model-dir", model_dir, environment={variable: value})
    check_one_line_error(result, named)


def test_a_bad_port_variable_is_a_one_line_error(trained_model: TrainedModel) -> None:
    result = subprocess.run(
        serve_command("--model-dir", str(trained_model.model_dir)),
        cwd=PROJECT_ROOT,
        env=server_environment(**{PORT_VARIABLE: "http"}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    check_one_line_error(result, PORT_VARIABLE)


# The SageMaker SDK's own serializers and deserializers, as a client of a real-time endpoint uses them.


class _Body(io.BytesIO):
    """The stream SageMaker's runtime hands the deserializers (they close it)."""


@pytest.mark.parametrize(
    "serializer_name, deserializer_name",
    [
        ("NumpySerializer", "NumpyDeserializer"),
        ("CSVSerializer", "CSVDeserializer"),
        ("JSONSerializer", "JSONDeserializer"),
        ("JSONLinesSerializer", "JSONLinesDeserializer"),
        ("NumpySerializer", "CSVDeserializer"),
    ],
)
def test_the_sagemaker_sdk_serializers_and_deserializers(
    server: ServerProcess, trained_model: TrainedModel, serializer_name: str, deserializer_name: str
) -> None:
    from sagemaker import deserializers, serializers

    serializer = getattr(serializers, serializer_name)()
    deserializer = getattr(deserializers, deserializer_name)()
    rows = trained_model.rows
    indices = [3, 1, 4, 1, 5]
    data = rows.features[indices]
    if serializer_name == "JSONLinesSerializer":
        data = [list(row) for row in data.tolist()]
    body = serializer.serialize(data if serializer_name != "JSONSerializer" else data.tolist())
    body = body.encode() if isinstance(body, str) else body
    response = server.invoke(body, serializer.CONTENT_TYPE, deserializer.ACCEPT[0])
    assert response.status == 200, response.body[:300]
    answer = deserializer.deserialize(_Body(response.body), response.headers["content-type"])
    if deserializer_name == "NumpyDeserializer":
        labels = list(answer["label"])
    elif deserializer_name == "CSVDeserializer":
        labels = [line[0] for line in answer]
    elif deserializer_name == "JSONDeserializer":
        labels = [prediction["label"] for prediction in answer["predictions"]]
    else:
        labels = [prediction["label"] for prediction in answer]
    assert labels == rows.reference_labels(indices)


def test_under_batch_transform_a_header_outside_the_model_order_fails_the_mini_batch(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    port = free_port()
    environment = server_environment(**{BATCH_VARIABLE: "true", PORT_VARIABLE: str(port), WORKERS_VARIABLE: "1"})
    rows = trained_model.rows
    names = list(rows.feature_names)
    data = rows.csv_lines([0, 1])
    with running_server(tmp_path, "--model-dir", str(trained_model.model_dir), port=port, environment=environment) as s:
        in_order = s.invoke(("\n".join([",".join(names), *data]) + "\n").encode(), CSV, CSV)
        reordered = ",".join([names[1], names[0], *names[2:]])
        refused = s.invoke((reordered + "\n" + data[0] + "\n").encode(), CSV, CSV)
    assert in_order.body.decode().split("\n")[:-1] == [rows.label_column, *rows.reference_labels([0, 1])]
    error = check_error(refused, 400)
    assert "batch transform" in error["error"] and error["row"] == 0
