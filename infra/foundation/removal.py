"""What happens to a stage's stateful resources when their stack goes away."""

from __future__ import annotations

from aws_cdk import RemovalPolicy

from infra.config import StageConfig


def removal_policy(config: StageConfig) -> RemovalPolicy:
    """Destroy in dev. Elsewhere retain, except when the first create rolls back: a bucket left behind by a failed
    first deploy would block the next one with its fixed name."""
    return RemovalPolicy.DESTROY if config.destroy_on_removal else RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE
