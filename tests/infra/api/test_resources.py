"""CloudFormation resources whose properties are API requests: each call CloudFormation makes is one the API accepts,
and every property reaches an API member (or is named as CloudFormation's own)."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import PROD_ACCOUNT
from tests.infra.api.conftest import ALL_STACKS, API_RESOURCE_STACKS, stack_id
from tests.infra.api.payloads import NOT_AN_API_REQUEST, RESOURCE_APIS, Found, resource_requests, resources
from tests.infra.api.standins import ACCOUNT, CfnResolver, Environment, StackTemplate

SERVING_OPERATIONS = {
    "CreateModel",
    "CreateEndpointConfig",
    "CreateEndpoint",
    "UpdateEndpoint",
    "RegisterScalableTarget",
    "PutScalingPolicy",
    "PutMetricAlarm",
    "CreateStateMachine",
    "CreateLogGroup",
    "PutRetentionPolicy",
    "CreateRole",
}
# The serving image repository, its policy and lifecycle; the stage's roles.
FOUNDATION_OPERATIONS = {"CreateRepository", "SetRepositoryPolicy", "PutLifecyclePolicy", "CreateRole"}
PIPELINE_OPERATIONS = {"CreateModelPackageGroup", "CreatePipeline"}


@pytest.mark.parametrize("entry", API_RESOURCE_STACKS, ids=stack_id)
def test_resources_are_requests_the_apis_accept(entry, stack_of):
    stack, assembly = stack_of(entry)
    found = resources(stack, assembly.by_stack_name)
    operations = {payload.operation for payload in found.payloads}
    assert operations, f"{stack.display_name}: no resource to validate"
    for suffix, expected in (
        ("Serving", SERVING_OPERATIONS),
        ("Foundation", FOUNDATION_OPERATIONS),
        ("Pipeline", PIPELINE_OPERATIONS),
    ):
        if entry[1].endswith(suffix):
            assert operations >= expected, expected - operations
    problems = found.report()
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("entry", ALL_STACKS, ids=stack_id)
def test_every_resource_type_is_mapped_or_explained(entry, stack_of):
    stack, _ = stack_of(entry)
    unexplained = {r["Type"] for r in stack.resources.values()} - set(RESOURCE_APIS) - set(NOT_AN_API_REQUEST)
    assert not unexplained, f"map these in RESOURCE_APIS or explain them in NOT_AN_API_REQUEST: {unexplained}"


# --- what the templates carry reaches the calls it belongs to, and a defect there is reported --------------------

IRELAND = "eu-west-1"


def calls_of(found: Found, logical_prefix: str) -> dict[str, list[dict[str, Any]]]:
    """{operation: [request…]} of the resources whose logical id starts with the prefix, deployed in Ireland."""
    calls: dict[str, list[dict[str, Any]]] = {}
    for payload in found.payloads:
        logical_id = payload.source.split(" ")[1]
        if logical_id.startswith(logical_prefix) and payload.variant[0] in ("", IRELAND):
            calls.setdefault(payload.operation, []).append(payload.request)
    return calls


def changed(stack: StackTemplate, resource: str, change: Callable[[dict[str, Any]], None]) -> StackTemplate:
    """The stack with `change` made to the properties of one resource: `<type> <logical id prefix>`."""
    resource_type, logical_prefix = resource.split(" ")
    template = copy.deepcopy(stack.template)
    (resource,) = (
        r for i, r in template["Resources"].items() if i.startswith(logical_prefix) and r["Type"] == resource_type
    )
    change(resource["Properties"])
    return dataclasses.replace(stack, template=template)


def test_the_serving_image_repository_calls(stack_of):
    stack, assembly = stack_of(("app", "staging/Foundation"))
    found = resources(stack, assembly.by_stack_name)
    (repository,) = stack.of_type("AWS::ECR::Repository").values()
    properties = repository["Properties"]
    calls = calls_of(found, "ServingImagesRepository")
    name = properties["RepositoryName"]
    assert calls["CreateRepository"] == [
        {
            "repositoryName": name,
            "imageScanningConfiguration": {"scanOnPush": True},
            "imageTagMutability": "IMMUTABLE",
            "tags": properties["Tags"],
        }
    ]
    (set_policy,) = calls["SetRepositoryPolicy"]
    assert set(set_policy) == {"repositoryName", "policyText"} and set_policy["repositoryName"] == name
    (statement,) = json.loads(set_policy["policyText"])["Statement"]  # JSON text, as the API takes it
    # The publishing role of the CDK bootstrap, in this account and region.
    assert statement["Principal"]["AWS"] == (
        f"arn:aws:iam::{ACCOUNT}:role/cdk-hnb659fds-image-publishing-role-{ACCOUNT}-{IRELAND}"
    )
    assert calls["PutLifecyclePolicy"] == [
        {"repositoryName": name, "lifecyclePolicyText": properties["LifecyclePolicy"]["LifecyclePolicyText"]}
    ]
    assert found.report() == []


def test_the_staging_group_policy_admits_prod_and_is_validated(stack_of):
    stack, assembly = stack_of(("delivery", "Delivery/staging/Pipeline"))
    (request,) = calls_of(resources(stack, assembly.by_stack_name), "ModelPackageGroup")["PutModelPackageGroupPolicy"]
    assert isinstance(request["ResourcePolicy"], str)  # JSON text, as the API takes it
    principals = [s["Principal"]["AWS"] for s in json.loads(request["ResourcePolicy"])["Statement"]]
    assert f"arn:aws:iam::{PROD_ACCOUNT}:root" in principals


def test_endpoints_retain_variant_properties_on_update(stack_of):
    stack, assembly = stack_of(("app", "staging/Serving"))
    found = resources(stack, assembly.by_stack_name)
    for endpoint in ("RealtimeEndpoint", "AsyncEndpoint"):
        calls = calls_of(found, endpoint)
        (update,) = calls["UpdateEndpoint"]
        assert update["RetainAllVariantProperties"] is True
        assert update["ExcludeRetainedVariantProperties"] == [{"VariantPropertyType": "DataCaptureConfig"}]
        (create,) = calls["CreateEndpoint"]
        assert "RetainAllVariantProperties" not in create  # not a member of CreateEndpoint


def test_both_models_and_the_serving_role(stack_of):
    stack, assembly = stack_of(("app", "staging/Serving"))
    found = resources(stack, assembly.by_stack_name)
    models = calls_of(found, "")["CreateModel"]
    assert len(models) == 2
    ((role_id, role),) = ((i, r) for i, r in stack.of_type("AWS::IAM::Role").items() if "RoleName" in r["Properties"])
    role_name = role["Properties"]["RoleName"]
    assert {model["ExecutionRoleArn"] for model in models} == {f"arn:aws:iam::{ACCOUNT}:role/{role_name}"}
    assert all(model["EnableNetworkIsolation"] is True for model in models)
    assert ["Environment" in model["PrimaryContainer"] for model in models].count(True) == 1  # the async model's
    assert [call["RoleName"] for call in calls_of(found, role_id)["CreateRole"]] == [role_name]


def _with_policy_padding(properties: dict[str, Any]) -> None:
    properties["ModelPackageGroupPolicy"]["Statement"][0]["Condition"] = {
        "StringEquals": {"aws:PrincipalTag/team": "x" * 20480}
    }


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Sets the property at a dotted path (`A.B.0.C`) to value."""

    def change(properties: dict[str, Any]) -> None:
        *parents, name = path.split(".")
        target: Any = properties
        for parent in parents:
            target = target[int(parent)] if isinstance(target, list) else target[parent]
        target[name] = value

    return change


