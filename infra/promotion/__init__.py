"""Promotion of an approved model version: the delivery pipeline (CDK Pipelines) that deploys staging, smoke-tests
it and, after a manual approval, deploys prod; and the approval trigger that starts it. This module stays free of
CDK imports: `make run`'s summary reads it."""

from __future__ import annotations

from typing import Any

# Construct metadata that says what the delivery pipeline does, or why there is none; the summary prints it.
DELIVERY_SUMMARY_METADATA = "mlopskit:delivery"

# What SageMaker sends to EventBridge when a model package version changes (AWS SageMaker developer guide,
# "Model package state change"); ModelApprovalStatus is PendingManualApproval, Approved or Rejected.
APPROVAL_EVENT_SOURCE = "aws.sagemaker"
APPROVAL_EVENT_DETAIL_TYPE = "SageMaker Model Package State Change"
APPROVED = "Approved"

SMOKE_TEST_STEP = "SmokeTest"
PROMOTION_APPROVAL_STEP = "PromoteToProd"


def approval_event_pattern(model_package_group_name: str) -> dict[str, Any]:
    """The EventBridge pattern of "a version of this group was approved" (and nothing else)."""
    return {
        "source": [APPROVAL_EVENT_SOURCE],
        "detail-type": [APPROVAL_EVENT_DETAIL_TYPE],
        "detail": {"ModelPackageGroupName": [model_package_group_name], "ModelApprovalStatus": [APPROVED]},
    }
