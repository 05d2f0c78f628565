"""Buckets per stage: encryption, versioning, TLS-only access, lifecycle, logging and removal policies."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config import STAGE_NAMES
from infra.layout import ArtifactPrefix
from infra.naming import BucketPurpose


@pytest.fixture
def buckets(resources_of):
    def of_stage(stage: str) -> dict[BucketPurpose, tuple[str, dict[str, Any]]]:
        found = {}
        for logical_id, bucket in resources_of(stage, "Foundation", "AWS::S3::Bucket").items():
            purpose = next(p for p in BucketPurpose if f"-{p}-" in bucket["Properties"]["BucketName"]["Fn::Sub"])
            found[purpose] = (logical_id, bucket)
        return found

    return of_stage


def lifecycle_rules(bucket: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {rule["Id"]: rule for rule in bucket["Properties"]["LifecycleConfiguration"]["Rules"]}


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_three_buckets_with_deterministic_account_and_region_scoped_names(buckets, stage):
    names = {purpose: bucket["Properties"]["BucketName"] for purpose, (_, bucket) in buckets(stage).items()}
    assert names == {
        purpose: {"Fn::Sub": f"mlopskit-{stage}-{purpose}-${{AWS::AccountId}}-${{AWS::Region}}"}
        for purpose in BucketPurpose
    }


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_data_and_artifacts_use_the_stage_kms_key(buckets, resources_of, stage):
    (key_id,) = resources_of(stage, "Foundation", "AWS::KMS::Key")
    for purpose in (BucketPurpose.DATA, BucketPurpose.ARTIFACTS):
        _, bucket = buckets(stage)[purpose]
        (encryption,) = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert encryption["ServerSideEncryptionByDefault"] == {
            "SSEAlgorithm": "aws:kms",
            "KMSMasterKeyID": {"Fn::GetAtt": [key_id, "Arn"]},
        }
        assert encryption["BucketKeyEnabled"] is True


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_access_logs_bucket_uses_s3_managed_keys_as_log_delivery_requires(buckets, stage):
    _, logs = buckets(stage)[BucketPurpose.ACCESS_LOGS]
    (encryption,) = logs["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_every_bucket_blocks_public_access_is_versioned_and_owner_enforced(buckets, stage):
    for _, bucket in buckets(stage).values():
        properties = bucket["Properties"]
        assert properties["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
        assert properties["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_every_bucket_policy_denies_requests_without_tls_1_2(buckets, resources_of, stage):
    policies = {
        policy["Properties"]["Bucket"]["Ref"]: policy["Properties"]["PolicyDocument"]["Statement"]
        for policy in resources_of(stage, "Foundation", "AWS::S3::BucketPolicy").values()
    }
    for logical_id, _ in buckets(stage).values():
        denials = [s for s in policies[logical_id] if s["Effect"] == "Deny"]
        everything = [
            {"Fn::GetAtt": [logical_id, "Arn"]},
            {"Fn::Join": ["", [{"Fn::GetAtt": [logical_id, "Arn"]}, "/*"]]},
        ]
        assert {
            "Action": "s3:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Resource": everything,
        } in denials
        assert any(s.get("Condition") == {"NumericLessThan": {"s3:TlsVersion": 1.2}} for s in denials)


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_lifecycle_expires_noncurrent_versions_and_aborts_incomplete_uploads(buckets, stage_configs, stage):
    storage = stage_configs[stage].storage
    for _, bucket in buckets(stage).values():
        rules = lifecycle_rules(bucket)
        assert rules["ExpireNoncurrentVersions"]["NoncurrentVersionExpiration"] == {
            "NoncurrentDays": storage.noncurrent_version_expiration_days
        }
        assert rules["AbortIncompleteUploads"]["AbortIncompleteMultipartUpload"] == {
            "DaysAfterInitiation": storage.incomplete_upload_expiration_days
        }
        assert all(rule["Status"] == "Enabled" for rule in rules.values())


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_checkpoints_expire_only_in_the_artifacts_bucket(buckets, stage_configs, stage):
    _, artifacts = buckets(stage)[BucketPurpose.ARTIFACTS]
    checkpoints = lifecycle_rules(artifacts)["ExpireCheckpoints"]
    assert checkpoints["Prefix"] == ArtifactPrefix.CHECKPOINTS
    assert checkpoints["ExpirationInDays"] == stage_configs[stage].storage.checkpoint_expiration_days
    _, data = buckets(stage)[BucketPurpose.DATA]
    assert "ExpireCheckpoints" not in lifecycle_rules(data)


def test_lifecycle_periods_differ_per_stage_as_configured(buckets):
    def checkpoint_days(stage: str) -> int:
        return lifecycle_rules(buckets(stage)[BucketPurpose.ARTIFACTS][1])["ExpireCheckpoints"]["ExpirationInDays"]

    assert checkpoint_days("dev") < checkpoint_days("prod")


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_data_and_artifacts_log_to_the_access_logs_bucket(buckets, stage):
    stage_buckets = buckets(stage)
    logs_id, _ = stage_buckets[BucketPurpose.ACCESS_LOGS]
    for purpose in (BucketPurpose.DATA, BucketPurpose.ARTIFACTS):
        _, bucket = stage_buckets[purpose]
        assert bucket["Properties"]["LoggingConfiguration"] == {
            "DestinationBucketName": {"Ref": logs_id},
            "LogFilePrefix": f"{purpose}/",
        }


@pytest.mark.parametrize("stage", ["staging", "prod"])
def test_staging_and_prod_retain_buckets_and_never_auto_delete(buckets, resources_of, stage):
    """Retained, except when the first create rolls back: a leftover bucket's fixed name would block the retry."""
    for _, bucket in buckets(stage).values():
        assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain")
    assert resources_of(stage, "Foundation", "Custom::S3AutoDeleteObjects") == {}


def test_dev_destroys_buckets_and_auto_deletes_their_objects(buckets, resources_of):
    auto_deleted = {
        resource["Properties"]["BucketName"]["Ref"]
        for resource in resources_of("dev", "Foundation", "Custom::S3AutoDeleteObjects").values()
    }
    dev_buckets = buckets("dev")
    assert auto_deleted == {logical_id for logical_id, _ in dev_buckets.values()}
    for _, bucket in dev_buckets.values():
        assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("Delete", "Delete")


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_only_the_data_bucket_sends_object_events_to_eventbridge_without_a_custom_resource(
    buckets, resources_of, stage
):
    """Batch transform starts on uploads to the data bucket; the bucket property needs no notifications Lambda."""
    notifications = {
        purpose: bucket["Properties"].get("NotificationConfiguration")
        for purpose, (_, bucket) in buckets(stage).items()
    }
    assert notifications == {
        BucketPurpose.DATA: {"EventBridgeConfiguration": {"EventBridgeEnabled": True}},
        BucketPurpose.ARTIFACTS: None,
        BucketPurpose.ACCESS_LOGS: None,
    }
    assert resources_of(stage, "Foundation", "Custom::S3BucketNotifications") == {}
