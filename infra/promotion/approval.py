"""The approval trigger: approving a version in the staging model registry commits staging's manifest.

SageMaker emits "Model Package State Change" events on the default event bus of the registry's own account and
region, so the rule must live there. When the pipeline shares that account and region, one rule in the delivery
stack starts the promotion commit. Otherwise a forwarding rule in the staging stage sends the approvals to the
pipeline account's default bus, which admits them (a bus policy for the staging account), and the same rule there
starts it: EventBridge cannot start a build in another account or region directly.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnResource, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from constructs import Construct

from infra.config import DeliveryConfig, StageConfig
from infra.promotion import APPROVAL_EVENT_DETAIL_TYPE, APPROVAL_EVENT_SOURCE, approval_event_pattern
from infra.security import admit_events_from, default_event_bus_arn


def approvals_are_forwarded(staging: StageConfig, delivery: DeliveryConfig) -> bool:
    """Whether the staging registry emits its events in another account or region than the pipeline's. A stage
    without its own account or region deploys to the pipeline's."""
    return staging.account not in (None, delivery.account) or staging.region not in (None, delivery.region)


def forwarding_account(staging: StageConfig, delivery: DeliveryConfig) -> str | None:
    """The account whose forwarded approvals the pipeline's bus must admit (none for the pipeline's own)."""
    return staging.account if staging.account not in (None, delivery.account) else None


def approval_rule_pattern(model_package_group_name: str) -> events.EventPattern:
    pattern = approval_event_pattern(model_package_group_name)
    return events.EventPattern(
        source=[APPROVAL_EVENT_SOURCE], detail_type=[APPROVAL_EVENT_DETAIL_TYPE], detail=pattern["detail"]
    )


class ApprovalTrigger(Construct):
    """In the pipeline's stack: the rule that turns an approval in the staging registry into a promotion commit (its
    target), and, when the registry is in another account, the permission for that account to forward its approvals
    here."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        model_package_group_name: str,
        target: events.IRuleTarget,
        forwarded_from_account: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.rule = events.Rule(
            self,
            "OnApproved",
            description=f"Commits staging's manifest when a version of {model_package_group_name} is approved",
            event_pattern=approval_rule_pattern(model_package_group_name),
        )
        # SageMaker may send more than one event per state change: promoting the version already served commits
        # nothing, so a second event changes nothing.
        self.rule.add_target(target)
        self.bus_policy: CfnResource | None = None
        if forwarded_from_account:
            self.bus_policy = admit_events_from(
                self,
                "AdmitForwardedApprovals",
                account=forwarded_from_account,
                statement_id=f"approvals-from-{forwarded_from_account}",
            )


class ApprovalForwardingStack(Stack):
    """In the staging stage (the registry's account and region): forwards approvals to the pipeline's event bus."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        model_package_group_name: str,
        pipeline_account: str,
        pipeline_region: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"Forwards approvals of {model_package_group_name} versions to the delivery pipeline's bus",
            **kwargs,
        )
        bus_arn = default_event_bus_arn(self, pipeline_account, pipeline_region)
        self.rule = events.Rule(
            self,
            "ForwardApprovals",
            description=f"Forwards approvals of {model_package_group_name} versions to the delivery pipeline",
            event_pattern=approval_rule_pattern(model_package_group_name),
        )
        self.rule.add_target(targets.EventBus(events.EventBus.from_event_bus_arn(self, "PipelineBus", bus_arn)))
