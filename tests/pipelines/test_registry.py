"""pipelines/registry.py against moto: listing, metrics reports, decisions and their history, refusals."""

from __future__ import annotations

import json
import re

import boto3
import pytest
from botocore.stub import Stubber

from pipelines.registry import (
    DECISIONS_KEPT,
    METADATA_ENTRY_LIMIT,
    METADATA_VALUE_LIMIT,
    Decision,
    Registry,
    RegistryError,
    decisions_in,
    sanitize_metadata_value,
    with_decision,
)
from tests.pipelines.registry_fakes import (
    BUCKET,
    CALLER,
    CLASSES,
    FEATURES,
    GROUPS,
    REGION,
    archive_without_model_json,
    evaluation_json,
    fake_registry,
)

STAGING = GROUPS["staging"]
METADATA_VALUE = re.compile(r"^[\w\s.:/=+\-@]*$")  # the service's [\p{L}\p{Z}\p{N}_.:/=+\-@]* for these inputs


@pytest.fixture
def aws(monkeypatch):
    with fake_registry(monkeypatch) as fake:
        yield fake


@pytest.fixture
def registry(aws):
    return Registry()


def calls_to(client, operation: str) -> list[dict]:
    """Records the parameters of every later call of `operation` on this client."""
    calls: list[dict] = []
    client.meta.events.register(
        f"provide-client-params.sagemaker.{operation}", lambda params, **_: calls.append(params)
    )
    return calls


# Metadata values


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("arn:aws:sts::123456789012:assumed-role/Ops/alice@example.com", None),
        ("looks good, ship it!", "looks good_ ship it_"),
        ('"quoted" (and) [bracketed]', "_quoted_ _and_ _bracketed_"),
        ("two\nlines\tand  spaces", "two lines and spaces"),
        ("Genauigkeit über 95 %", "Genauigkeit über 95 _"),
    ],
)
def test_metadata_values_keep_only_the_allowed_characters(text, expected):
    assert sanitize_metadata_value(text) == (text if expected is None else expected)
    assert METADATA_VALUE.match(sanitize_metadata_value(text))


def test_metadata_values_are_cut_to_the_service_limit():
    assert len(sanitize_metadata_value("x" * 1000)) == METADATA_VALUE_LIMIT


def test_history_keeps_the_last_decisions_within_the_entry_limit_and_other_metadata():
    metadata = {"input_data": "s3://bucket/raw/"}
    for number in range(1, 15):
        decision = Decision(number, "Approved" if number % 2 else "Rejected", CALLER, "2026-01-01T00:00:00Z", "why")
        metadata = with_decision(metadata, decision)
    assert [decision.number for decision in decisions_in(metadata)] == list(range(15 - DECISIONS_KEPT, 15))
    assert metadata["input_data"] == "s3://bucket/raw/"
    assert len(metadata) <= METADATA_ENTRY_LIMIT


def test_history_drops_more_decisions_when_other_metadata_fills_the_entry_limit():
    metadata = {f"key{index}": "value" for index in range(40)}
    for number in range(1, 5):
        metadata = with_decision(metadata, Decision(number, "Approved", CALLER, "at", "why", forced="low"))
    assert len(metadata) <= METADATA_ENTRY_LIMIT
    assert [decision.number for decision in decisions_in(metadata)] == [3, 4]


# Listing and finding versions


def test_versions_are_listed_newest_first_following_every_page(aws, registry):
    arns = [aws.register() for _ in range(5)]
    aws.set_status(arns[1], "Approved")
    calls = calls_to(registry.sagemaker, "ListModelPackages")
    registry.sagemaker.meta.events.register(
        "provide-client-params.sagemaker.ListModelPackages", lambda params, **_: params.update(MaxResults=2)
    )
    versions = registry.list_versions(STAGING)
    assert [version.arn for version in versions] == arns[::-1]
    assert [version.version for version in versions] == [5, 4, 3, 2, 1]
    assert len(calls) == 3  # pages of 2, 2 and 1
    assert all(call["ModelPackageGroupName"] == STAGING for call in calls)
    assert [version.status for version in registry.list_versions(STAGING, "Approved")] == ["Approved"]
    assert {version.status for version in registry.list_versions(STAGING, "PendingManualApproval")} == {
        "PendingManualApproval"
    }


