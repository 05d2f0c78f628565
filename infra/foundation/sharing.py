"""What a stage shares with the stages that serve its model versions from other accounts: prod serves the versions
of staging's group, so prod's serving role reads staging's model archives, key and serving image, and prod's
deployments read staging's model packages. In one account, identity policies alone grant that; across accounts the
resource's own policy must admit the other account too, so these statements live on staging's resources."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Aws
from aws_cdk import aws_iam as iam


@dataclass(frozen=True)
class DriftRetraining:
    """A consumer that retrains on drift: the composite alarm whose ALARM state its account forwards to this one, the
    drift beyond which it goes off, its endpoint, and where its monitoring reports are (named in TriggeredBy)."""

    alarm_name: str
    threshold: float
    endpoint_name: str
    reports_uri: str


@dataclass(frozen=True)
class ModelConsumer:
    """A stage in another account that serves this stage's model versions with its serving role."""

    stage: str
    account: str
    serving_role_name: str
    drift_retraining: DriftRetraining | None = None

    @property
    def serving_role_arn(self) -> str:
        return f"arn:{Aws.PARTITION}:iam::{self.account}:role/{self.serving_role_name}"

    def serving_role(self) -> iam.IPrincipal:
        """The account, narrowed to the serving role by a condition: a policy may not name a role that does not exist
        yet (the consumer deploys after this stage), and a condition on its ARN needs no role to exist."""
        return iam.AccountPrincipal(self.account).with_conditions(
            {"ArnEquals": {"aws:PrincipalArn": self.serving_role_arn}}
        )

    def deployments(self) -> iam.IPrincipal:
        """The consumer account, whose CloudFormation deployments create models from these model packages."""
        return iam.AccountPrincipal(self.account)
