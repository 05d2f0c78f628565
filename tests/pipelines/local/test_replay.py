"""`mlops local replay`: traffic to the served version, captured as SageMaker captures it, monitored against the
version's baseline with the Baseline step's analyzer, and a drift beyond the retrain threshold retrains."""

from __future__ import annotations

import base64
import csv
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from infra.layout import ArtifactPrefix
from pipelines.local.replay import (
    Replay,
    ReplayError,
    Traffic,
    capture_key,
    capture_record,
    captured_inputs,
    categorical_share,
    csv_body,
    most_drifted,
    request_rows,
    shifted_copy,
    write_capture,
)
from pipelines.registry import split_s3_uri
from pipelines.sample_data import PEOPLE_COLUMNS, PEOPLE_LABEL, write_people_csv
from pipelines.steps import data_quality
from training_code.contract import CSV, JSON, NPY, STATISTICS_FILE, VIOLATIONS_FILE

FEATURES = tuple(column for column in PEOPLE_COLUMNS if column != PEOPLE_LABEL)
COLUMNS = [f"_c{position}" for position in range(len(FEATURES))]
NUMERIC, CATEGORICAL = ("age", "size"), ("colour", "city")
ENDPOINT = "mlopskit-dev-realtime"


def people(tmp_path: Path, rows: int = 600) -> tuple[list[list[str]], dict]:
    """Request rows of the people sample (features only, in order) and their baseline statistics."""
    traffic = request_rows(write_people_csv(tmp_path / "people.csv", rows=rows), FEATURES)
    return traffic, data_quality.statistics(traffic, COLUMNS)


def column(rows: list[list[str]], feature: str) -> list[str]:
    return [row[FEATURES.index(feature)] for row in rows]


def present(cells: list[str]) -> list[str]:
    return [cell for cell in cells if cell.strip() not in ("", "NA")]


def mean(cells: list[str]) -> float:
    values = [float(cell) for cell in present(cells)]
    return sum(values) / len(values)


def by_name(statistics: dict, feature: str) -> dict:
    return statistics["features"][FEATURES.index(feature)]


# --- Traffic --------------------------------------------------------------------------------------------------------


def test_request_rows_carry_the_models_features_in_its_order_without_the_label(tmp_path):
    path = tmp_path / "requests.csv"
    path.write_text("city,outcome,size,colour,age\nOslo,high,1.5,red,40\nRiga,low,-2,NA,\n")
    assert request_rows(path, FEATURES) == [["40", "red", "1.5", "Oslo"], ["", "NA", "-2", "Riga"]]
    path.write_text("city,size,colour\nOslo,1.5,red\n")
    with pytest.raises(ReplayError, match="no column age; requests carry the model's features age, colour, size, city"):
        request_rows(path, FEATURES)


@pytest.mark.parametrize("shift", [1.0, 2.5])
def test_the_shifted_copy_moves_each_numeric_mean_by_the_requested_standard_deviations(tmp_path, shift):
    rows, statistics = people(tmp_path)
    shifted = shifted_copy(rows, statistics, shift)
    for feature in NUMERIC:
        deviation = by_name(statistics, feature)["numerical_statistics"]["std_dev"]
        # age is integral: it moves by the nearest whole number, and stays integral for the type check.
        expected = round(shift * deviation) if feature == "age" else shift * deviation
        assert mean(column(shifted, feature)) - mean(column(rows, feature)) == pytest.approx(expected, abs=1e-6)
    ages = present(column(shifted, "age"))
    assert all(re.fullmatch(r"-?\d+", age) for age in ages)
    # Missing cells stay missing, where they were.
    for feature in FEATURES:
        original, moved = column(rows, feature), column(shifted, feature)
        assert [cell for cell in original if cell not in present(original)] == [
            cell for cell in moved if cell not in present(moved)
        ]
    assert data_quality.statistics(shifted, COLUMNS)["features"][0]["inferred_type"] == data_quality.INTEGRAL


def test_the_shifted_copy_moves_a_share_of_each_categorical_feature_to_its_rarest_category(tmp_path):
    rows, statistics = people(tmp_path)
    shifted = shifted_copy(rows, statistics, 1.0)
    for feature in CATEGORICAL:
        buckets = by_name(statistics, feature)["string_statistics"]["distribution"]["categorical"]["buckets"]
        rarest = buckets[-1]["value"]
        assert buckets[-1]["count"] == min(bucket["count"] for bucket in buckets)
        pairs = list(zip(column(rows, feature), column(shifted, feature), strict=True))
        changed = [(before, after) for before, after in pairs if before != after]
        assert changed and all(after == rarest for _, after in changed)
        # Every present cell is picked with the share's probability; those already of the rarest category stay.
        candidates = sum(before != rarest for before, _ in pairs if before.strip() not in ("", "NA"))
        assert len(changed) / candidates == pytest.approx(categorical_share(1.0), abs=0.07)
    assert categorical_share(1.0) == pytest.approx(0.3829, abs=1e-4)
    # As far as a normal numeric feature shifted by as much: the monitor sees both drift.
    report = data_quality.drift_report(statistics, data_quality.constraints(statistics), shifted, COLUMNS)
    assert all(feature.failed_checks == (data_quality.BASELINE_DRIFT_CHECK,) for feature in report.features)


