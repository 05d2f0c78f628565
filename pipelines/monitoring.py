"""Drift monitoring as operators read it: the state and latest executions of a stage's data-quality monitoring
schedule, and the violations per feature that a completed execution reported.

Plain boto3, like pipelines/registry.py: credentials, region and endpoint come from the standard settings. moto
implements no monitoring schedules; tests stub those calls with botocore's Stubber.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from pipelines.registry import RegistryError, split_s3_uri, utc_timestamp
from training_code.contract import VIOLATIONS_FILE

# boto3 clients are generated at runtime; no stubs are installed.
Client = Any

COMPLETED = "Completed"
COMPLETED_WITH_VIOLATIONS = "CompletedWithViolations"
# ListMonitoringExecutions returns at most this many executions per call (botocore's service model).
MAX_EXECUTIONS = 100
# How the analyzer names the columns of captured CSV requests.
CAPTURED_COLUMN = re.compile(r"^_c(?P<position>\d+)$")
NOT_FOUND_CODES = ("ResourceNotFound", "ValidationException")


class MonitoringError(Exception):
    """A report that cannot be read, or an execution that names none; the message is one line."""


class NoSchedule(MonitoringError):
    """The monitoring schedule does not exist (in this account and region)."""


@dataclass(frozen=True)
class Schedule:
    name: str
    status: str
    endpoint: str | None
    failure_reason: str | None


@dataclass(frozen=True)
class Execution:
    scheduled: datetime
    status: str
    failure_reason: str | None
    processing_job_arn: str | None

    @property
    def completed(self) -> bool:
        return self.status in (COMPLETED, COMPLETED_WITH_VIOLATIONS)


@dataclass(frozen=True)
class Violation:
    column: str
    feature: str
    check: str
    description: str


@dataclass(frozen=True)
class ExecutionReport:
    """What a completed execution found; `uri` is the violations file read, None where it completed without
    violations (there is nothing to read)."""

    execution: Execution
    uri: str | None
    violations: tuple[Violation, ...]


def feature_of(column: str, features: tuple[str, ...]) -> str:
    """The feature that a captured column is, per the served version's baseline; the column's name where the
    baseline does not say (none recorded, or a column beyond its features)."""
    match = CAPTURED_COLUMN.match(column)
    if match and int(match["position"]) < len(features):
        return features[int(match["position"])]
    return column


def _column_order(column: str) -> tuple[float, str]:
    # Captured columns by position (_c10 after _c9), any other name after them.
    match = CAPTURED_COLUMN.match(column)
    return (int(match["position"]), "") if match else (math.inf, column)


def parse_violations(uri: str, document: Any, features: tuple[str, ...]) -> tuple[Violation, ...]:
    """The violations of a constraint_violations.json, in column order."""
    entries = document.get("violations") if isinstance(document, Mapping) else None
    if not isinstance(entries, list):
        raise MonitoringError(f"{uri}: not a constraint violations report (no list of violations)")
    violations = []
    for entry in entries:
        column = entry.get("feature_name") if isinstance(entry, Mapping) else None
        check = entry.get("constraint_check_type") if isinstance(entry, Mapping) else None
        if not isinstance(column, str) or not isinstance(check, str):
            raise MonitoringError(f"{uri}: a violation without feature_name and constraint_check_type: {entry!r:.80}")
        description = " ".join(str(entry.get("description") or "").split())
        violations.append(Violation(column, feature_of(column, features), check, description))
    return tuple(sorted(violations, key=lambda violation: (_column_order(violation.column), violation.check)))


class Monitoring:
    """The monitoring calls, over clients that tests may pass in (default: plain boto3 clients)."""

    def __init__(self, sagemaker: Client = None, s3: Client = None) -> None:
        self.sagemaker = sagemaker or boto3.client("sagemaker")
        self._s3 = s3

    @property
    def s3(self) -> Client:
        if self._s3 is None:
            self._s3 = boto3.client("s3")
        return self._s3

    def schedule(self, name: str) -> Schedule:
        try:
            described = self.sagemaker.describe_monitoring_schedule(MonitoringScheduleName=name)
        except ClientError as error:
            if error.response["Error"]["Code"] in NOT_FOUND_CODES:
                raise NoSchedule(f"monitoring schedule {name} does not exist") from None
            raise
        return Schedule(
            name,
            described["MonitoringScheduleStatus"],
            described.get("EndpointName"),
            described.get("FailureReason"),
        )

    def executions(self, schedule: str, limit: int) -> list[Execution]:
        """The schedule's latest `limit` executions, newest scheduled first."""
        try:
            summaries = self.sagemaker.list_monitoring_executions(
                MonitoringScheduleName=schedule,
                SortBy="ScheduledTime",
                SortOrder="Descending",
                MaxResults=limit,
            )["MonitoringExecutionSummaries"]
        except ClientError as error:
            if error.response["Error"]["Code"] in NOT_FOUND_CODES:
                raise NoSchedule(f"monitoring schedule {schedule} does not exist") from None
            raise
        return [
            Execution(
                summary["ScheduledTime"],
                summary["MonitoringExecutionStatus"],
                summary.get("FailureReason"),
                summary.get("ProcessingJobArn"),
            )
            for summary in summaries
        ]

    def report(self, execution: Execution, features: tuple[str, ...]) -> ExecutionReport:
        """The violations of a completed execution, read from its processing job's report folder."""
        if execution.status == COMPLETED:
            return ExecutionReport(execution, None, ())
        uri = self._report_folder(execution).rstrip("/") + "/" + VIOLATIONS_FILE
        try:
            bucket, key = split_s3_uri(uri)
            document = json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except RegistryError as error:
            raise MonitoringError(f"the execution's report folder is no S3 folder: {error}") from None
        except ClientError as error:
            raise MonitoringError(f"cannot read {uri}: {error.response['Error']['Code']}") from None
        except BotoCoreError as error:
            raise MonitoringError(f"cannot read {uri}: {error}") from None
        except ValueError:
            raise MonitoringError(f"{uri} is not JSON") from None
        return ExecutionReport(execution, uri, parse_violations(uri, document, features))

    def _report_folder(self, execution: Execution) -> str:
        arn = execution.processing_job_arn
        if not arn:
            scheduled = utc_timestamp(execution.scheduled)
            raise MonitoringError(f"the {execution.status} execution scheduled {scheduled} names no processing job")
        # ProcessingJobArn ends in processing-job/<name>.
        name = arn.rsplit("/", 1)[-1]
        try:
            job = self.sagemaker.describe_processing_job(ProcessingJobName=name)
        except ClientError as error:
            if error.response["Error"]["Code"] in NOT_FOUND_CODES:
                raise MonitoringError(f"processing job {name} of a monitoring execution not found") from None
            raise
        outputs = job.get("ProcessingOutputConfig", {}).get("Outputs", [])
        folders = [output["S3Output"]["S3Uri"] for output in outputs if "S3Output" in output]
        if not folders:
            raise MonitoringError(f"processing job {name} of a monitoring execution names no S3 output")
        return folders[0]