def test_an_empty_group_lists_nothing_and_an_unknown_group_is_an_error(registry):
    assert registry.list_versions(STAGING) == []
    with pytest.raises(RegistryError, match="model package group nope-models does not exist"):
        registry.list_versions("nope-models")


def test_a_caller_that_may_only_list_sees_an_empty_group():
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    with Stubber(sagemaker) as stub:
        stub.add_response("list_model_packages", {"ModelPackageSummaryList": []})
        stub.add_client_error("describe_model_package_group", "AccessDeniedException", "not authorized")
        assert Registry(sagemaker=sagemaker).latest_approved(STAGING) is None


def test_an_unknown_status_is_refused(registry):
    with pytest.raises(
        RegistryError, match="unknown status 'approved'; allowed: PendingManualApproval, Approved, Rejected"
    ):
        registry.list_versions(STAGING, "approved")


def test_a_version_is_found_by_number_or_by_arn_of_its_group(aws, registry):
    first, second = aws.register(), aws.register()
    assert registry.version_arn(STAGING, "2") == second
    assert registry.version_arn(STAGING, f" {first} ") == first
    with pytest.raises(RegistryError, match=f"version 7 not found in model package group {STAGING}"):
        registry.version_arn(STAGING, "7")
    with pytest.raises(RegistryError, match=f"is a version of {STAGING}, not of this stage's group mlopskit-prod"):
        registry.version_arn(GROUPS["prod"], first)
    with pytest.raises(RegistryError, match="'latest' is neither a version number nor a model package version ARN"):
        registry.version_arn(STAGING, "latest")


def test_describing_an_unknown_version_is_an_error(aws, registry):
    arn = aws.register()
    with pytest.raises(RegistryError, match=r"model package version .*/mlopskit-staging-models/9 not found"):
        registry.describe(arn[:-1] + "9")


def test_a_described_version_carries_its_lineage_artifacts_and_report(aws, registry):
    version = registry.describe(aws.register())
    assert (version.group, version.version, version.status) == (STAGING, 1, "PendingManualApproval")
    assert version.lineage["GeneratedBy"].endswith(":pipeline/p/execution/1")
    assert version.model_data_url == f"s3://{BUCKET}/models/{STAGING}/1/model.tar.gz"
    assert version.metrics_uri == f"s3://{BUCKET}/evaluation/{STAGING}/1/evaluation.json"
    assert version.decisions == [] and version.last_decision is None


# Metrics reports


def test_the_report_gives_accuracy_its_deviation_and_per_class_metrics(aws, registry):
    report = registry.metrics(registry.describe(aws.register(accuracy=0.95)))
    expected = json.loads(evaluation_json(0.95))["multiclass_classification_metrics"]
    assert report.problem is None
    assert report.accuracy == pytest.approx(0.95)
    assert report.accuracy_standard_deviation == expected["accuracy"]["standard_deviation"] > 0
    assert list(report.per_class) == list(CLASSES)
    assert report.per_class["setosa"] == expected["per_class"]["setosa"]
    assert set(report.per_class["setosa"]) == {"precision", "recall", "f1", "support"}


@pytest.mark.parametrize(
    ("registration", "problem"),
    [
        ({"attach_metrics": False}, "version 1 has no metrics report attached"),
        ({"accuracy": None}, "cannot read s3://mlopskit-artifacts-test/evaluation/.*/evaluation.json: NoSuchKey"),
        ({"evaluation": b"{not json"}, "evaluation.json is not JSON"),
        ({"evaluation": b'{"regression_metrics": {}}'}, "has no numeric multiclass_classification_metrics.accuracy"),
        ({"evaluation": b'{"multiclass_classification_metrics": {"accuracy": {"value": "high"}}}'}, "no numeric"),
    ],
)
def test_a_missing_or_unreadable_report_is_reported_not_raised(aws, registry, registration, problem):
    report = registry.metrics(registry.describe(aws.register(**registration)))
    assert report.accuracy is None
    assert re.search(problem, report.problem)


