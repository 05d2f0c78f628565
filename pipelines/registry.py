"""The model registry as operators and CI use it: the versions of a model package group, the evaluation each
version was registered with, and approval decisions that record who decided, when and why.

Plain boto3: credentials, region and endpoint come from the standard settings. The code behaves the same on AWS
and on moto. moto's update_model_package overwrites every field it is not given, while AWS merges metadata; so
every update passes the status, the description and the whole merged metadata map, and removes trimmed keys
explicitly.
"""

from __future__ import annotations

import json
import re
import tarfile
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from infra.manifest import MODEL_PACKAGE_ARN, DriftBaseline
from pipelines.spec import ApprovalStatus
from training_code.contract import (
    ACCURACY_JSON_PATH,
    BASELINE_FEATURES_FILE,
    MODEL_ARCHIVE,
    MODEL_METADATA_FILE,
    MULTICLASS_METRICS,
)

# boto3 clients are generated at runtime; no stubs are installed.
Client = Any


# Service limits (botocore's service model; moto does not check them).
APPROVAL_DESCRIPTION_LIMIT = 1024
METADATA_ENTRY_LIMIT = 50
METADATA_VALUE_LIMIT = 256
# Four or five entries per decision: the last ten fit the 50-entry limit beside a few entries of other tools.
DECISIONS_KEPT = 10
DECISION_FIELDS = ("status", "by", "at", "reason", "forced")
_DECISION_KEY = re.compile(r"^decision\.(?P<number>\d+)\.(?P<field>[a-z]+)$")
# Metadata values may hold only letters, digits, separators and these (no commas, quotes or brackets).
_METADATA_PUNCTUATION = frozenset("_.:/=+-@")


class RegistryError(Exception):
    """A refusal, or something not found; the message is one line that says what to do."""


def sanitize_metadata_value(text: str) -> str:
    """`text` in the charset and length that CustomerMetadataProperties values allow; other characters become _."""
    collapsed = " ".join(text.split())
    allowed = (
        char if unicodedata.category(char)[0] in "LNZ" or char in _METADATA_PUNCTUATION else "_" for char in collapsed
    )
    return "".join(allowed)[:METADATA_VALUE_LIMIT]


def utc_timestamp(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Decision:
    """One approval or rejection, as recorded in the version's metadata under `decision.<number>.<field>`."""

    number: int
    status: str
    by: str
    at: str
    reason: str
    forced: str = ""  # why the accuracy check was overridden, when it was

    def metadata(self) -> dict[str, str]:
        values = {"status": self.status, "by": self.by, "at": self.at, "reason": self.reason, "forced": self.forced}
        return {
            f"decision.{self.number}.{name}": sanitize_metadata_value(value) for name, value in values.items() if value
        }


def decisions_in(metadata: Mapping[str, str]) -> list[Decision]:
    """The decisions recorded in a metadata map, oldest first."""
    fields_by_number: dict[int, dict[str, str]] = {}
    for key, value in metadata.items():
        match = _DECISION_KEY.match(key)
        if match and match["field"] in DECISION_FIELDS:
            fields_by_number.setdefault(int(match["number"]), {})[match["field"]] = value
    return [
        Decision(number, **{name: values.get(name, "") for name in DECISION_FIELDS})
        for number, values in sorted(fields_by_number.items())
    ]


def with_decision(metadata: Mapping[str, str], decision: Decision) -> dict[str, str]:
    """The metadata map with `decision` added, dropping the oldest decisions beyond the kept number or entry limit."""
    merged = {**metadata, **decision.metadata()}
    decisions = decisions_in(merged)
    while decisions and (len(decisions) > DECISIONS_KEPT or len(merged) > METADATA_ENTRY_LIMIT):
        prefix = f"decision.{decisions.pop(0).number}."
        merged = {key: value for key, value in merged.items() if not key.startswith(prefix)}
    return merged


@dataclass(frozen=True)
class VersionSummary:
    arn: str
    group: str
    version: int
    status: str
    created: datetime

    @property
    def label(self) -> str:
        return f"{self.group}/{self.version}"


def _summary_fields(package: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "arn": package["ModelPackageArn"],
        "group": package["ModelPackageGroupName"],
        "version": int(package["ModelPackageVersion"]),
        # AWS defaults a missing status to PendingManualApproval; moto leaves the key out.
        "status": package.get("ModelApprovalStatus", ApprovalStatus.PENDING),
        "created": package["CreationTime"],
    }


@dataclass(frozen=True)
class Container:
    image: str
    model_data_url: str | None


@dataclass(frozen=True)
class ModelVersion(VersionSummary):
    """One version as describe_model_package returns it, with the fields the operator reads."""

    description: str
    approval_description: str
    last_modified: datetime | None
    customer_metadata: dict[str, str]
    # MetadataProperties: GeneratedBy (the pipeline execution), ProjectId, CommitId, Repository, when set.
    lineage: dict[str, str]
    containers: tuple[Container, ...]
    metrics_uri: str | None
    # The data-quality statistics that monitoring compares the version's traffic with (its drift-check baseline), and
    # the model-quality constraints its accuracy on labelled traffic is held to.
    baseline_statistics_uri: str | None = None
    model_constraints_uri: str | None = None

    @classmethod
    def from_api(cls, package: Mapping[str, Any]) -> ModelVersion:
        containers = package.get("InferenceSpecification", {}).get("Containers", [])
        statistics = package.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {})
        return cls(
            **_summary_fields(package),
            description=package.get("ModelPackageDescription", ""),
            approval_description=package.get("ApprovalDescription") or "",
            last_modified=package.get("LastModifiedTime"),
            customer_metadata=dict(package.get("CustomerMetadataProperties") or {}),
            lineage=dict(package.get("MetadataProperties") or {}),
            containers=tuple(Container(c.get("Image", ""), c.get("ModelDataUrl")) for c in containers),
            metrics_uri=statistics.get("S3Uri"),
            baseline_statistics_uri=_drift_check_uri(package, "ModelDataQuality", "Statistics"),
            model_constraints_uri=_drift_check_uri(package, "ModelQuality", "Constraints"),
        )

    @property
    def decisions(self) -> list[Decision]:
        return decisions_in(self.customer_metadata)

    @property
    def last_decision(self) -> Decision | None:
        return self.decisions[-1] if self.decisions else None

    @property
    def other_metadata(self) -> dict[str, str]:
        """Customer metadata that is not decision history (e.g. what another tool recorded about the input data)."""
        return {key: value for key, value in self.customer_metadata.items() if not _DECISION_KEY.match(key)}

    @property
    def model_data_url(self) -> str | None:
        return self.containers[0].model_data_url if self.containers else None


