"""End to end on a table as users bring them (a text column, missing cells, the label column in the middle):
`mlops local loop --data` runs the deployed definition here, registers a version with its metrics, approves it through
the CLI and serves it to raw rows; a failing step stops the run with its reason; `mlops local replay` then monitors
traffic to the served version and retrains on drift."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
from typer.testing import CliRunner, Result

from infra.layout import ArtifactPrefix
from pipelines import spec
from pipelines.cli import app
from pipelines.local.aws import embedded_aws
from pipelines.local.layout import LOCAL_DIR_VARIABLE, LocalLayout
from pipelines.local.replay import captured_inputs
from pipelines.local.walkthrough import EXAMPLE_FILE, EXAMPLE_REQUEST
from pipelines.registry import ApprovalStatus, Registry
from pipelines.sample_data import PEOPLE_COLUMNS, PEOPLE_LABEL, write_digits_csv, write_people_csv
from pipelines.steps import data_quality
from tests.pipelines.local.test_replay import COLUMNS, ENDPOINT, FEATURES, read_json
from training_code.contract import ACCURACY_JSON_PATH, VIOLATIONS_FILE

REDUCED = ["-p", "TuningMaxJobs=2", "-p", "AccuracyThreshold=0.5"]
ONE_TRIAL = ["-p", "TuningMaxJobs=1", "-p", "TuningMaxParallelJobs=1", "-p", "AccuracyThreshold=0.5"]
# Enough rows that the test split (15%) drifts from the training split by sampling alone well under the drift
# threshold of 0.1, for the replay at the end: with 600 rows, a test split of 90 reaches 0.158 at 95%
# (Kolmogorov-Smirnov), and it did.
LOOP_ROWS = 3000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def mlops(local_dir: Path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *arguments],
        env={**os.environ, LOCAL_DIR_VARIABLE: str(local_dir)},
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )


def mlops_here(local_dir: Path, *arguments: str) -> Result:
    """The same command in this process: for the commands that read what a run left behind."""
    return CliRunner().invoke(app, list(arguments), env={LOCAL_DIR_VARIABLE: str(local_dir)})


def only_run(local_dir: Path) -> dict:
    (record,) = LocalLayout(local_dir).root.glob("runs/*/run.json")
    return json.loads(record.read_text())


def json_path(document: dict, dotted: str):
    for part in dotted.split("."):
        document = document[part]
    return document


@pytest.fixture(scope="module")
def loop(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    local_dir = tmp_path_factory.mktemp("local")
    data = write_people_csv(tmp_path_factory.mktemp("data") / "people.csv", rows=LOOP_ROWS).parent
    arguments = ("local", "loop", "--stage", "dev", "--data", str(data), "--label-column", PEOPLE_LABEL, *REDUCED)
    return local_dir, mlops(local_dir, *arguments)


def test_the_loop_runs_every_step_in_the_definition_order(loop):
    local_dir, completed = loop
    assert completed.returncode == 0, completed.stderr[-2000:]
    record = only_run(local_dir)
    assert record["status"] == "Succeeded"
    assert [step["name"] for step in record["steps"]] == [*spec.STEP_ORDER[:-1], spec.REGISTER_MODEL_STEP]
    assert record["parameters"]["TuningMaxJobs"] == 2
    shown = [line for line in completed.stdout.splitlines() if line.startswith("✓ ")]
    assert [line.split()[1] for line in shown] == [step["name"] for step in record["steps"]]
    lines = completed.stdout.splitlines()
    next_commands = lines[lines.index("Next, try:") + 1 :]
    assert any(" --local models show 1 --stage dev" in command for command in next_commands)
    trials = list(LocalLayout(local_dir).run_dir(record["execution_id"]).glob("*-tune-*-00[12]-*"))
    assert len(trials) == 2
    for trial in trials:  # each trial ran in its own container tree and wrote its model where SageMaker does
        assert (trial / "opt/ml/model/model.json").is_file()
        assert json.loads((trial / "opt/ml/input/config/hyperparameters.json").read_text())["sagemaker_program"]


def test_the_registered_version_carries_the_evaluation_and_the_cli_approval(loop):
    local_dir, completed = loop
    record = only_run(local_dir)
    evaluation = record["reports"][f"{spec.StepName.EVALUATE}.{spec.EVALUATION_PROPERTY_FILE}"]
    with embedded_aws(LocalLayout(local_dir)):
        registry = Registry()
        version = registry.describe(record["model_package_arn"])
        metrics = registry.metrics(version)
        signature = registry.signature(version)
    assert (version.group, version.version) == ("mlopskit-dev-models", 1)
    assert version.status == ApprovalStatus.APPROVED
    assert version.lineage["GeneratedBy"] == record["execution_arn"]
    assert metrics.accuracy == json_path(evaluation, ACCURACY_JSON_PATH) >= 0.5
    decision = version.last_decision
    assert decision.status == ApprovalStatus.APPROVED and record["execution_id"] in decision.reason
    assert f"approved mlopskit-dev-models/1 (accuracy {metrics.accuracy:.4f})" in completed.stdout
    assert signature.feature_names == ("age", "colour", "size", "city") and signature.classes == ("high", "low")


def test_the_registered_version_carries_its_data_quality_baseline(loop):
    """The baseline files the version names are in the embedded S3: one column per feature, as requests carry them."""
    local_dir, _ = loop
    record = only_run(local_dir)
    with embedded_aws(LocalLayout(local_dir)):
        package = boto3.client("sagemaker").describe_model_package(ModelPackageName=record["model_package_arn"])
        registered = package["DriftCheckBaselines"]["ModelDataQuality"]
        assert package["ModelMetrics"]["ModelDataQuality"] == registered
        bucket, key = registered["Statistics"]["S3Uri"].removeprefix("s3://").split("/", 1)
        statistics = json.loads(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
        bucket, key = registered["Constraints"]["S3Uri"].removeprefix("s3://").split("/", 1)
        constraints = json.loads(boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    columns = [f"_c{position}" for position in range(len(PEOPLE_COLUMNS) - 1)]
    assert [feature["name"] for feature in statistics["features"]] == columns
    assert [feature["name"] for feature in constraints["features"]] == columns
    assert {feature["inferred_type"] for feature in statistics["features"]} >= {"String", "Fractional"}


def test_the_served_version_answered_the_example_request(loop):
    local_dir, completed = loop
    record = only_run(local_dir)
    run_dir = LocalLayout(local_dir).run_dir(record["execution_id"])
    example = json.loads((run_dir / EXAMPLE_FILE).read_text())
    predictions = example["answer"]["predictions"]
    assert len(predictions) == len(example["rows"]) == 3
    # The shown curl command repeats the request: its body is kept where the command says.
    request = run_dir / EXAMPLE_REQUEST
    assert request.read_text().splitlines() == [",".join(example["features"]), *map(",".join, example["rows"])]
    assert f"--data-binary @{request}" in completed.stdout
    for prediction in predictions:
        assert prediction["label"] in prediction["probabilities"]
        assert sum(prediction["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert "serving version mlopskit-dev-models/1" in completed.stdout


def test_the_served_version_scores_the_raw_test_split_as_evaluation_did(loop):
    """The test split as the user's columns (a header, the label in the middle, empty and NA cells) posted to the
    served version: its accuracy over HTTP is the accuracy evaluation registered."""
    local_dir, _ = loop
    record = only_run(local_dir)
    (test_file,) = LocalLayout(local_dir).run_dir(record["execution_id"]).glob("*-preprocess-*/**/test/test.csv")
    header, *rows = list(csv.reader(test_file.open()))
    assert header == list(PEOPLE_COLUMNS)
    assert any("" in row or "NA" in row for row in rows)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "--local", "serve", "--stage", "dev", "--port", str(port)],
        env={**os.environ, LOCAL_DIR_VARIABLE: str(local_dir)},
    )
    try:
        answer = post_when_ready(port, test_file.read_bytes())
    finally:
        server.terminate()
        server.wait(30)
    labels = answer.decode().splitlines()[1:]
    truth = [row[header.index(PEOPLE_LABEL)] for row in rows]
    accuracy = sum(label == true for label, true in zip(labels, truth, strict=True)) / len(truth)
    served = [path.name for path in (local_dir / "serve").iterdir()]
    assert served == ["mlopskit-dev-models-1"], "one directory per served version, reused by every serve"
    evaluation = record["reports"][f"{spec.StepName.EVALUATE}.{spec.EVALUATION_PROPERTY_FILE}"]
    assert accuracy == pytest.approx(json_path(evaluation, ACCURACY_JSON_PATH), abs=1e-9)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def post_when_ready(port: int, body: bytes, timeout: float = 60) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        try:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/invocations", data=body, headers={"Content-Type": "text/csv"}
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.read()
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_the_operator_commands_work_afterwards_against_the_kept_state(loop):
    local_dir, _ = loop
    listed = mlops_here(local_dir, "--local", "models", "list", "--stage", "dev", "--json")
    assert listed.exit_code == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert (row["version"], row["status"]) == (1, "Approved")
    resolved = mlops_here(local_dir, "--local", "models", "resolve", "--stage", "dev")
    assert resolved.stdout.strip() == only_run(local_dir)["model_package_arn"]


def test_a_failing_step_stops_the_run_with_its_reason_and_registers_nothing(tmp_path):
    data = tmp_path / "data"
    rows = list(csv.reader(write_digits_csv(data / "digits.csv", rows=60).open()))
    rows[3][5] = "seven"
    with (data / "digits.csv").open("w", newline="") as file:
        csv.writer(file).writerows(rows)
    local_dir = tmp_path / "local"
    completed = mlops(local_dir, "local", "run", "--data", str(data))
    assert completed.returncode == 1
    error = completed.stderr.strip().splitlines()[-1]
    assert error.startswith("error: step Preprocess failed: ")
    assert f"{data / 'digits.csv'} row 3 column 'pixel_5': 'seven' is not a number" in error, "the user's own file"
    record = only_run(local_dir)
    assert record["status"] == "Failed" and record["failure"]["step"] == "Preprocess"
    assert [step["name"] for step in record["steps"]] == []
    listed = mlops_here(local_dir, "--local", "models", "list", "--stage", "dev")
    assert "has no versions yet" in listed.stdout


def test_replay_captures_monitors_plots_and_retrains_a_pending_version(loop, tmp_path):
    """`mlops local replay` on a copy of the loop's state (version 1 Approved and served): the test split, then a
    shifted copy, captured, monitored, plotted, and a retraining run registering version 2 for a person to approve."""
    local_dir = tmp_path / "local"
    shutil.copytree(loop[0], local_dir)
    (test_split,) = local_dir.glob("runs/*/*-preprocess-*/**/test/test.csv")
    started = time.monotonic()
    completed = mlops(local_dir, "local", "replay", "--stage", "dev", *ONE_TRIAL)
    seconds = time.monotonic() - started
    print(f"mlops local replay (with its retraining run): {seconds:.1f} s wall time")
    assert completed.returncode == 0, completed.stderr[-2000:]
    out = completed.stdout

    with embedded_aws(LocalLayout(local_dir)):
        s3 = boto3.client("s3")
        bucket = "mlopskit-dev-artifacts-123456789012-us-east-1"
        keys = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]]
        captures = sorted(key for key in keys if key.startswith(f"{ArtifactPrefix.DATA_CAPTURE}{ENDPOINT}/"))
        lines = {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode().splitlines() for key in captures}
        reports = [key for key in keys if key.startswith(f"monitoring/{ENDPOINT}/") and key.endswith(VIOLATIONS_FILE)]
        # One execution per traffic set: <replay>-test-split, <replay>-shifted-1sd.
        violations = {
            traffic: read_json(s3, f"s3://{bucket}/{key}")["violations"]
            for key in reports
            for traffic in ("test-split", "shifted-1sd")
            if key.split("/")[2].endswith(traffic)
        }
        registry = Registry()
        version = registry.describe(registry.version_arn("mlopskit-dev-models", "2"))
        trigger = version.customer_metadata[spec.TRIGGER_METADATA_KEY]
        report_folder = trigger.rsplit(" ", 1)[-1]
        attached = read_json(s3, report_folder + VIOLATIONS_FILE)

    # Captured where the endpoint's capture writes, one file per traffic set, each line a capture record of a request
    # of 10 rows: the test split's rows come back as its features.
    assert len(captures) == 2
    layout = rf"data-capture/{ENDPOINT}/AllTraffic/\d{{4}}/\d\d/\d\d/\d\d/\d\d-\d\d-\d{{3}}-[-\w]+\.jsonl"
    assert all(re.fullmatch(layout, key) for key in captures)
    header, *rows = list(csv.reader(test_split.open()))
    expected = [[row[header.index(feature)] for feature in FEATURES] for row in rows]
    parsed = {key: list(csv.reader(captured_inputs(lines[key]).splitlines())) for key in captures}
    assert expected in parsed.values()
    assert all(len(lines[key]) == -(-len(rows) // 10) for key in captures)
    for line in lines[captures[0]]:  # and each request's answer: a label per row
        data = json.loads(line)["captureData"]
        answers = data["endpointOutput"]["data"].splitlines()
        assert len(answers) == len(data["endpointInput"]["data"].splitlines()) and set(answers) <= {"high", "low"}

    # The test split drifts nowhere; the shifted copy everywhere, in the numeric features as in the categorical ones.
    assert len(reports) == len(violations) == 2
    drifted = {
        traffic: {v["feature_name"] for v in found if v["constraint_check_type"] == data_quality.BASELINE_DRIFT_CHECK}
        for traffic, found in violations.items()
    }
    assert drifted == {"test-split": set(), "shifted-1sd": set(COLUMNS)}

    # The tables name the features; the plot is a PNG.
    assert re.search(r"│ size +│ Fractional +│ +0\.\d+ │ +0\.1 │ baseline_drift_check", out)
    (plot,) = re.findall(r"^Drift plot: (\S+)$", out, re.MULTILINE)
    assert Path(plot).read_bytes().startswith(PNG_SIGNATURE) and Path(plot).is_relative_to(local_dir)

    # Version 2 waits for a person, and says which drift started it, with the report of the shifted traffic.
    assert version.status == ApprovalStatus.PENDING
    assert trigger.startswith(f"drift beyond 0.3 in {ENDPOINT} - reports in s3://{bucket}/monitoring/{ENDPOINT}/")
    assert report_folder.endswith("-shifted-1sd/") and attached == {"violations": violations["shifted-1sd"]}
    assert "--local models show 2 --stage dev" in out and "models approve 2 --stage dev" in out
    assert "total (wall time)" in out
