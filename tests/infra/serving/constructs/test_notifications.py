"""NotificationKey and the alarm topic on their own: the key's name, policy and deletion wait from the prefix and
removal policy it is given, and a topic that only this account's alarms may publish to."""

from __future__ import annotations

import pytest
from aws_cdk import RemovalPolicy
from aws_cdk import aws_iam as iam

from infra.serving.notifications import NotificationKey, alarm_topic
from tests.infra.serving.conftest import render
from tests.infra.serving.constructs.conftest import of_type


@pytest.mark.parametrize(
    ("removal_policy", "pending_days", "deletion_policy"),
    [(RemovalPolicy.DESTROY, 7, "Delete"), (RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE, 30, "RetainExceptOnCreate")],
)
def test_the_key_is_named_after_the_prefix_and_waits_before_deletion_by_its_removal_policy(
    bare, removal_policy, pending_days, deletion_policy
):
    notification_key = NotificationKey(bare.stack, "Key", resource_prefix="unit-dev", removal_policy=removal_policy)
    template = bare.template()
    key = of_type(template, "AWS::KMS::Key")[bare.logical_id(notification_key.key)]
    assert key["Properties"]["Description"] == "Encrypts the unit-dev serving topics and batch transform logs"
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["Properties"]["PendingWindowInDays"] == pending_days
    assert key["DeletionPolicy"] == deletion_policy
    aliases = [a["Properties"]["AliasName"] for a in of_type(template, "AWS::KMS::Alias").values()]
    assert "alias/unit-dev-serving" in aliases


def test_publishing_roles_share_one_statement_and_the_log_group_is_named_in_its_own(bare):
    first = iam.Role(bare.stack, "First", assumed_by=iam.ServicePrincipal("states.amazonaws.com"))
    bare.notification_key.allow_publishing_by(first)
    bare.notification_key.allow_publishing_by(bare.role.role)
    bare.notification_key.allow_log_group("/aws/vendedlogs/states/unit")
    key = of_type(bare.template(), "AWS::KMS::Key")[bare.logical_id(bare.notification_key.key)]
    statements = {s["Sid"]: s for s in key["Properties"]["KeyPolicy"]["Statement"]}
    assert statements["RolesPublishToEncryptedTopics"]["Principal"] == {
        "AWS": [{"Fn::GetAtt": [bare.logical_id(role), "Arn"]} for role in (first, bare.role.role)]
    }
    logs = statements["LogsEncryptTheBatchLogGroup"]
    assert render(logs["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]) == (
        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/vendedlogs/states/unit"
    )


def test_only_this_account_s_alarms_publish_to_the_encrypted_alarm_topic(bare):
    topic = alarm_topic(bare.stack, "Alarms", key=bare.notification_key.key, display_name="unit: alarms")
    template = bare.template()
    properties = of_type(template, "AWS::SNS::Topic")[bare.logical_id(topic)]["Properties"]
    assert properties == {
        "DisplayName": "unit: alarms",
        "KmsMasterKeyId": {"Fn::GetAtt": [bare.logical_id(bare.notification_key.key), "Arn"]},
    }
    (policy,) = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in of_type(template, "AWS::SNS::TopicPolicy").values()
        if p["Properties"]["Topics"] == [{"Ref": bare.logical_id(topic)}]
    ]
    statements = {s.get("Sid"): s for s in policy}
    assert statements["AccountAlarmsPublish"]["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert statements["AccountAlarmsPublish"]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    }
    (deny,) = [s for s in policy if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
