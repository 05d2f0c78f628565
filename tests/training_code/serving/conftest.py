"""A small model trained once per session, its test rows with the torch reference answers, and server processes."""

from __future__ import annotations

import csv
import http.client
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis.configuration import set_hypothesis_home_dir

from tests.training_code.conftest import PROJECT_ROOT, Splits, run_arguments, subprocess_environment
from training_code.artifact import ModelArtifact
from training_code.contract import (
    BATCH_VARIABLE,
    DEFAULT_ACCEPT_VARIABLE,
    INVOCATIONS_PATH,
    MAX_PAYLOAD_VARIABLE,
    PING_PATH,
    PORT_VARIABLE,
    SERVE_COMMAND,
    WORKERS_VARIABLE,
)
from training_code.train import main as train_main

SERVING_VARIABLES = (PORT_VARIABLE, WORKERS_VARIABLE, MAX_PAYLOAD_VARIABLE, DEFAULT_ACCEPT_VARIABLE, BATCH_VARIABLE)

# Hypothesis keeps caches (Unicode tables, constants) even without an example database: in the system's temporary
# directory rather than a .hypothesis folder in the working directory.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "mlops-kit-hypothesis")


def train_model(splits: Splits, workdir: Path, *hyperparameters: str) -> Path:
    """Trains in this process and returns the model directory."""
    run, arguments = run_arguments(splits, workdir, *hyperparameters)
    train_main(arguments)
    return run.model_dir


@dataclass(frozen=True)
class SplitRows:
    """The test split: feature values as the CSV file spells them, as numbers, and the torch model's probabilities."""

    feature_names: tuple[str, ...]
    label_column: str
    texts: tuple[tuple[str, ...], ...]
    labels: tuple[str, ...]
    features: np.ndarray
    reference: np.ndarray
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.texts)

    def reference_labels(self, indices: list[int] | np.ndarray | None = None) -> list[str]:
        chosen = self.reference if indices is None else self.reference[np.asarray(indices)]
        return [self.classes[index] for index in chosen.argmax(axis=1)]

    def csv_lines(self, indices: list[int] | np.ndarray | None = None) -> list[str]:
        chosen = range(len(self.texts)) if indices is None else indices
        return [",".join(self.texts[index]) for index in chosen]


@dataclass(frozen=True)
class TrainedModel:
    model_dir: Path
    rows: SplitRows

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.rows.feature_names


def read_test_rows(path: Path, artifact: ModelArtifact) -> SplitRows:
    with path.open(newline="") as file:
        header, *records = list(csv.reader(file))
    label_index = header.index(artifact.label_column)
    feature_indices = [index for index in range(len(header)) if index != label_index]
    texts = tuple(tuple(record[index] for index in feature_indices) for record in records)
    features = np.array(texts, dtype=np.float64)
    return SplitRows(
        feature_names=tuple(header[index] for index in feature_indices),
        label_column=artifact.label_column,
        texts=texts,
        labels=tuple(record[label_index] for record in records),
        features=features,
        reference=artifact.predict_proba(features),
        classes=artifact.classes,
    )


@pytest.fixture(scope="session")
def trained_model(splits: Splits, tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    """A 64-32-16-10 MLP trained for 3 epochs on the digits (dropout 0.1, the default)."""
    model_dir = train_model(
        splits, tmp_path_factory.mktemp("serving-model"), "--epochs", "3", "--hidden-sizes", "32,16"
    )
    artifact = ModelArtifact.load(model_dir)
    rows = read_test_rows(splits.root / "test" / "test.csv", artifact)
    assert rows.feature_names == artifact.feature_names
    assert len(rows) >= 50
    # Labels are compared exactly: no test row may sit on a near tie, where float rounding could flip the label.
    top_two = np.sort(rows.reference, axis=1)[:, -2:]
    assert (top_two[:, 1] - top_two[:, 0]).min() > 1e-4
    return TrainedModel(model_dir, rows)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_environment(**variables: str) -> dict[str, str]:
    """The subprocess environment without the shell's serving variables, plus the given ones."""
    environment = {name: value for name, value in subprocess_environment().items() if name not in SERVING_VARIABLES}
    return {**environment, **variables}


def serve_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "training_code.serving", SERVE_COMMAND, *arguments]


def child_pids(pid: int) -> set[int]:
    """The child processes of a process (Linux /proc): the server's workers."""
    children: set[int] = set()
    for path in Path(f"/proc/{pid}/task").glob("*/children"):
        children.update(int(child) for child in path.read_text().split())
    return children


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @classmethod
    def read(cls, response: http.client.HTTPResponse) -> Response:
        body = response.read()
        return cls(response.status, {name.lower(): value for name, value in response.getheaders()}, body)

    def json(self) -> object:
        return json.loads(self.body)


@dataclass(frozen=True)
class ServerProcess:
    process: subprocess.Popen
    port: int
    log: Path

    host = "127.0.0.1"

    def connection(self, timeout: float = 30) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        connection = self.connection()
        try:
            connection.request(method, path, body=body, headers=headers or {})
            return Response.read(connection.getresponse())
        finally:
            connection.close()

    def invoke(self, body: bytes, content_type: str | None, accept: str | None = None) -> Response:
        return self.request("POST", INVOCATIONS_PATH, body, invocation_headers(content_type, accept))

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM; the exit status (TimeoutExpired if the process outlives the timeout)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def invocation_headers(content_type: str | None, accept: str | None = None) -> dict[str, str]:
    headers = {}
    if content_type is not None:
        headers["Content-Type"] = content_type
    if accept is not None:
        headers["Accept"] = accept
    return headers


def ping_once(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
            connection.sendall(f"GET {PING_PATH} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
            return connection.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def wait_for_ping(process: subprocess.Popen, port: int, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}: {log.read_text()}")
        if ping_once(port):
            return
        time.sleep(0.01)
    process.kill()
    process.wait()
    raise RuntimeError(f"the server did not answer {PING_PATH} within {timeout} s: {log.read_text()}")


@contextmanager
def running_server(
    log_dir: Path, *arguments: str, port: int, environment: dict[str, str] | None = None
) -> Iterator[ServerProcess]:
    """Starts `python -m training_code.serving serve ARGUMENTS`, waits for /ping on `port`, stops it with SIGTERM."""
    log = log_dir / f"server-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            serve_command(*arguments),
            cwd=PROJECT_ROOT,
            env=environment or server_environment(),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_ping(process, port, log)
        yield ServerProcess(process, port, log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def server(trained_model: TrainedModel, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The trained model served by two workers, as `python -m training_code.serving serve --port P --workers 2`."""
    port = free_port()
    with running_server(
        tmp_path_factory.mktemp("server"),
        *("--model-dir", str(trained_model.model_dir), "--port", str(port), "--workers", "2"),
        port=port,
    ) as process:
        yield process
