"""`mlops monitor status`: moto holds the reports in S3; botocore's Stubber answers the monitoring calls, which moto
does not implement, and checks each request against botocore's service model and the parameters expected."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber
from typer.testing import CliRunner

from infra import manifest
from pipelines.cli import app
from pipelines.local.aws import Endpoint
from tests.pipelines.registry_fakes import ACCOUNT, BUCKET, CALLER, FEATURES, GROUPS, REGION

SCHEDULE = "mlopskit-staging-data-quality"
ENDPOINT = "mlopskit-staging-realtime"
SERVED = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/{GROUPS['staging']}/3"
BASELINE = manifest.DriftBaseline(f"s3://{BUCKET}/pipeline-runs/p/3/baseline/", FEATURES)
JOB = "model-monitoring-202605011100-0123456789abcdef"
REPORT_FOLDER = f"s3://{BUCKET}/monitoring/{ENDPOINT}/{SCHEDULE}/2026/05/01/11"
REPORT_KEY = f"monitoring/{ENDPOINT}/{SCHEDULE}/2026/05/01/11/constraint_violations.json"
REPORT_URI = f"s3://{BUCKET}/{REPORT_KEY}"
# As the analyzer lists them (not in column order), _c4 being a column the baseline does not know.
VIOLATIONS = [
    {"feature_name": "_c3", "constraint_check_type": "data_type_check", "description": "Data type match 0.8 < 1.0"},
    {"feature_name": "_c4", "constraint_check_type": "extra_column_check", "description": "Extra column _c4"},
    {
        "feature_name": "_c1",
        "constraint_check_type": "baseline_drift_check",
        "description": "Baseline drift distance: 0.42 exceeds threshold: 0.1",
    },
    {"feature_name": "_c1", "constraint_check_type": "completeness_check", "description": "Completeness 0.9 < 1.0"},
]
PER_FEATURE = [
    ["petal_width", "_c1", "baseline_drift_check", "Baseline drift distance: 0.42 exceeds threshold: 0.1"],
    ["petal_width", "_c1", "completeness_check", "Completeness 0.9 < 1.0"],
    ["sepal_width", "_c3", "data_type_check", "Data type match 0.8 < 1.0"],
    ["_c4", "_c4", "extra_column_check", "Extra column _c4"],
]


@pytest.fixture
def sagemaker(aws):
    """The stub of the SageMaker client that the command makes (the fake registry's shared one): a call without a
    response queued, or with other parameters than expected, fails the test."""
    with Stubber(boto3.client("sagemaker")) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def manifests(tmp_path):
    return tmp_path / "deployments"


def serve(manifests, baseline: manifest.DriftBaseline | None = BASELINE) -> None:
    deployment = manifest.Deployment(SERVED, "promote", "2026-05-01T09:00:00Z", CALLER, baseline=baseline)
    manifest.save(manifest.Manifest("staging", (deployment,)), manifests)


def at(hour: int) -> datetime:
    return datetime(2026, 5, 1, hour, tzinfo=UTC)


def execution(hour: int, status: str, failure_reason: str | None = None) -> dict:
    summary = {
        "MonitoringScheduleName": SCHEDULE,
        "ScheduledTime": at(hour),
        "CreationTime": at(hour),
        "LastModifiedTime": at(hour),
        "MonitoringExecutionStatus": status,
        "EndpointName": ENDPOINT,
    }
    if failure_reason is None:
        summary["ProcessingJobArn"] = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/{JOB}"
    else:
        summary["FailureReason"] = failure_reason
    return summary


def schedule_described(status: str = "Scheduled") -> dict:
    return {
        "MonitoringScheduleArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:monitoring-schedule/{SCHEDULE}",
        "MonitoringScheduleName": SCHEDULE,
        "MonitoringScheduleStatus": status,
        "MonitoringType": "DataQuality",
        "CreationTime": at(0),
        "LastModifiedTime": at(0),
        "MonitoringScheduleConfig": {"MonitoringJobDefinitionName": f"{SCHEDULE}-0123abcd"},
        "EndpointName": ENDPOINT,
    }


def processing_job_described() -> dict:
    return {
        "ProcessingJobName": JOB,
        "ProcessingJobArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:processing-job/{JOB}",
        "ProcessingJobStatus": "Completed",
        "ExitMessage": "CompletedWithViolations: Job completed successfully with 4 violations.",
        "CreationTime": at(11),
        "ProcessingResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge", "VolumeSizeInGB": 20}
        },
        "AppSpecification": {
            "ImageUri": f"468650794304.dkr.ecr.{REGION}.amazonaws.com/sagemaker-model-monitor-analyzer"
        },
        "ProcessingOutputConfig": {
            "Outputs": [
                {
                    "OutputName": "monitoring_output",
                    "S3Output": {
                        "S3Uri": REPORT_FOLDER,
                        "LocalPath": "/opt/ml/processing/output",
                        "S3UploadMode": "EndOfJob",
                    },
                }
            ]
        },
    }


def listing(sagemaker: Stubber, executions: list[dict], limit: int = 5) -> None:
    sagemaker.add_response("describe_monitoring_schedule", schedule_described(), {"MonitoringScheduleName": SCHEDULE})
    sagemaker.add_response(
        "list_monitoring_executions",
        {"MonitoringExecutionSummaries": executions},
        {"MonitoringScheduleName": SCHEDULE, "SortBy": "ScheduledTime", "SortOrder": "Descending", "MaxResults": limit},
    )


def with_violations(aws, sagemaker: Stubber, report: bytes | None = json.dumps({"violations": VIOLATIONS}).encode()):
    """The latest execution failed; the one before found violations, whose report holds `report` (None: none)."""
    listing(
        sagemaker,
        [
            execution(12, "Failed", "Job inputs had no data"),
            execution(11, "CompletedWithViolations"),
            execution(10, "Completed"),
        ],
    )
    sagemaker.add_response("describe_processing_job", processing_job_described(), {"ProcessingJobName": JOB})
    if report is not None:
        aws.s3.put_object(Bucket=BUCKET, Key=REPORT_KEY, Body=report)


def mlops(*arguments: str, **invoke):
    return CliRunner().invoke(app, list(arguments), env={"COLUMNS": "200"}, **invoke)


def status(manifests, *arguments: str, **invoke):
    return mlops("monitor", "status", "--stage", "staging", "--manifest-dir", str(manifests), *arguments, **invoke)


def succeeded(result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def refused(result, message: str) -> None:
    """Exit 1, nothing on stdout, and one line on stderr that starts with `error: ` and contains `message`."""
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr, result.stderr


def table_rows(output: str, title: str) -> list[list[str]]:
    """The cells of the header (┃) and of each row (│) of the rich table under `title`."""
    lines = output.splitlines()
    start = next(number for number, line in enumerate(lines) if title in line)
    rows = []
    for line in lines[start + 1 :]:
        if line.startswith("└"):
            break
        if line[:1] in ("┃", "│"):
            rows.append([cell.strip() for cell in line.strip(line[0]).split(line[0])])
    return rows


@pytest.mark.parametrize("command", [["monitor"], ["monitor", "status"]])
def test_every_command_has_help(command):
    output = succeeded(mlops(*command, "--help"))
    assert "Usage: " in output
    assert "--manifest-dir" not in output


def test_lists_the_latest_executions_and_the_violations_per_feature_named_from_the_manifest(aws, sagemaker, manifests):
    serve(manifests)
    with_violations(aws, sagemaker)
    output = succeeded(status(manifests))
    assert output.startswith(f"staging: monitoring schedule {SCHEDULE} of endpoint {ENDPOINT} is Scheduled\n")
    assert table_rows(output, "latest executions") == [
        ["scheduled (UTC)", "status", "reason"],
        ["2026-05-01 12:00", "Failed", "Job inputs had no data"],
        ["2026-05-01 11:00", "CompletedWithViolations", ""],
        ["2026-05-01 10:00", "Completed", ""],
    ]
    title = "violations found by the execution scheduled 2026-05-01 11:00"
    assert table_rows(output, title) == [["feature", "column", "check", "description"], *PER_FEATURE]
    assert output.endswith(f"report: {REPORT_URI}\n")


def test_without_a_recorded_baseline_the_violations_name_the_columns(aws, sagemaker, manifests):
    serve(manifests, baseline=None)
    with_violations(aws, sagemaker)
    output = succeeded(status(manifests))
    rows = table_rows(output, "violations found by")[1:]
    assert [row[:3] for row in rows] == [[column, column, check] for _, column, check, _ in PER_FEATURE]


def test_a_completed_latest_execution_found_no_violations_and_no_report_is_read(aws, sagemaker, manifests):
    serve(manifests)
    listing(sagemaker, [execution(11, "Completed"), execution(10, "CompletedWithViolations")])
    output = succeeded(status(manifests))
    assert "the execution scheduled 2026-05-01 11:00 found no violations" in output
    assert "violations found by" not in output


def test_json_holds_the_executions_and_the_violations_per_feature(aws, sagemaker, manifests):
    serve(manifests)
    with_violations(aws, sagemaker)
    document = json.loads(succeeded(status(manifests, "--json")))
    assert document["stage"] == "staging"
    assert document["schedule"] == {
        "name": SCHEDULE,
        "status": "Scheduled",
        "endpoint": ENDPOINT,
        "failure_reason": None,
    }
    assert [(e["scheduled"], e["status"], e["failure_reason"]) for e in document["executions"]] == [
        ("2026-05-01T12:00:00Z", "Failed", "Job inputs had no data"),
        ("2026-05-01T11:00:00Z", "CompletedWithViolations", None),
        ("2026-05-01T10:00:00Z", "Completed", None),
    ]
    latest = document["latest_completed"]
    assert latest["scheduled"] == "2026-05-01T11:00:00Z" and latest["report"] == REPORT_URI
    assert [[v["feature"], v["column"], v["check"], v["description"]] for v in latest["violations"]] == PER_FEATURE


def test_limit_is_the_number_of_executions_asked_for_and_a_page_without_a_completed_one_says_so(
    aws, sagemaker, manifests
):
    serve(manifests)
    listing(sagemaker, [execution(12, "InProgress"), execution(11, "Failed", "Job inputs had no data")], limit=2)
    output = succeeded(status(manifests, "--limit", "2"))
    assert "no completed execution among the latest 2; --limit 100 looks further back" in output
    listing(sagemaker, [execution(12, "InProgress")], limit=2)
    assert json.loads(succeeded(status(manifests, "--limit", "2", "--json")))["latest_completed"] is None


def test_a_schedule_that_never_ran_says_when_it_runs(aws, sagemaker, manifests):
    serve(manifests)
    listing(sagemaker, [])
    assert "no executions yet; it runs hourly" in succeeded(status(manifests))


@pytest.mark.parametrize(
    ("served", "hint"),
    [
        (
            "nothing",
            "staging serves no version yet; promote one registered with a drift baseline "
            "(mlops promote --to staging) and deploy",
        ),
        ("without baseline", "the served version 3 has no recorded drift baseline"),
        ("with baseline", "deploy the stage, or check that the region and account are the stage's"),
    ],
)
def test_a_missing_schedule_is_one_line_saying_what_creates_it(aws, sagemaker, manifests, served, hint):
    if served != "nothing":
        serve(manifests, baseline=BASELINE if served == "with baseline" else None)
    sagemaker.add_client_error(
        "describe_monitoring_schedule",
        "ResourceNotFound",
        f"Monitoring Schedule {SCHEDULE} not found",
        expected_params={"MonitoringScheduleName": SCHEDULE},
    )
    result = status(manifests)
    refused(result, f"staging has no monitoring schedule {SCHEDULE}: ")
    assert hint in result.stderr


def test_a_schedule_the_listing_does_not_find_is_missing_too(aws, sagemaker, manifests):
    serve(manifests)
    sagemaker.add_response("describe_monitoring_schedule", schedule_described(), {"MonitoringScheduleName": SCHEDULE})
    sagemaker.add_client_error("list_monitoring_executions", "ValidationException", "Schedule not found")
    refused(status(manifests), f"staging has no monitoring schedule {SCHEDULE}: ")


def test_a_stage_whose_config_turns_monitoring_off_is_told_how_to_turn_it_on(sagemaker, manifests):
    # No AWS call: the stubbed client has no response queued.
    result = mlops("monitor", "status", "--stage", "dev", "--manifest-dir", str(manifests))
    refused(
        result,
        "dev has no monitoring schedule mlopskit-dev-data-quality: monitoring is off in its stage config; set "
        "stages.dev.monitoring.enabled to true in cdk.json and deploy the stage",
    )


def test_a_report_missing_from_s3_is_named(aws, sagemaker, manifests):
    serve(manifests)
    with_violations(aws, sagemaker, report=None)
    refused(status(manifests), f"cannot read {REPORT_URI}: NoSuchKey")


def test_a_completed_execution_without_a_job_is_one_line(aws, sagemaker, manifests):
    serve(manifests)
    without_job = execution(11, "CompletedWithViolations")
    del without_job["ProcessingJobArn"]
    listing(sagemaker, [without_job])
    refused(
        status(manifests),
        "the CompletedWithViolations execution scheduled 2026-05-01T11:00:00Z names no processing job",
    )


def test_a_job_that_is_gone_is_one_line(aws, sagemaker, manifests):
    serve(manifests)
    listing(sagemaker, [execution(11, "CompletedWithViolations")])
    sagemaker.add_client_error("describe_processing_job", "ResourceNotFound", "Processing job not found")
    refused(status(manifests), f"processing job {JOB} of a monitoring execution not found")


@pytest.mark.parametrize(
    ("report", "problem"),
    [
        (b"<html>", f"{REPORT_URI} is not JSON"),
        (b'{"violations": {}}', f"{REPORT_URI}: not a constraint violations report"),
        (b'{"violations": [{"description": "x"}]}', f"{REPORT_URI}: a violation without feature_name"),
    ],
)
def test_a_report_that_is_no_violations_report_is_named(aws, sagemaker, manifests, report, problem):
    serve(manifests)
    with_violations(aws, sagemaker, report=report)
    refused(status(manifests), problem)


@pytest.mark.parametrize(
    ("arguments", "exit_code", "message"),
    [
        (["--stage", "qa"], 1, "unknown stage 'qa'; allowed: dev, staging, prod"),
        (["--stage", "staging", "--limit", "0"], 2, "0 is outside 1-100"),
        (["--stage", "staging", "--limit", "101"], 2, "101 is outside 1-100"),
    ],
)
def test_bad_options_are_one_line(sagemaker, arguments, exit_code, message):
    result = mlops("monitor", "status", *arguments)
    assert result.exit_code == exit_code and result.stderr.count("\n") == 1, result.output
    assert message in result.stderr


def test_local_has_no_schedule_to_read(sagemaker, manifests):
    refused(status(manifests, obj=Endpoint("http://127.0.0.1:1", REGION)), "--local has no monitoring schedule")
