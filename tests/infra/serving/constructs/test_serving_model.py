"""ServingModel on its own: the package version it is given, run as the serving role, isolated from the network,
in a VPC only when given one, with the environment it is given."""

from __future__ import annotations

from infra.config import VpcSettings
from infra.serving.model import ServingModel
from tests.infra.serving.conftest import only
from tests.infra.serving.constructs.conftest import BareStack, of_type

PACKAGE = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/unit-models/7"


def model(bare: BareStack, **props) -> ServingModel:
    return ServingModel(bare.stack, "Model", model_package_arn=PACKAGE, role=bare.role, **props)


def test_the_package_version_runs_isolated_as_the_serving_role_once_its_policy_exists(bare):
    model(bare, vpc=None)
    template = bare.template()
    resource = only(of_type(template, "AWS::SageMaker::Model"))
    assert resource["Properties"] == {
        "ExecutionRoleArn": {"Fn::GetAtt": [bare.logical_id(bare.role.role), "Arn"]},
        "PrimaryContainer": {"ModelPackageName": PACKAGE},
        "EnableNetworkIsolation": True,
    }
    assert resource["DependsOn"] == [bare.logical_id(bare.role.policy)]


def test_in_a_vpc_with_an_environment(bare):
    vpc = VpcSettings(subnet_ids=["subnet-0123456789abcdef0"], security_group_ids=["sg-0123456789abcdef0"])
    model(bare, vpc=vpc, environment={"LIMIT": "1024"})
    properties = only(of_type(bare.template(), "AWS::SageMaker::Model"))["Properties"]
    assert properties["VpcConfig"] == {
        "Subnets": ["subnet-0123456789abcdef0"],
        "SecurityGroupIds": ["sg-0123456789abcdef0"],
    }
    assert properties["PrimaryContainer"]["Environment"] == {"LIMIT": "1024"}