@pytest.mark.parametrize(
    ("entry", "resource", "change", "expected"),
    [
        pytest.param(
            ("app", "staging/Foundation"),
            "AWS::ECR::Repository ServingImagesRepository",
            _set("RepositoryName", "MLOpsKit-staging-serving"),
            "repositoryName: 'MLOpsKit-staging-serving' does not match the pattern",  # in each of the 3 calls
            id="repository-name-in-upper-case",
        ),
        pytest.param(
            ("delivery", "Delivery/staging/Pipeline"),
            "AWS::SageMaker::ModelPackageGroup ModelPackageGroup",
            _with_policy_padding,
            'PutModelPackageGroupPolicy: ResourcePolicy: \'{"Statement":…characters; at most 20480',
            id="group-policy-too-long",
        ),
        pytest.param(
            ("app", "staging/Serving"),
            "AWS::SageMaker::Endpoint AsyncEndpoint",
            _set("ExcludeRetainedVariantProperties.0.VariantPropertyType", "DataCapture"),
            "UpdateEndpoint: ExcludeRetainedVariantProperties[0].VariantPropertyType: 'DataCapture' is not one of",
            id="excluded-variant-property",
        ),
        pytest.param(
            ("app", "staging/Serving"),
            "AWS::SageMaker::Model AsyncModel",
            _set("PrimaryContainer.Environment", {"max-payload-in-mb": "1024"}),
            "CreateModel: PrimaryContainer.Environment<key 'max-payload-in-mb'>: 'max-payload-in-mb' does not match",
            id="async-model-environment",
        ),
        pytest.param(
            ("app", "staging/Serving"),
            "AWS::IAM::Role ServingRole",
            _set("RoleName", "mlopskit-staging-serving-" + "r" * 40),
            "CreateRole: RoleName: 'mlopskit-staging-serving-rrrr… is 65 characters; at most 64",
            id="role-name-too-long",
        ),
    ],
)
def test_a_defect_in_a_resource_is_reported(entry, resource, change, expected, stack_of):
    stack, assembly = stack_of(entry)
    problems = resources(changed(stack, resource, change), assembly.by_stack_name).report()
    assert problems, "the defect went unnoticed"
    head, _, tail = expected.partition("…")  # the value is shown shortened
    assert all(head in line and tail in line for line in problems), "\n".join(problems)
    assert not any(line.endswith("[]") for line in problems)  # a stack in one region has no variants to list


# --- the mapping table, on properties our templates do not set (yet) ---------------------------------------------

