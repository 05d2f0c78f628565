"""After a local pipeline run: the operator's side, with the commands an operator types, run as they would type
them against the embedded AWS (list, approve, serve), then an example request to the served model."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pipelines import spec
from pipelines.local.jobs import ContainerRoot
from pipelines.local.runner import RunResult
from training_code.contract import (
    CSV,
    DEFAULT_LABEL_COLUMN,
    DEFAULT_MAX_PAYLOAD_MB,
    ENCODING_FILE,
    INVOCATIONS_PATH,
    JSON,
    PING_PATH,
)
from training_code.features import Encoding

EXAMPLE_ROWS = 3
EXAMPLE_FILE = "example-prediction.json"
EXAMPLE_REQUEST = "example.csv"
SERVER_START_SECONDS = 30
REQUEST_SECONDS = 10


class WalkthroughFailed(Exception):
    pass


def mlops(*arguments: str) -> list[str]:
    """The `mlops --local ...` command line, as this interpreter runs it."""
    return [sys.executable, "-m", "pipelines.cli", "--local", *arguments]


def mlops_program() -> str:
    """How the user types `mlops` in this shell: bare when it is on PATH, else the virtualenv's script."""
    script = Path(sys.executable).parent / "mlops"
    on_path = shutil.which("mlops")
    if on_path and Path(on_path).resolve() == script.resolve():
        return "mlops"
    return os.path.relpath(script) if script.is_relative_to(Path.cwd()) else str(script)


def shown(command: list[str]) -> str:
    return f"{mlops_program()} {shlex.join(command[3:])}"


