"""The monitoring loop of a served version on this machine (`mlops local replay`), against the embedded AWS.

In AWS the real-time endpoint serves the version and captures its requests (SageMaker data capture), a schedule
compares the captured requests with the version's data-quality baseline (Model Monitor's analyzer), and a drift beyond
the stage's retrain threshold starts the training pipeline, whose new version waits for a person's approval. Here:

* Traffic: the test split of the run that registered the version (or the user's rows), as requests carry them (the
  model's features in its order, no header), then a copy shifted by a seeded, repeatable rule.
* Serving and capture: `mlops --local serve` serves the version with the serving image's server, and the replay
  posts the traffic in batches and writes each request and its answer as SageMaker's capture records where the
  endpoint's capture goes. The client captures, not a proxy in front of the server: the replay is the server's only
  client, so it sees the very bytes a proxy would, without a second server and port to start and stop.
* Monitoring: one execution per traffic set reads its capture file back from S3 and analyzes the captured inputs
  with the Baseline step's own code (pipelines/steps/data_quality.py), and writes its reports where the schedule's go.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import json
import math
import random
import secrets
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from rich.table import Table

from infra import naming
from infra.layout import BASELINE_DIR, ArtifactPrefix
from infra.manifest import DriftBaseline
from infra.naming import BucketPurpose
from pipelines.local.layout import LocalLayout
from pipelines.local.runner import RUN_RECORD, LocalStage, RunResult, read_run_record
from pipelines.local.walkthrough import (
    REQUEST_SECONDS,
    holdout_file,
)
from pipelines.monitoring import feature_of
from pipelines.registry import ModelVersion, split_s3_uri
from pipelines.steps import data_quality
from pipelines.steps.data_quality import DriftReport, FeatureDrift
from training_code.contract import (
    BASELINE_FEATURES_FILE,
    CONSTRAINTS_FILE,
    CSV,
    INVOCATIONS_PATH,
    STATISTICS_FILE,
    TEXT_CONTENT_TYPES,
    VIOLATIONS_FILE,
)
from training_code.features import MISSING_MARKERS
from training_code.serving.payload import media_type

Client = Any

# Each replay keeps its files (the baseline, the captured inputs and the reports of each execution, the plot) in a
# folder of its own under the local directory.
REPLAYS_DIR = "replays"
PLOT_FILE = "drift.png"
# The shifted copy is the same for the same rows: its random choices come from this seed.
TRAFFIC_SEED = 0
# The pipeline run that registered a version, in the version's MetadataProperties (the local runner sets it as a
# SageMaker pipeline does).
GENERATED_BY = "GeneratedBy"
# Two samples of one distribution, of n and m values, lie further apart than this times sqrt(1/n + 1/m) one time in
# twenty (the Kolmogorov-Smirnov distance's critical value at 95%).
KS_CRITICAL_95 = 1.358
# Capture's name for the way a record's data is stored, by content type (as the endpoint configuration's
# CaptureContentTypeHeader lists them); any other type is stored base64-encoded.
CSV_ENCODING, JSON_ENCODING, BASE64_ENCODING = "CSV", "JSON", "BASE64"
CAPTURE_EVENT_VERSION = "0"
CAPTURE_FILE_SUFFIX = ".jsonl"
# How many drifted features a line of the command's output names.
DRIFTED_SHOWN = 5


class ReplayError(Exception):
    """A replay that cannot go on; the message is one line that says what to do."""


# --- Traffic --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Traffic:
    """Rows of requests (the model's features in its order, cells as text) and what they are."""

    name: str
    description: str
    rows: list[list[str]]


def request_rows(path: Path, features: tuple[str, ...]) -> list[list[str]]:
    """The rows of a CSV file (or of the .csv files of a directory) with a header, as requests carry them: the
    features in the model's order, other columns (the label) left out."""
    rows, names = data_quality.read_csv(path, header=True)
    missing = [feature for feature in features if feature not in names]
    if missing:
        raise ReplayError(
            f"{path}: no column {', '.join(missing)}; requests carry the model's features {', '.join(features)}"
        )
    positions = [names.index(feature) for feature in features]
    return [[row[position] for position in positions] for row in rows]


def categorical_share(shift: float) -> float:
    """The share of a categorical feature's present cells that the shifted copy moves: the Kolmogorov-Smirnov
    distance between a normal distribution and itself shifted by `shift` standard deviations (0.38 at 1), so that a
    categorical feature drifts about as far as a normal numeric one."""
    return math.erf(shift / (2 * math.sqrt(2)))


def shifted_copy(
    rows: list[list[str]], baseline_statistics: Mapping[str, Any], shift: float, seed: int = TRAFFIC_SEED
) -> list[list[str]]:
    """The rows with each feature moved away from the baseline (the columns are the baseline's, in its order):

    * a numeric feature by `shift` of the baseline's standard deviations (an integral one by the nearest whole
      number, so that its values stay integers, as the baseline's type check expects);
    * a categorical feature by `categorical_share(shift)` of its present cells, chosen at random from `seed`, becoming
      the baseline's least frequent category (a rotation of categories would not drift where their shares are even).

    Missing cells stay missing."""
    generator = random.Random(seed)
    moves = [_cell_move(feature, shift, generator) for feature in baseline_statistics["features"]]
    return [
        [cell if cell.strip() in MISSING_MARKERS else move(cell) for move, cell in zip(moves, row, strict=True)]
        for row in rows
    ]


def _cell_move(feature: Mapping[str, Any], shift: float, generator: random.Random) -> Callable[[str], str]:
    inferred_type = feature["inferred_type"]
    if inferred_type == data_quality.STRING:
        buckets = feature["string_statistics"]["distribution"]["categorical"]["buckets"]
        if not buckets:
            return lambda cell: cell
        # Most frequent first, ties by value: the last is the least frequent.
        rarest, share = buckets[-1]["value"], categorical_share(shift)
        return lambda cell: rarest if generator.random() < share else cell
    deviation = feature["numerical_statistics"]["std_dev"] * shift
    offset = round(deviation) if inferred_type == data_quality.INTEGRAL else deviation
    if not offset:  # a constant feature, or no shift: the cells as written
        return lambda cell: cell
    if inferred_type == data_quality.INTEGRAL:
        return lambda cell: str(int(cell) + offset) if data_quality.INTEGRAL_LITERAL.fullmatch(cell.strip()) else cell
    return lambda cell: (
        repr(round(float(cell) + offset, 6)) if data_quality.FRACTIONAL_LITERAL.fullmatch(cell.strip()) else cell
    )


def traffic_sets(base: Traffic, baseline_statistics: Mapping[str, Any], shift: float) -> list[Traffic]:
    """The traffic as it is, then (unless `shift` is 0) its shifted copy."""
    if not shift:
        return [base]
    moved = f"numeric features +{shift:g} sd, {categorical_share(shift):.0%} of categorical cells moved"
    rows = shifted_copy(base.rows, baseline_statistics, shift)
    return [base, Traffic(f"shifted-{shift:g}sd", f"{base.description}, {moved}", rows)]


def csv_body(rows: Sequence[Sequence[str]]) -> bytes:
    """Rows as a CSV request body without a header, as captured CSV is analyzed."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode()


# --- Capture --------------------------------------------------------------------------------------------------------


def capture_encoding(content_type: str) -> str:
    kind = media_type(content_type)
    if kind in TEXT_CONTENT_TYPES:
        return CSV_ENCODING if kind.endswith("/csv") else JSON_ENCODING
    return BASE64_ENCODING


def _captured_data(body: bytes, content_type: str, mode: str) -> dict[str, str]:
    encoding = capture_encoding(content_type)
    data = base64.b64encode(body).decode() if encoding == BASE64_ENCODING else body.decode()
    return {"observedContentType": content_type, "mode": mode, "data": data, "encoding": encoding}


def capture_record(
    request: bytes, request_type: str, response: bytes, response_type: str, at: datetime, event_id: str
) -> dict[str, Any]:
    """One request and its answer as SageMaker's data capture writes them: one JSON line per invocation."""
    return {
        "captureData": {
            "endpointInput": _captured_data(request, request_type, "INPUT"),
            "endpointOutput": _captured_data(response, response_type, "OUTPUT"),
        },
        "eventMetadata": {"eventId": event_id, "inferenceTime": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")},
        "eventVersion": CAPTURE_EVENT_VERSION,
    }


def capture_key(endpoint: str, at: datetime, unique: str) -> str:
    """Where the endpoint's capture writes a file: by variant and hour, named by the minute, second and millisecond."""
    at = at.astimezone(UTC)
    return (
        f"{ArtifactPrefix.DATA_CAPTURE}{endpoint}/{naming.VARIANT_NAME}/{at:%Y/%m/%d/%H}/"
        f"{at:%M-%S}-{at.microsecond // 1000:03d}-{unique}{CAPTURE_FILE_SUFFIX}"
    )


def captured_inputs(lines: Sequence[str]) -> str:
    """The CSV rows of the requests of capture lines, one after another, as the analyzer reads the endpoint's input."""
    texts = []
    for number, line in enumerate(lines, start=1):
        try:
            data = json.loads(line)["captureData"]["endpointInput"]
            text = base64.b64decode(data["data"]).decode() if data["encoding"] == BASE64_ENCODING else data["data"]
            kind = media_type(data["observedContentType"])
        except (ValueError, KeyError, TypeError) as error:
            raise ReplayError(
                f"capture line {number} is not a capture record ({type(error).__name__}: {error})"
            ) from None
        if kind != CSV:
            raise ReplayError(
                f"capture line {number}: a {kind} request; the data-quality analysis reads {CSV} requests"
            )
        texts.append(text if text.endswith("\n") else text + "\n")
    return "".join(texts)


@dataclass(frozen=True)
class Capture:
    traffic: Traffic
    uri: str
    requests: int


def send(url: str, traffic: Traffic, rows_per_request: int) -> list[dict[str, Any]]:
    """POST the traffic's rows in batches; returns a capture record per request."""
    records = []
    for start in range(0, len(traffic.rows), rows_per_request):
        body = csv_body(traffic.rows[start : start + rows_per_request])
        at = datetime.now(UTC)
        request = urllib.request.Request(
            url + INVOCATIONS_PATH, data=body, headers={"Content-Type": CSV, "Accept": CSV}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_SECONDS) as response:
                answer, answer_type = response.read(), response.headers.get("Content-Type", CSV)
        except urllib.error.HTTPError as error:
            raise ReplayError(
                f"{traffic.name}: the server answered {error.code} to rows {start + 1}-{start + rows_per_request}: "
                f"{error.read()[:200]!r}"
            ) from None
        except (urllib.error.URLError, OSError) as error:
            raise ReplayError(f"{traffic.name}: no answer from {url}: {error}") from None
        records.append(capture_record(body, CSV, answer, answer_type, at, str(uuid.uuid4())))
    return records


def write_capture(s3: Client, bucket: str, endpoint: str, traffic: Traffic, records: list[dict[str, Any]]) -> Capture:
    """The records as one capture file, named by the time it is written (capture buffers records and writes a file
    every so often)."""
    key = capture_key(endpoint, datetime.now(UTC), str(uuid.uuid4()))
    body = "".join(json.dumps(record, separators=(",", ":")) + "\n" for record in records)
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
    return Capture(traffic, f"s3://{bucket}/{key}", len(records))


# --- Monitoring -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MonitoringExecution:
    name: str
    capture: Capture
    report_uri: str
    report: DriftReport
    baseline_rows: int

    def beyond(self, threshold: float) -> list[FeatureDrift]:
        return [
            feature for feature in self.report.features if feature.distance is not None and feature.distance > threshold
        ]

    def noise(self) -> float:
        """The drift distance that sampling alone reaches in one numeric feature of twenty (the 95% critical value of
        the Kolmogorov-Smirnov distance between this many rows and the baseline's)."""
        rows = self.report.statistics["dataset"]["item_count"]
        return KS_CRITICAL_95 * math.sqrt(1 / rows + 1 / self.baseline_rows)


@dataclass(frozen=True)
class Replay:
    """A replay to a served version: its baseline (downloaded into the replay's folder), and the endpoint whose capture
    and monitoring it stands in for, in the stage's artifacts bucket."""

    name: str
    root: Path
    model: ModelVersion
    statistics: dict[str, Any]
    endpoint: str
    bucket: str

    @classmethod
    def prepare(
        cls, layout: LocalLayout, stage: LocalStage, model: ModelVersion, baseline: DriftBaseline, s3: Client
    ) -> Replay:
        name = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
        root = layout.root / REPLAYS_DIR / name
        root.mkdir(parents=True)
        statistics = download_baseline(s3, baseline, root / BASELINE_DIR)
        endpoint = naming.realtime_endpoint_name(stage.config)
        return cls(name, root, model, statistics, endpoint, stage.bucket(BucketPurpose.ARTIFACTS))

    @property
    def baseline_dir(self) -> Path:
        return self.root / BASELINE_DIR

    @property
    def plot_file(self) -> Path:
        return self.root / PLOT_FILE

    def execution_name(self, traffic: Traffic) -> str:
        return f"{self.name}-{traffic.name}"

    def capture(self, s3: Client, url: str, traffic: Traffic, rows_per_request: int) -> Capture:
        """Send the traffic to the server at `url` and write its capture file."""
        return write_capture(s3, self.bucket, self.endpoint, traffic, send(url, traffic, rows_per_request))

    def monitor(self, s3: Client, capture: Capture) -> MonitoringExecution:
        """One monitoring execution: the capture file read back from S3, its requests analyzed against the baseline,
        the statistics and violations written to the execution's folder under monitoring/ (and kept in the replay's
        folder)."""
        name = self.execution_name(capture.traffic)
        bucket, key = split_s3_uri(capture.uri)
        lines = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines()
        # The folder the analyzer reads the endpoint's input from, and the one it writes its reports to.
        captured = self.root / name / "endpoint" / "captured.csv"
        captured.parent.mkdir(parents=True, exist_ok=True)
        captured.write_text(captured_inputs([line for line in lines if line.strip()]))
        output = self.root / name / "output"
        report = data_quality.analyze(self.baseline_dir, captured, output, header=False)
        prefix = f"{ArtifactPrefix.MONITORING}{self.endpoint}/{name}/"
        for file_name in (STATISTICS_FILE, VIOLATIONS_FILE):
            s3.upload_file(str(output / file_name), self.bucket, prefix + file_name)
        baseline_rows = self.statistics["dataset"]["item_count"]
        return MonitoringExecution(name, capture, f"s3://{self.bucket}/{prefix}", report, baseline_rows)


def download_baseline(s3: Client, baseline: DriftBaseline, directory: Path) -> dict[str, Any]:
    """The version's baseline files into `directory`; returns its statistics."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in (STATISTICS_FILE, CONSTRAINTS_FILE, BASELINE_FEATURES_FILE):
        bucket, key = split_s3_uri(baseline.uri + name)
        try:
            s3.download_file(bucket, key, str(directory / name))
        except ClientError as error:
            raise ReplayError(
                f"cannot read the baseline's {baseline.uri + name}: {error.response['Error']['Code']}"
            ) from None
    return data_quality.load_baseline(directory)[0]


def drift_table(execution: MonitoringExecution, features: tuple[str, ...], retrain_threshold: float) -> Table:
    capture = execution.capture
    rows = execution.report.statistics["dataset"]["item_count"]
    table = Table(
        title=f"Monitoring execution {execution.name}: {capture.traffic.description}",
        caption=f"{rows} rows in {capture.requests} requests; sampling alone reaches {execution.noise():.3f} in one "
        f"numeric feature of 20 (Kolmogorov-Smirnov at 95%, against the baseline's {execution.baseline_rows} rows); "
        f"retraining beyond {retrain_threshold:g}",
    )
    for column in ("feature", "type", "drift distance", "threshold", "violations"):
        table.add_column(column, justify="right" if column in ("drift distance", "threshold") else "left")
    for feature in execution.report.features:
        distance = "n/a" if feature.distance is None else f"{feature.distance:.4f}"
        if feature.distance is not None and feature.distance > retrain_threshold:
            distance = f"[bold red]{distance}[/bold red]"
        elif feature.distance is not None and feature.distance > feature.threshold:
            distance = f"[yellow]{distance}[/yellow]"
        status = feature.status if feature.failed_checks else "[green]ok[/green]"
        table.add_row(
            feature_of(feature.name, features), feature.inferred_type, distance, f"{feature.threshold:g}", status
        )
    return table


def most_drifted(execution: MonitoringExecution, threshold: float, features: tuple[str, ...]) -> str:
    """The features beyond `threshold`, the most drifted first, as many as a line shows (the table lists them all)."""
    beyond = sorted(execution.beyond(threshold), key=lambda feature: -(feature.distance or 0.0))
    named = ", ".join(f"{feature_of(f.name, features)} {f.distance:.4f}" for f in beyond[:DRIFTED_SHOWN])
    return named + (f" and {len(beyond) - DRIFTED_SHOWN} more features" if len(beyond) > DRIFTED_SHOWN else "")


def plot_drift(
    executions: Sequence[MonitoringExecution],
    features: tuple[str, ...],
    retrain_threshold: float,
    title: str,
    path: Path,
) -> Path:
    """Drift per feature, a bar per execution, with each feature's drift threshold and the retrain threshold."""
    # Imported here: only the plot needs matplotlib.
    from matplotlib.figure import Figure

    columns = [feature.name for feature in executions[0].report.features]
    width = 0.8 / len(executions)
    # Wider with more bars, up to what a screen shows whole (the 64 features of the digits sample fit).
    figure = Figure(figsize=(min(18.0, max(6.0, 1.5 + 0.4 * len(columns) * len(executions))), 4.5), dpi=100)
    axes = figure.subplots()
    for number, execution in enumerate(executions):
        distances = {feature.name: feature.distance or 0.0 for feature in execution.report.features}
        offset = (number - (len(executions) - 1) / 2) * width
        axes.bar(
            [position + offset for position in range(len(columns))],
            [distances.get(column, 0.0) for column in columns],
            width,
            label=execution.capture.traffic.name,
        )
    for position, feature in enumerate(executions[0].report.features):
        axes.hlines(
            feature.threshold,
            position - 0.45,
            position + 0.45,
            colors="black",
            label="drift threshold" if not position else None,
        )
    axes.axhline(retrain_threshold, color="tab:red", linestyle="--", label=f"retrain threshold ({retrain_threshold:g})")
    names = [feature_of(column, features) for column in columns]
    axes.set_xticks(range(len(columns)), names, rotation=90 if len(columns) > 8 else 0)
    highest = max([retrain_threshold, *(f.distance or 0.0 for e in executions for f in e.report.features)])
    axes.set(ylabel="drift distance (KS, or L-infinity for text)", ylim=(0, min(1.0, highest * 1.15)))
    axes.set_title(title, fontsize="medium")
    axes.legend(fontsize="small")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


# --- The served version and its run ---------------------------------------------------------------------------------


def registering_run(layout: LocalLayout, version: ModelVersion) -> RunResult | None:
    """The local run that registered the version, while its record is kept (runs beyond the newest few are pruned)."""
    execution_id = version.lineage.get(GENERATED_BY, "").rsplit("/", 1)[-1]
    record_file = layout.run_dir(execution_id) / RUN_RECORD
    if not execution_id or not record_file.is_file():
        return None
    record = read_run_record(record_file)
    return RunResult(
        record["execution_id"],
        record["execution_arn"],
        record.get("parameters") or {},
        record_file.parent,
        model_package_arn=record.get("model_package_arn"),
        input_data_uri=record.get("input_data_uri"),
    )


def holdout_traffic(run: RunResult, features: tuple[str, ...]) -> Traffic:
    rows = request_rows(holdout_file(run), features)
    return Traffic("test-split", f"the test split of execution {run.execution_id}", rows)


def download_training_data(s3: Client, uri: str, directory: Path) -> Path:
    """The .csv files a run read from InputDataUri (those directly under it, as Preprocess reads them) into
    `directory`, so that a retraining run trains on them even after that run's data is pruned."""
    bucket, prefix = split_s3_uri(uri.rstrip("/") + "/")
    keys = [
        item["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/")
        for item in page.get("Contents", [])
        if item["Key"].endswith(".csv")
    ]
    if not keys:
        raise ReplayError(f"{uri} holds no .csv files any more; give --retrain-data DIR, or --no-retrain")
    directory.mkdir(parents=True, exist_ok=True)
    for key in keys:
        s3.download_file(bucket, key, str(directory / key.rsplit("/", 1)[-1]))
    return directory


# --- Retraining ----------------------------------------------------------------------------------------------------


# --- Timings --------------------------------------------------------------------------------------------------------


@dataclass
class Timings:
    started: float = field(default_factory=time.perf_counter)
    phases: list[tuple[str, float]] = field(default_factory=list)

    @contextlib.contextmanager
    def measure(self, phase: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.phases.append((phase, time.perf_counter() - start))

    def table(self) -> Table:
        table = Table(title="Timings")
        table.add_column("phase")
        table.add_column("seconds", justify="right")
        for phase, seconds in self.phases:
            table.add_row(phase, f"{seconds:.2f}")
        table.add_row("[bold]total (wall time)[/bold]", f"[bold]{time.perf_counter() - self.started:.2f}[/bold]")
        return table