SYDNEY = Environment(ACCOUNT, "ap-southeast-2")


def requests(resource_type: str, properties: dict[str, Any], others: dict[str, Any] | None = None):
    stack = StackTemplate(
        "test/Stack",
        "mlopskit-test-stack",
        {"Resources": {"Thing": {"Type": resource_type, "Properties": properties}, **(others or {})}},
    )
    found = resource_requests("Thing", ("",), CfnResolver(stack, SYDNEY, {}), "Thing", RESOURCE_APIS[resource_type])
    return {payload.operation: payload.request for payload in found.payloads}, found


def test_a_repository_without_a_name_or_with_a_key():
    calls, found = requests(
        "AWS::ECR::Repository", {"EncryptionConfiguration": {"EncryptionType": "KMS", "KmsKey": "alias/k"}}
    )
    name = calls["CreateRepository"]["repositoryName"]
    assert name == name.lower() and name.startswith("mlopskit-test-stack-thing-")  # generated, lower case
    assert calls["CreateRepository"]["encryptionConfiguration"] == {"encryptionType": "KMS", "kmsKey": "alias/k"}
    assert set(calls) == {"CreateRepository"}  # no policy, no lifecycle: no call for them
    assert found.report() == []


def test_a_role_calls_once_per_inline_and_managed_policy():
    document = {"Version": "2012-10-17", "Statement": []}
    calls, found = requests(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": document,
            "Policies": [
                {"PolicyName": "a", "PolicyDocument": document},
                {"PolicyName": "b", "PolicyDocument": document},
            ],
            "ManagedPolicyArns": [],
            "Description": "d",
        },
    )
    name = calls["CreateRole"]["RoleName"]
    assert name.startswith("mlopskit-test-stack-Thing-") and len(name) <= 64
    assert calls["CreateRole"] == {
        "RoleName": name,
        "AssumeRolePolicyDocument": '{"Version":"2012-10-17","Statement":[]}',
        "Description": "d",
    }
    puts = [p.request for p in found.payloads if p.operation == "PutRolePolicy"]
    assert [(p["RoleName"], p["PolicyName"]) for p in puts] == [(name, "a"), (name, "b")]
    assert "AttachRolePolicy" not in calls  # an empty list makes no call, and is no defect
    assert found.report() == []
    calls, _ = requests("AWS::IAM::Role", {"AssumeRolePolicyDocument": document, "ManagedPolicyArns": ["arn:p"]})
    assert calls["AttachRolePolicy"] == {"RoleName": calls["CreateRole"]["RoleName"], "PolicyArn": "arn:p"}


def test_a_scaling_policy_addresses_its_target():
    target = {
        "Type": "AWS::ApplicationAutoScaling::ScalableTarget",
        "Properties": {
            "ResourceId": "endpoint/e/variant/AllTraffic",
            "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
            "ServiceNamespace": "sagemaker",
            "MinCapacity": 1,
            "MaxCapacity": 2,
        },
    }
    calls, found = requests(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {"PolicyName": "p", "PolicyType": "StepScaling", "ScalingTargetId": {"Ref": "Target"}},
        {"Target": target},
    )
    assert calls["PutScalingPolicy"] == {
        "PolicyName": "p",
        "PolicyType": "StepScaling",
        "ResourceId": "endpoint/e/variant/AllTraffic",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
        "ServiceNamespace": "sagemaker",
    }
    assert found.report() == []


def test_a_group_policy_is_its_own_call_and_names_are_generated():
    calls, _ = requests("AWS::SageMaker::ModelPackageGroup", {})
    assert set(calls) == {"CreateModelPackageGroup"}
    assert calls["CreateModelPackageGroup"]["ModelPackageGroupName"].startswith("Thing-")
    calls, found = requests(
        "AWS::SageMaker::ModelPackageGroup",
        {"ModelPackageGroupName": "g", "ModelPackageGroupPolicy": {"Version": "2012-10-17", "Statement": []}},
    )
    assert calls["PutModelPackageGroupPolicy"] == {
        "ModelPackageGroupName": "g",
        "ResourcePolicy": '{"Version":"2012-10-17","Statement":[]}',
    }
    assert found.report() == []


def test_a_property_that_reaches_no_api_member_is_reported():
    _, found = requests("AWS::SageMaker::Endpoint", {"EndpointConfigName": "c", "SomethingNew": 1})
    assert found.report() == [
        "Thing: property SomethingNew of AWS::SageMaker::Endpoint reaches no API member (map it in RESOURCE_APIS)"
    ]


def test_update_members_of_an_endpoint_go_to_update_endpoint():
    calls, found = requests(
        "AWS::SageMaker::Endpoint",
        {"EndpointConfigName": "c", "RetainAllVariantProperties": True, "Tags": [{"Key": "k", "Value": "v"}]},
    )
    assert set(calls["CreateEndpoint"]) == {"EndpointName", "EndpointConfigName", "Tags"}
    assert set(calls["UpdateEndpoint"]) == {"EndpointName", "EndpointConfigName", "RetainAllVariantProperties"}
    assert found.report() == []