def run_command(console: Console, command: list[str]) -> None:
    console.print(f"[bold cyan]$ {shown(command)}[/bold cyan]", soft_wrap=True)
    # Flushed first: the command writes to the same terminal.
    sys.stdout.flush()
    completed = subprocess.run(command, check=False)
    if completed.returncode != 0:
        raise WalkthroughFailed(f"`{shown(command)}` exited with {completed.returncode}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _split_files(result: RunResult, split: str, pattern: str) -> list[Path]:
    """Files of one of the run's preprocessing outputs, as the preprocessing job wrote them."""
    directory = spec.SPLITS_OUTPUT_DIR / split
    return sorted(
        path
        for job in sorted(result.run_dir.iterdir())
        if job.is_dir()
        for path in ContainerRoot(job).path(directory).glob(pattern)
    )


def holdout_file(result: RunResult) -> Path:
    """The run's test split as the preprocessing job wrote it (a header, the label column among the features)."""
    files = _split_files(result, spec.PREPROCESS_OUTPUTS[2], "*.csv")
    if not files:
        raise WalkthroughFailed(f"no test split under {result.run_dir}")
    return files[0]


def label_column(result: RunResult) -> str:
    """The label column the run trained on (its LabelColumn parameter), from the encoding Preprocess fitted."""
    files = _split_files(result, spec.PREPROCESS_OUTPUTS[0], ENCODING_FILE)
    return Encoding.load(files[0]).label_column if files else DEFAULT_LABEL_COLUMN


def rows_within(path: Path, limit_bytes: int) -> int | None:
    """How many data rows after the header fit in a request of `limit_bytes`; None when the whole file does."""
    if path.stat().st_size <= limit_bytes:
        return None
    size, rows = 0, -1
    with path.open("rb") as file:
        for line in file:
            size += len(line)
            if size > limit_bytes:
                break
            rows += 1
    return max(rows, 1)


def example_rows(result: RunResult, count: int = EXAMPLE_ROWS) -> tuple[list[str], list[list[str]], list[str]]:
    """Feature names, the first `count` rows of the run's test split, and their true labels."""
    with holdout_file(result).open(newline="") as file:
        reader = csv.reader(file)
        header = next(reader)
        rows = [row for _, row in zip(range(count), reader, strict=False)]
    label = header.index(label_column(result))
    features = [name for index, name in enumerate(header) if index != label]
    values = [[value for index, value in enumerate(row) if index != label] for row in rows]
    return features, values, [row[label] for row in rows]


def wait_until_ready(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise WalkthroughFailed(f"the server exited with {server.returncode} before answering {PING_PATH}")
        try:
            with urllib.request.urlopen(url + PING_PATH, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise WalkthroughFailed(f"the server did not answer {PING_PATH} within {SERVER_START_SECONDS} s")


def request_prediction(
    console: Console, url: str, request_file: Path, features: list[str], rows: list[list[str]]
) -> dict:
    """POST the rows (with their header) as CSV, kept in `request_file` so that the shown curl command repeats it."""
    body = "\n".join([",".join(features), *(",".join(row) for row in rows)]) + "\n"
    request_file.write_text(body)
    console.print(
        f"[bold cyan]$ curl -s {url}{INVOCATIONS_PATH} -H 'Content-Type: {CSV}' -H 'Accept: {JSON}' "
        f"--data-binary @{request_file}[/bold cyan]  [dim](a header and {len(rows)} rows of the test split)[/dim]",
        soft_wrap=True,
    )
    request = urllib.request.Request(
        url + INVOCATIONS_PATH, data=body.encode(), headers={"Content-Type": CSV, "Accept": JSON}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_SECONDS) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise WalkthroughFailed(f"the server answered {error.code}: {error.read()[:200]!r}") from None
    return answer


@contextlib.contextmanager
def served(console: Console, stage: str, version: int | str) -> Iterator[str]:
    """The version served as `mlops --local serve` serves it, shown as the command to type, for the block; yields its
    URL."""
    port = free_port()
    command = mlops("serve", "--stage", stage, "--version", str(version), "--port", str(port), "--workers", "1")
    console.print(f"[bold cyan]$ {shown(command)} &[/bold cyan]", soft_wrap=True)
    # Flushed first: the server writes to the same terminal.
    sys.stdout.flush()
    server = subprocess.Popen(command)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, server)
        yield url
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=REQUEST_SECONDS)


def walk_through(console: Console, stage: str, result: RunResult, reason: str, force: bool = False) -> dict:
    """List, approve, serve the registered version and ask it for predictions; returns the prediction answer.

    `force` approves below the stage's accuracy threshold (a run with a lowered AccuracyThreshold)."""
    version = result.registered_version
    console.rule("The operator's side, against the embedded registry")
    run_command(console, mlops("models", "list", "--stage", stage))
    approve = mlops("models", "approve", version, "--stage", stage, "--reason", reason)
    run_command(console, approve + (["--force"] if force else []))
    with served(console, stage, version) as url:
        features, rows, truth = example_rows(result)
        answer = request_prediction(console, url, result.run_dir / EXAMPLE_REQUEST, features, rows)
    example = result.run_dir / EXAMPLE_FILE
    example.write_text(
        json.dumps({"features": features, "rows": rows, "true_labels": truth, "answer": answer}, indent=1)
    )
    table = Table(title="Predictions (application/json: a label and the probability of each class per row)")
    for column in ("row", "true label", "predicted", "probability"):
        table.add_column(column)
    for number, (prediction, label) in enumerate(zip(answer["predictions"], truth, strict=True), start=1):
        predicted = str(prediction["label"])
        table.add_row(str(number), label, predicted, f"{prediction['probabilities'][predicted]:.4f}")
    console.print(table)
    console.print(f"request and answer: {example}")
    return answer


def next_commands(stage: str, result: RunResult, approved: bool) -> list[str]:
    """What to type next, runnable as printed: the version and files are this run's."""
    program = mlops_program()
    mlops = f"{program} --local"
    version = result.registered_version
    commands = (
        []
        if approved
        else [(f"{mlops} models approve {version} --stage {stage} --reason 'reviewed the test metrics'", "")]
    )
    holdout = holdout_file(result)
    curl = f"curl -s localhost:8080{INVOCATIONS_PATH} -H 'Content-Type: {CSV}' --data-binary"
    # A real-time request carries at most 6 MB: a larger test split is sent as its first rows that fit.
    rows = rows_within(holdout, DEFAULT_MAX_PAYLOAD_MB * 1024 * 1024)
    curl = f"{curl} @{holdout}" if rows is None else f"head -n {rows + 1} {holdout} | {curl} @-"
    commands += [
        (f"{mlops} models show {version} --stage {stage}", "metrics per class, lineage, decisions"),
        (f"{mlops} serve --stage {stage} --port 8080", "serve the latest Approved version"),
        (curl, ""),
        (f"{program} local replay --stage {stage}", "traffic to the served version, drift per feature, retraining"),
        (f"{program} local run --stage {stage} -p TuningMaxJobs=8", "another execution, with more trials"),
        (f"{program} local aws", "keep the embedded AWS up, for the AWS CLI or boto3"),
    ]
    width = max(len(command) for command, why in commands if why)
    return [f"{command:<{width}}  # {why}" if why else command for command, why in commands]
