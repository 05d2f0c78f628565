"""The stage's customer-managed KMS key."""

from __future__ import annotations

from aws_cdk import Aws, Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra import naming
from infra.config import StageConfig
from infra.foundation.removal import removal_policy
from infra.foundation.sharing import ModelConsumer

# The account root may administer the key (so it can never become unmanageable). Direct use is granted only to the
# principals named in the key policy; other principals of the account (operators, CI) may use it only through S3, so
# that IAM policies can let them put data in and read results out of the stage buckets, and through SageMaker only to
# grant it to the endpoints and transform jobs they create (CloudFormation, the batch state machine), which SageMaker
# does with the creator's credentials.
KEY_ADMINISTRATION_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)
KEY_USE_ACTIONS = (
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
)


class StageKey(Construct):
    """A rotating KMS key whose policy names every principal allowed to use it."""

    def __init__(self, scope: Construct, construct_id: str, *, config: StageConfig) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(
            self,
            "Key",
            alias=naming.key_alias(config),
            description=f"Encrypts the {config.resource_prefix} data, artifacts and job volumes",
            enable_key_rotation=True,
            rotation_period=Duration.days(365),
            pending_window=Duration.days(7 if config.destroy_on_removal else 30),
            removal_policy=removal_policy(config),
            policy=iam.PolicyDocument(
                statements=[
                    iam.PolicyStatement(
                        sid="AccountAdministersKey",
                        principals=[iam.AccountRootPrincipal()],
                        actions=list(KEY_ADMINISTRATION_ACTIONS),
                        resources=["*"],
                    ),
                    iam.PolicyStatement(
                        sid="AccountUsesKeyThroughS3",
                        principals=[iam.AccountRootPrincipal()],
                        actions=list(KEY_USE_ACTIONS),
                        resources=["*"],
                        conditions={
                            "StringEquals": {
                                "kms:ViaService": f"s3.{Aws.REGION}.amazonaws.com",
                                "kms:CallerAccount": Aws.ACCOUNT_ID,
                            }
                        },
                    ),
                    iam.PolicyStatement(
                        sid="AccountGrantsKeyToSageMakerResources",
                        principals=[iam.AccountRootPrincipal()],
                        actions=["kms:CreateGrant", "kms:DescribeKey"],
                        resources=["*"],
                        conditions={
                            "StringEquals": {
                                "kms:ViaService": f"sagemaker.{Aws.REGION}.amazonaws.com",
                                "kms:CallerAccount": Aws.ACCOUNT_ID,
                            },
                            # DescribeKey carries no grant context; every CreateGrant must be for an AWS resource.
                            "BoolIfExists": {"kms:GrantIsForAWSResource": "true"},
                        },
                    ),
                ]
            ),
        )

    def allow_decrypt_through_s3_by(self, consumer: ModelConsumer) -> None:
        """The consumer's serving role may decrypt the model archives it reads from the stage buckets, and nothing
        else (a key in another account is usable only where its own policy admits the caller)."""
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"{consumer.stage.capitalize()}ServingDecryptsModelsThroughS3",
                principals=[consumer.serving_role()],
                actions=["kms:Decrypt"],
                resources=["*"],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{Aws.REGION}.amazonaws.com"}},
            )
        )

    def allow_use_by(self, *roles: iam.IRole) -> None:
        """Grant use of the key in the key policy itself, and grants for the job volumes those roles create."""
        principals = [iam.ArnPrincipal(role.role_arn) for role in roles]
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="RolesUseKey", principals=principals, actions=list(KEY_USE_ACTIONS), resources=["*"]
            )
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="RolesGrantKeyToAwsResources",
                principals=principals,
                actions=["kms:CreateGrant"],
                resources=["*"],
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            )
        )