def test_the_shifted_copy_is_the_same_for_the_same_rows_and_seed(tmp_path):
    rows, statistics = people(tmp_path)
    assert shifted_copy(rows, statistics, 1.0) == shifted_copy(rows, statistics, 1.0)
    assert shifted_copy(rows, statistics, 1.0, seed=1) != shifted_copy(rows, statistics, 1.0)
    assert shifted_copy(rows, statistics, 0.0) == rows


# --- Capture --------------------------------------------------------------------------------------------------------


def test_capture_records_are_sagemakers_json_lines_and_parse_back_into_the_requested_rows():
    batches = [[["40", "red", "1.5", "Oslo"], ["", "NA", "-2", "Riga"]], [["33", "blue, dark", "0.25", "Porto"]]]
    at = datetime(2026, 5, 4, 3, 2, 1, 123000, tzinfo=UTC)
    records = [
        capture_record(csv_body(batch), CSV, b"high\nlow\n", "text/csv; charset=utf-8", at, f"event-{number}")
        for number, batch in enumerate(batches)
    ]
    lines = [json.dumps(record) for record in records]
    first = json.loads(lines[0])
    assert first["eventVersion"] == "0"
    assert first["eventMetadata"] == {"eventId": "event-0", "inferenceTime": "2026-05-04T03:02:01Z"}
    assert first["captureData"]["endpointInput"] == {
        "observedContentType": CSV,
        "mode": "INPUT",
        "data": "40,red,1.5,Oslo\n,NA,-2,Riga\n",
        "encoding": "CSV",
    }
    assert first["captureData"]["endpointOutput"]["mode"] == "OUTPUT"
    assert first["captureData"]["endpointOutput"]["encoding"] == "CSV"
    assert first["captureData"]["endpointOutput"]["data"] == "high\nlow\n"

    with_answer = capture_record(b"[[1, 2]]", JSON, b"\x93NUMPY", NPY, at, "event")["captureData"]
    assert with_answer["endpointInput"]["encoding"] == "JSON"
    assert base64.b64decode(with_answer["endpointOutput"]["data"]) == b"\x93NUMPY"

    text = captured_inputs(lines)
    assert list(csv.reader(text.splitlines())) == [row for batch in batches for row in batch]


def test_a_capture_line_that_is_no_record_or_no_csv_request_is_named():
    with pytest.raises(ReplayError, match="capture line 2 is not a capture record"):
        captured_inputs([json.dumps(capture_record(b"1\n", CSV, b"a\n", CSV, datetime.now(UTC), "e")), "{}"])
    with pytest.raises(ReplayError, match="capture line 1: a application/json request"):
        captured_inputs([json.dumps(capture_record(b"[[1]]", JSON, b"a\n", CSV, datetime.now(UTC), "e"))])


def test_capture_files_lie_where_the_endpoints_capture_writes_them():
    at = datetime(2026, 5, 4, 3, 2, 1, 123000, tzinfo=UTC)
    assert capture_key(ENDPOINT, at, "u") == f"data-capture/{ENDPOINT}/AllTraffic/2026/05/04/03/02-01-123-u.jsonl"


@mock_aws
def test_a_monitoring_execution_reads_its_capture_from_s3_and_writes_the_analyzers_reports(tmp_path):
    """Without a server: requests captured as the replay captures them, then analyzed from S3 against a baseline."""
    rows, _ = people(tmp_path, rows=2000)
    bucket = "artifacts"
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    statistics = data_quality.write_baseline(rows[:1500], COLUMNS, tmp_path / "r1" / "baseline", 0.1)
    replay = Replay("r1", tmp_path / "r1", None, statistics, ENDPOINT, bucket)
    assert replay.baseline_dir == tmp_path / "r1" / "baseline"
    unshifted = Traffic("test-split", "the held-out rows", rows[1500:])
    shifted = Traffic("shifted-1sd", "shifted", shifted_copy(rows[1500:], statistics, 1.0))
    executions = []
    for traffic in (unshifted, shifted):
        records = [
            capture_record(csv_body(traffic.rows[start : start + 50]), CSV, b"low\n", CSV, datetime.now(UTC), "e")
            for start in range(0, len(traffic.rows), 50)
        ]
        capture = write_capture(s3, bucket, ENDPOINT, traffic, records)
        assert capture.uri.startswith(f"s3://{bucket}/{ArtifactPrefix.DATA_CAPTURE}{ENDPOINT}/AllTraffic/")
        executions.append(replay.monitor(s3, capture))
    calm, drifted = executions
    assert calm.report_uri == f"s3://{bucket}/monitoring/{ENDPOINT}/r1-test-split/"
    assert calm.report.statistics["dataset"]["item_count"] == 500
    assert not any(feature.failed_checks for feature in calm.report.features) and not calm.beyond(0.1)
    assert {feature.name for feature in drifted.beyond(0.1)} == set(COLUMNS)
    named = [part.rsplit(" ", 1) for part in most_drifted(drifted, 0.1, FEATURES).split(", ")]
    assert {name for name, _ in named} == set(FEATURES)
    assert [float(distance) for _, distance in named] == sorted((float(d) for _, d in named), reverse=True)
    for execution in executions:
        stored = {name: read_json(s3, execution.report_uri + name) for name in (STATISTICS_FILE, VIOLATIONS_FILE)}
        assert stored[VIOLATIONS_FILE] == {"violations": execution.report.violations}
        assert stored[STATISTICS_FILE] == execution.report.statistics
    assert {violation["feature_name"] for violation in drifted.report.violations} == set(COLUMNS)


def read_json(s3, uri: str) -> dict:
    bucket, key = split_s3_uri(uri)
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