# Decisions


def test_approval_records_who_when_and_why_and_keeps_other_metadata(aws, registry):
    arn = aws.register(accuracy=0.95)
    aws.sagemaker.update_model_package(
        ModelPackageArn=arn,
        ModelApprovalStatus="PendingManualApproval",
        CustomerMetadataProperties={"input_data": "s3://data/raw/"},
    )
    outcome = registry.approve(arn, "beats v3, checked, by hand!", accuracy_threshold=0.93)
    assert outcome.changed
    assert outcome.message == f"approved {STAGING}/1 (accuracy 0.9500)"
    described = aws.describe(arn)
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["ApprovalDescription"] == "beats v3, checked, by hand!"
    metadata = described["CustomerMetadataProperties"]
    assert metadata["input_data"] == "s3://data/raw/"
    assert metadata["decision.1.status"] == "Approved"
    assert metadata["decision.1.by"] == CALLER
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", metadata["decision.1.at"])
    assert metadata["decision.1.reason"] == "beats v3_ checked_ by hand_"
    assert all(METADATA_VALUE.match(value) for value in metadata.values())


def test_every_decision_is_appended_to_the_history(aws, registry):
    arn = aws.register(accuracy=0.95)
    for _ in range(DECISIONS_KEPT // 2 + 1):
        registry.approve(arn, "good", accuracy_threshold=0.9)
        registry.reject(arn, "bad")
    decisions = registry.describe(arn).decisions
    assert [decision.number for decision in decisions] == list(range(3, 13))
    assert [decision.status for decision in decisions[-2:]] == ["Approved", "Rejected"]
    assert aws.describe(arn)["ApprovalDescription"] == "bad"
    assert len(aws.describe(arn)["CustomerMetadataProperties"]) == 4 * DECISIONS_KEPT


def test_trimmed_decisions_are_removed_by_name_as_aws_merges_metadata(aws, registry):
    arn = aws.register(accuracy=0.95)
    for _ in range(DECISIONS_KEPT // 2):
        registry.approve(arn, "good", accuracy_threshold=0.9)
        registry.reject(arn, "bad")
    updates = calls_to(registry.sagemaker, "UpdateModelPackage")
    registry.approve(arn, "good again", accuracy_threshold=0.9)
    (update,) = updates
    assert update["CustomerMetadataPropertiesToRemove"] == [
        f"decision.1.{field}" for field in ("status", "by", "at")
    ] + ["decision.1.reason"]
    assert update["ModelApprovalStatus"] == "Approved" and update["ApprovalDescription"] == "good again"


def test_approving_an_approved_version_changes_nothing_and_calls_no_update(aws, registry):
    arn = aws.register(accuracy=0.95)
    registry.approve(arn, "first", accuracy_threshold=0.9)
    before = aws.describe(arn)
    updates = calls_to(registry.sagemaker, "UpdateModelPackage")
    outcome = registry.approve(arn, "again", accuracy_threshold=0.9)
    assert not outcome.changed
    assert outcome.message == f"version {STAGING}/1 is already Approved; nothing changed"
    assert updates == []
    assert aws.describe(arn) | {"ResponseMetadata": None} == before | {"ResponseMetadata": None}


def test_rejecting_a_rejected_version_changes_nothing(aws, registry):
    arn = aws.register(status="Rejected")
    updates = calls_to(registry.sagemaker, "UpdateModelPackage")
    assert not registry.reject(arn, "still bad").changed
    assert updates == []


@pytest.mark.parametrize("reason", ["", "   ", "\n\t", None])
def test_a_decision_without_a_reason_is_refused_before_any_call(aws, registry, reason):
    arn = aws.register(accuracy=0.95)
    calls = []
    registry.sagemaker.meta.events.register("before-call.sagemaker.*", lambda **event: calls.append(event))
    with pytest.raises(RegistryError, match=r"a reason is required \(--reason TEXT\)"):
        registry.approve(arn, reason, accuracy_threshold=0.9)
    with pytest.raises(RegistryError, match="a reason is required"):
        registry.reject(arn, reason)
    assert calls == []


def test_a_reason_longer_than_the_approval_description_is_refused(aws, registry):
    with pytest.raises(RegistryError, match="the reason has 1025 characters; at most 1024 fit"):
        registry.reject(aws.register(), "x" * 1025)


def test_approval_below_the_threshold_is_refused_and_changes_nothing(aws, registry):
    arn = aws.register(accuracy=0.91)
    before = aws.describe(arn)
    with pytest.raises(RegistryError, match=r"accuracy 0.9100 is below the stage's threshold 0.93; --force approves"):
        registry.approve(arn, "please", accuracy_threshold=0.93)
    assert aws.describe(arn) | {"ResponseMetadata": None} == before | {"ResponseMetadata": None}
    assert "CustomerMetadataProperties" not in before and "LastModifiedTime" not in aws.describe(arn)


def test_approval_at_exactly_the_threshold_passes_as_in_the_pipeline_condition(aws, registry):
    assert registry.approve(aws.register(accuracy=0.93), "at threshold", accuracy_threshold=0.93).changed


def test_forced_approval_below_the_threshold_records_the_override(aws, registry):
    arn = aws.register(accuracy=0.91)
    outcome = registry.approve(arn, "hotfix", accuracy_threshold=0.93, force=True)
    assert outcome.message.endswith("forced although accuracy 0.9100 is below the stage's threshold 0.93")
    assert aws.status(arn) == "Approved"
    (decision,) = registry.describe(arn).decisions
    assert decision.forced == "accuracy 0.9100 is below the stage_s threshold 0.93"


def test_an_unreadable_report_refuses_approval_unless_forced(aws, registry):
    arn = aws.register(accuracy=None)
    with pytest.raises(RegistryError, match="its accuracy cannot be checked: cannot read s3://.*: NoSuchKey"):
        registry.approve(arn, "trust me", accuracy_threshold=0.9)
    assert aws.status(arn) == "PendingManualApproval"
    assert registry.approve(arn, "trust me", accuracy_threshold=0.9, force=True).changed


# Latest approved


def test_latest_approved_is_the_approved_version_created_last(aws, registry):
    first, second, third = aws.register(), aws.register(), aws.register()
    assert registry.latest_approved(STAGING) is None
    registry.approve(second, "ok", accuracy_threshold=0.9)
    registry.approve(first, "approved after the second: creation time still decides", accuracy_threshold=0.9)
    latest = registry.latest_approved(STAGING)
    assert latest.arn == second and latest.version == 2
    assert aws.status(third) == "PendingManualApproval"


# The served model's signature


def test_the_signature_comes_from_model_json_in_the_archive(aws, registry):
    signature = registry.signature(registry.describe(aws.register()))
    assert signature.feature_names == FEATURES
    assert signature.classes == CLASSES


def test_a_missing_or_foreign_archive_is_an_error(aws, registry):
    version = registry.describe(aws.register())
    aws.s3.put_object(Bucket=BUCKET, Key=f"models/{STAGING}/1/model.tar.gz", Body=archive_without_model_json())
    with pytest.raises(RegistryError, match="model.tar.gz holds no model.json"):
        registry.signature(version)
    aws.s3.put_object(Bucket=BUCKET, Key=f"models/{STAGING}/1/model.tar.gz", Body=b"not gzip")
    with pytest.raises(RegistryError, match="not a model archive with a readable model.json"):
        registry.signature(version)
    aws.s3.delete_object(Bucket=BUCKET, Key=f"models/{STAGING}/1/model.tar.gz")
    with pytest.raises(RegistryError, match="cannot read s3://.*/model.tar.gz: NoSuchKey"):
        registry.signature(version)
