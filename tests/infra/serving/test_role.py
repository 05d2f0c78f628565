"""The serving role's statements that the access-path matrix does not reach: the VPC, and nothing but services."""

from __future__ import annotations

import pytest

from infra.foundation.roles import VPC_ACCESS_ACTIONS
from tests.infra.serving.conftest import only


def statements(resources) -> dict[str, dict]:
    (policy,) = resources("AWS::IAM::Policy", "ServingRolePolicy").values()
    return {statement["Sid"]: statement for statement in policy["Properties"]["PolicyDocument"]["Statement"]}


def test_in_a_vpc_the_role_may_attach_network_interfaces(variant):
    attach = statements(variant)["AttachEndpointsToVpc"]
    assert sorted(attach["Action"]) == sorted(VPC_ACCESS_ACTIONS)


@pytest.mark.parametrize("stage", ["staging", "prod"])
def test_without_a_vpc_it_may_not_and_only_sagemaker_assumes_it(serving, stage):
    def select(resource_type: str, prefix: str = "") -> dict:
        return serving(stage, resource_type, prefix)

    actions = {
        sid: s["Action"] if isinstance(s["Action"], list) else [s["Action"]] for sid, s in statements(select).items()
    }
    assert "sns:Publish" in actions["PublishAsyncNotifications"]
    assert not [sid for sid, listed in actions.items() if any(action.startswith("ec2:") for action in listed)]
    role = only(serving(stage, "AWS::IAM::Role", "ServingRole"))["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}}
    ]
    assert "ManagedPolicyArns" not in role and "Policies" not in role