@dataclass(frozen=True)
class MetricsReport:
    """The evaluation attached as ModelMetrics.ModelQuality.Statistics; `problem` says why accuracy is missing."""

    uri: str | None
    accuracy: float | None = None
    accuracy_standard_deviation: float | None = None
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    problem: str | None = None


@dataclass(frozen=True)
class ModelSignature:
    """What a request to the served model must look like, from the artifact's model.json."""

    feature_names: tuple[str, ...]
    classes: tuple[str, ...]


@dataclass(frozen=True)
class DecisionOutcome:
    version: ModelVersion
    changed: bool
    message: str


def _drift_check_uri(package: Mapping[str, Any], kind: str, part: str) -> str | None:
    return package.get("DriftCheckBaselines", {}).get(kind, {}).get(part, {}).get("S3Uri")


def split_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket or not key:
        raise RegistryError(f"{uri!r} is not an s3://bucket/key URI")
    return bucket, key


def _at_path(document: Any, dotted_path: str) -> Any:
    for part in dotted_path.split("."):
        if not isinstance(document, Mapping) or part not in document:
            return None
        document = document[part]
    return document


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def parse_metrics(uri: str, report: Any) -> MetricsReport:
    accuracy = _number(_at_path(report, ACCURACY_JSON_PATH))
    if accuracy is None:
        return MetricsReport(uri, problem=f"{uri} has no numeric {ACCURACY_JSON_PATH}")
    per_class = _at_path(report, f"{MULTICLASS_METRICS}.per_class") or {}
    return MetricsReport(
        uri,
        accuracy=accuracy,
        accuracy_standard_deviation=_number(_at_path(report, f"{MULTICLASS_METRICS}.accuracy.standard_deviation")),
        per_class={
            str(label): {name: number for name, value in values.items() if (number := _number(value)) is not None}
            for label, values in per_class.items()
            if isinstance(values, Mapping)
        }
        if isinstance(per_class, Mapping)
        else {},
    )


