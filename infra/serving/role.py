"""The role that the served model runs as in every mode: it reads the model version it serves (archive, key, image)
and writes what serving produces (data capture, asynchronous results, batch output), and nothing else. The jobs'
execution role, which writes models/ and processed/, never serves: a compromised serving container cannot overwrite
what a stage is promoted to."""

from __future__ import annotations

from aws_cdk import ArnFormat, Aws, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.foundation.image_repository import IMAGE_PULL_ACTIONS
from infra.foundation.roles import RESOURCE_LEVEL_PERMISSIONS_UNSUPPORTED, SAGEMAKER_SERVICE, VPC_ACCESS_ACTIONS
from infra.security import allow
from infra.serving.source import ServedModelSource

OBJECT_KEYS_REASON = (
    "SageMaker names the objects it reads and writes under these prefixes at run time (model archives per training "
    "job, capture files per hour, results per request); limited to the prefix"
)
# What SSE-KMS needs of the key for S3 to write an object (multipart uploads read their parts back) and to read it.
KEY_THROUGH_S3_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")


def grant_key_to_sagemaker_resources(policy: iam.Policy, sid: str, key: kms.IKey) -> None:
    """The policy's role may let SageMaker use the key for the resources it creates for the role (job volumes): a
    grant through SageMaker, for an AWS resource, of this key only."""
    allow(
        policy,
        sid,
        ("kms:CreateGrant", "kms:DescribeKey"),
        [key.key_arn],
        conditions={
            "StringEquals": {"kms:ViaService": f"sagemaker.{Aws.REGION}.amazonaws.com"},
            "BoolIfExists": {"kms:GrantIsForAWSResource": "true"},
        },
    )


class ServingRole(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        role_name: str,
        description: str,
        source: ServedModelSource,
        source_key: kms.IKey | None,
        key: kms.IKey,
        in_vpc: bool,
    ) -> None:
        """`source_key` is the served version's key when it is this stage's own; for another stage's version, its
        key is named by account and region (its id exists only there)."""
        super().__init__(scope, construct_id)
        self._stack = Stack.of(self)
        self._key = key
        self._key_statement: iam.PolicyStatement | None = None
        self.role = iam.Role(
            self,
            "Resource",
            role_name=role_name,
            assumed_by=iam.ServicePrincipal(SAGEMAKER_SERVICE),
            description=description,
        )
        self.policy = iam.Policy(self, "Policy", roles=[self.role])
        allow(
            self.policy,
            "ReadServedModel",
            ["s3:GetObject"],
            [source.model_archives_arn(self._stack)],
            wildcard_reason=OBJECT_KEYS_REASON,
        )
        allow(
            self.policy,
            "DecryptServedModelThroughS3",
            ["kms:Decrypt"],
            [source_key.key_arn if source_key else source.keys_arn(self._stack)],
            conditions={"StringEquals": {"kms:ViaService": f"s3.{source.region}.amazonaws.com"}},
            wildcard_reason="The served version's key belongs to the stage that registered it, and its id exists only "
            "there. Limited to S3's use of a key of that account and region; that key's own policy admits this role",
        )
        allow(self.policy, "PullServingImage", IMAGE_PULL_ACTIONS, [source.image_repository_arn(self._stack)])
        allow(
            self.policy,
            "AuthenticateToEcr",
            ["ecr:GetAuthorizationToken"],
            ["*"],
            wildcard_reason=RESOURCE_LEVEL_PERMISSIONS_UNSUPPORTED,
        )
        allow(
            self.policy,
            "WriteServingLogs",
            ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            [
                self._log_groups(f"/aws/sagemaker/{kind}/*")
                for kind in ("Endpoints", "TransformJobs", "InferenceComponents")
            ]
            + [
                self._log_groups(f"/aws/sagemaker/{kind}/*:log-stream:*")
                for kind in ("Endpoints", "TransformJobs", "InferenceComponents")
            ],
            wildcard_reason="SageMaker writes one log group per endpoint or transform job and one stream per instance; "
            "limited to those paths in this account and region.",
        )
        allow(
            self.policy,
            "PublishServingMetrics",
            ["cloudwatch:PutMetricData"],
            ["*"],
            conditions={"StringLike": {"cloudwatch:namespace": ["/aws/sagemaker/*", "aws/sagemaker/*"]}},
            wildcard_reason=RESOURCE_LEVEL_PERMISSIONS_UNSUPPORTED,
        )
        if in_vpc:
            allow(
                self.policy,
                "AttachEndpointsToVpc",
                VPC_ACCESS_ACTIONS,
                ["*"],
                wildcard_reason="SageMaker creates and deletes the network interfaces of endpoints and transform jobs, "
                "whose ids exist only at run time; the EC2 Describe actions support no resource-level permissions.",
            )

    @property
    def role_arn(self) -> str:
        return self.role.role_arn

    def read(self, sid: str, bucket: s3.IBucket, prefix: str) -> None:
        """Objects under the prefix, and listing exactly that prefix (a transform of a prefix lists it first)."""
        allow(
            self.policy,
            sid,
            ["s3:GetObject"],
            [bucket.arn_for_objects(f"{prefix}*")],
            wildcard_reason=OBJECT_KEYS_REASON,
        )
        allow(
            self.policy,
            f"{sid}List",
            ["s3:ListBucket"],
            [bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}},
        )
        self._use_stage_key_through_s3()

    def write(self, sid: str, bucket: s3.IBucket, *prefixes: str) -> None:
        allow(
            self.policy,
            sid,
            ["s3:AbortMultipartUpload", "s3:PutObject"],
            [bucket.arn_for_objects(f"{prefix}*") for prefix in prefixes],
            wildcard_reason=OBJECT_KEYS_REASON,
        )
        self._use_stage_key_through_s3()

    def publish(self, sid: str, *topics: sns.ITopic) -> None:
        allow(self.policy, sid, ["sns:Publish"], [topic.topic_arn for topic in topics])

    def _use_stage_key_through_s3(self) -> None:
        """The stage key encrypts what serving reads and writes in the stage buckets (SSE-KMS): once, for all."""
        if self._key_statement is None:
            self._key_statement = iam.PolicyStatement(
                sid="UseStageKeyThroughS3",
                actions=list(KEY_THROUGH_S3_ACTIONS),
                resources=[self._key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{self._stack.region}.amazonaws.com"}},
            )
            self.policy.add_statements(self._key_statement)

    def _log_groups(self, name: str) -> str:
        return self._stack.format_arn(
            service="logs", resource="log-group", resource_name=name, arn_format=ArnFormat.COLON_RESOURCE_NAME
        )
