"""The serving notifications: the key that encrypts the topics and the batch log group, and the topics themselves."""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.foundation.encryption import KEY_ADMINISTRATION_ACTIONS

CLOUDWATCH_SERVICE = "cloudwatch.amazonaws.com"
EVENTS_SERVICE = "events.amazonaws.com"
# What publishing to a KMS-encrypted topic takes.
PUBLISH_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
LOG_GROUP_KEY_ACTIONS = (
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
)


class NotificationKey(Construct):
    """A key of the stack's own for its topics: the services that publish to them, CloudWatch Logs and roles of this
    stack must use it, and the stage key's policy cannot name a role of a stack that depends on the foundation."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        resource_prefix: str,
        removal_policy: RemovalPolicy,
        purpose: str = "serving",
        description: str | None = None,
        alarms_publish: bool = True,
    ) -> None:
        """`alarms_publish`: CloudWatch alarms publish to the topics (an EventBridge target adds its own statement)."""
        super().__init__(scope, construct_id)
        self._publishers: iam.PolicyStatement | None = None
        destroyed_with_stack = removal_policy == RemovalPolicy.DESTROY
        statements = [
            iam.PolicyStatement(
                sid="AccountAdministersKey",
                principals=[iam.AccountRootPrincipal()],
                actions=list(KEY_ADMINISTRATION_ACTIONS),
                resources=["*"],
            )
        ]
        if alarms_publish:
            statements.append(
                iam.PolicyStatement(
                    sid="AlarmsPublishToEncryptedTopics",
                    principals=[iam.ServicePrincipal(CLOUDWATCH_SERVICE)],
                    actions=list(PUBLISH_KEY_ACTIONS),
                    resources=["*"],
                )
            )
        self.key = kms.Key(
            self,
            "Key",
            alias=f"alias/{resource_prefix}-{purpose}",
            description=description or f"Encrypts the {resource_prefix} serving topics and batch transform logs",
            enable_key_rotation=True,
            rotation_period=Duration.days(365),
            # A key that goes with its stack (dev) is deleted after the shortest wait; elsewhere after the longest,
            # which leaves time to cancel a deletion while something still needs the key.
            pending_window=Duration.days(7 if destroyed_with_stack else 30),
            removal_policy=removal_policy,
            policy=iam.PolicyDocument(statements=statements),
        )

    def allow_publishing_by(self, role: iam.IRole) -> None:
        """Let the role publish to the topics the key encrypts; one statement names every such role."""
        if self._publishers is None:
            self._publishers = iam.PolicyStatement(
                sid="RolesPublishToEncryptedTopics", actions=list(PUBLISH_KEY_ACTIONS), resources=["*"]
            )
            self.key.add_to_resource_policy(self._publishers)
        self._publishers.add_principals(iam.ArnPrincipal(role.role_arn))

    def allow_log_group(self, log_group_name: str) -> None:
        """CloudWatch Logs encrypts that one log group with the key (the encryption context names it)."""
        log_group_arn = f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:{log_group_name}"
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="LogsEncryptTheBatchLogGroup",
                principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
                actions=list(LOG_GROUP_KEY_ACTIONS),
                resources=["*"],
                conditions={"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": log_group_arn}},
            )
        )


def encrypted_topic(scope: Construct, construct_id: str, *, key: kms.IKey, display_name: str) -> sns.Topic:
    """A topic encrypted with the notification key that refuses requests without TLS."""
    return sns.Topic(scope, construct_id, display_name=display_name, master_key=key, enforce_ssl=True)


def alarm_topic(scope: Construct, construct_id: str, *, key: kms.IKey, display_name: str) -> sns.Topic:
    """A topic that this account's CloudWatch alarms publish to."""
    topic = encrypted_topic(scope, construct_id, key=key, display_name=display_name)
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid="AccountAlarmsPublish",
            principals=[iam.ServicePrincipal(CLOUDWATCH_SERVICE)],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
        )
    )
    return topic