class Registry:
    """The registry calls, over clients that tests may pass in (default: plain boto3 clients)."""

    def __init__(self, sagemaker: Client = None, s3: Client = None, sts: Client = None) -> None:
        self.sagemaker = sagemaker or boto3.client("sagemaker")
        self._s3 = s3
        self._sts = sts

    @property
    def s3(self) -> Client:
        if self._s3 is None:
            self._s3 = boto3.client("s3")
        return self._s3

    def caller(self) -> str:
        """Who is deciding or deploying: the STS caller ARN (Studio's LastModifiedBy names no IAM identity)."""
        if self._sts is None:
            self._sts = boto3.client("sts")
        return self._sts.get_caller_identity()["Arn"]

    # Reading

    def require_group(self, group: str) -> None:
        try:
            self.sagemaker.describe_model_package_group(ModelPackageGroupName=group)
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code == "AccessDeniedException":
                return  # a caller that may only list (CI) cannot tell an empty group from none: say "empty"
            if code in ("ValidationException", "ResourceNotFound"):
                raise RegistryError(
                    f"model package group {group} does not exist (is the stage's pipeline stack deployed, "
                    "and are the region and account right?)"
                ) from None
            raise

    def list_versions(self, group: str, status: str | None = None) -> list[VersionSummary]:
        """Every version of the group (optionally of one status), newest first by creation time."""
        if status is not None and status not in tuple(ApprovalStatus):
            raise RegistryError(f"unknown status {status!r}; allowed: {', '.join(ApprovalStatus)}")
        # Always name the group: without one, ListModelPackages lists unversioned packages only.
        pages = self.sagemaker.get_paginator("list_model_packages").paginate(
            ModelPackageGroupName=group,
            SortBy="CreationTime",
            SortOrder="Descending",
            **({"ModelApprovalStatus": status} if status else {}),
        )
        summaries = [
            VersionSummary(**_summary_fields(package)) for page in pages for package in page["ModelPackageSummaryList"]
        ]
        if not summaries:
            self.require_group(group)  # an empty group, or none at all?
        return sorted(summaries, key=lambda summary: (summary.created, summary.version), reverse=True)

    def latest_approved(self, group: str) -> VersionSummary | None:
        """The Approved version created last. Creation decides, not approval: approving an older version later
        does not make it the newest model (serve an older one with an explicit version instead)."""
        approved = self.list_versions(group, status=ApprovalStatus.APPROVED)
        return max(approved, key=lambda summary: (summary.created, summary.version), default=None)

    def version_arn(self, group: str, reference: str) -> str:
        """The full ARN of a version given as its number or its ARN (which must be in `group`)."""
        reference = reference.strip()
        if reference.isdigit():
            number = int(reference)
            for summary in self.list_versions(group):
                if summary.version == number:
                    return summary.arn
            raise RegistryError(f"version {number} not found in model package group {group}")
        match = MODEL_PACKAGE_ARN.match(reference)
        if not match:
            raise RegistryError(f"{reference!r} is neither a version number nor a model package version ARN")
        name = group.rsplit("/", 1)[-1]  # the group may be given by ARN
        if match["group"] != name:
            raise RegistryError(f"{reference} is a version of {match['group']}, not of this stage's group {name}")
        return reference

    def describe(self, arn: str) -> ModelVersion:
        try:
            return ModelVersion.from_api(self.sagemaker.describe_model_package(ModelPackageName=arn))
        except ClientError as error:
            if error.response["Error"]["Code"] in ("ValidationException", "ResourceNotFound"):
                raise RegistryError(f"model package version {arn} not found") from None
            raise

    def metrics(self, version: ModelVersion) -> MetricsReport:
        """The attached evaluation; a missing or unreadable report comes back with its `problem`, not raised."""
        uri = version.metrics_uri
        if not uri:
            return MetricsReport(None, problem=f"version {version.version} has no metrics report attached")
        try:
            bucket, key = split_s3_uri(uri)
            report = json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except RegistryError as error:
            return MetricsReport(uri, problem=str(error))
        except ClientError as error:
            return MetricsReport(uri, problem=f"cannot read {uri}: {error.response['Error']['Code']}")
        except BotoCoreError as error:
            return MetricsReport(uri, problem=f"cannot read {uri}: {error}")
        except ValueError:
            return MetricsReport(uri, problem=f"{uri} is not JSON")
        return parse_metrics(uri, report)

    def drift_baseline(self, version: ModelVersion) -> DriftBaseline | None:
        """The version's data-quality baseline (the folder its statistics lie in) and the feature of each captured
        column, read from the baseline's features.json; None for a version registered without a baseline."""
        uri = version.baseline_statistics_uri
        if not uri:
            return None
        folder = uri.rsplit("/", 1)[0] + "/"
        features_uri = folder + BASELINE_FEATURES_FILE
        try:
            bucket, key = split_s3_uri(features_uri)
            columns = json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            features = tuple(columns[f"_c{position}"] for position in range(len(columns)))
            return DriftBaseline(folder, features, version.model_constraints_uri)
        except ClientError as error:
            raise RegistryError(f"cannot read {features_uri}: {error.response['Error']['Code']}") from None
        except (ValueError, KeyError, TypeError) as error:
            raise RegistryError(f"{features_uri}: not the column-to-feature map of a baseline ({error})") from None

    def signature(self, version: ModelVersion) -> ModelSignature:
        """Feature names and classes from model.json inside the version's model.tar.gz (read as a stream)."""
        url = version.model_data_url
        if not url:
            raise RegistryError(f"version {version.label} names no model data URL")
        bucket, key = split_s3_uri(url)
        try:
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"]
            with tarfile.open(fileobj=body, mode="r|gz") as archive:
                for member in archive:
                    if member.name.removeprefix("./") == MODEL_METADATA_FILE and (file := archive.extractfile(member)):
                        metadata = json.load(file)
                        return ModelSignature(tuple(metadata["feature_names"]), tuple(metadata["classes"]))
        except ClientError as error:
            raise RegistryError(f"cannot read {url}: {error.response['Error']['Code']}") from None
        except (tarfile.TarError, OSError, ValueError, KeyError, TypeError) as error:
            raise RegistryError(f"{url}: not a model archive with a readable {MODEL_METADATA_FILE} ({error})") from None
        raise RegistryError(f"{url} holds no {MODEL_METADATA_FILE}")

    def download_model(self, version: ModelVersion, destination: Path) -> Path:
        """The version's model.tar.gz into `destination` (a directory the serving image's server accepts)."""
        url = version.model_data_url
        if not url:
            raise RegistryError(f"version {version.label} names no model data URL")
        bucket, key = split_s3_uri(url)
        destination.mkdir(parents=True, exist_ok=True)
        target = destination / MODEL_ARCHIVE
        try:
            self.s3.download_file(bucket, key, str(target))
        except ClientError as error:
            raise RegistryError(f"cannot read {url}: {error.response['Error']['Code']}") from None
        return target

    # Deciding

    def approve(self, arn: str, reason: str, *, accuracy_threshold: float, force: bool = False) -> DecisionOutcome:
        """Approve unless already Approved (no update: it would emit the approval event and redeploy again), or
        unless the evaluation is below the threshold or unreadable and `force` is not given."""
        reason = checked_reason(reason)
        version = self.describe(arn)
        if version.status == ApprovalStatus.APPROVED:
            return DecisionOutcome(version, False, f"version {version.label} is already Approved; nothing changed")
        report = self.metrics(version)
        shortfall = _accuracy_shortfall(report, accuracy_threshold)
        if shortfall and not force:
            raise RegistryError(f"approval of {version.label} refused: {shortfall}; --force approves anyway")
        version = self._decide(version, ApprovalStatus.APPROVED, reason, forced=shortfall or "")
        accuracy = "" if report.accuracy is None else f" (accuracy {report.accuracy:.4f})"
        overridden = f"; forced although {shortfall}" if shortfall else ""
        return DecisionOutcome(version, True, f"approved {version.label}{accuracy}{overridden}")

    def reject(self, arn: str, reason: str) -> DecisionOutcome:
        reason = checked_reason(reason)
        version = self.describe(arn)
        if version.status == ApprovalStatus.REJECTED:
            return DecisionOutcome(version, False, f"version {version.label} is already Rejected; nothing changed")
        version = self._decide(version, ApprovalStatus.REJECTED, reason)
        return DecisionOutcome(version, True, f"rejected {version.label}")

    def _decide(self, version: ModelVersion, status: ApprovalStatus, reason: str, forced: str = "") -> ModelVersion:
        previous = version.decisions[-1].number if version.decisions else 0
        decision = Decision(previous + 1, status, self.caller(), utc_timestamp(), reason, forced)
        metadata = with_decision(version.customer_metadata, decision)
        trimmed = [key for key in version.customer_metadata if key not in metadata]
        self.sagemaker.update_model_package(
            ModelPackageArn=version.arn,
            ModelApprovalStatus=status.value,
            ApprovalDescription=reason,
            CustomerMetadataProperties=metadata,
            # AWS merges the map into the old one, so dropped decisions must be removed by name.
            **({"CustomerMetadataPropertiesToRemove": trimmed} if trimmed else {}),
        )
        return self.describe(version.arn)


def checked_reason(reason: str | None) -> str:
    reason = " ".join((reason or "").split())
    if not reason:
        raise RegistryError("a reason is required (--reason TEXT): it is recorded with the decision")
    if len(reason) > APPROVAL_DESCRIPTION_LIMIT:
        raise RegistryError(f"the reason has {len(reason)} characters; at most {APPROVAL_DESCRIPTION_LIMIT} fit")
    return reason


def _accuracy_shortfall(report: MetricsReport, threshold: float) -> str | None:
    """Why the evaluation does not allow approval, or None when it does."""
    if report.accuracy is None:
        return f"its accuracy cannot be checked: {report.problem}"
    if report.accuracy < threshold:
        return f"accuracy {report.accuracy:.4f} is below the stage's threshold {threshold}"
    return None
