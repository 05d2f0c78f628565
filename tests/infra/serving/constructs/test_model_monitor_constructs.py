"""DriftMonitoring and ModelQualityMonitoring on their own: both job definitions run as the serving role, on the
given instance type with a volume under the stage key, write their reports under that key, stop at the given time
limit, and run in the given VPC (or in none); SageMaker's API accepts both requests either way (botocore's model)."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import aws_sagemaker as sagemaker

from infra.config import MonitoringSettings, ServedBaseline, VpcSettings
from infra.serving.model_monitor import DriftMonitoring, ModelQualityMonitoring
from infra.serving.source import ServedModelSource
from tests.infra.api.payloads import RESOURCE_APIS, resource_requests
from tests.infra.api.standins import ACCOUNT, CfnResolver, Environment, StackTemplate
from tests.infra.serving.constructs.conftest import ARTIFACTS_BUCKET, RESOURCE_PREFIX, properties_of

ENDPOINT_NAME = "unit-endpoint"
VPC = VpcSettings(subnet_ids=("subnet-0123456789abcdef0",), security_group_ids=("sg-0123456789abcdef0",))
SETTINGS = MonitoringSettings(enabled=True, instance_type="ml.m5.large", max_runtime_seconds=900, model_quality=True)
JOB_DEFINITIONS = ("AWS::SageMaker::DataQualityJobDefinition", "AWS::SageMaker::ModelQualityJobDefinition")


def monitored(bare, vpc: VpcSettings | None) -> dict[str, Any]:
    """Both monitors on one endpoint; the template's job definitions by type."""
    endpoint = sagemaker.CfnEndpoint(bare.stack, "Endpoint", endpoint_config_name="unit-config")
    shared = dict(
        settings=SETTINGS,
        endpoint=endpoint,
        endpoint_name=ENDPOINT_NAME,
        role=bare.role,
        key=bare.key,
        artifacts=bare.artifacts,
        alarm_topic=bare.alarm_topic,
        vpc=vpc,
    )
    DriftMonitoring(
        bare.stack,
        "Drift",
        baseline=ServedBaseline(uri=f"s3://{ARTIFACTS_BUCKET}/baseline/", features=("age", "city")),
        drift_threshold=0.1,
        schedule_name="unit-data-quality",
        source=ServedModelSource(resource_prefix=RESOURCE_PREFIX, account="123456789012", region="eu-west-1"),
        retrain=None,
        retrain_alarm_name="unit-retrain",
        **shared,
    )
    ModelQualityMonitoring(
        bare.stack,
        "ModelQuality",
        accuracy_threshold=0.9,
        schedule_name="unit-model-quality",
        baseline_constraints=None,
        **shared,
    )
    return bare.template()


def job_definitions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {resource_type: properties_of(template, resource_type)[0] for resource_type in JOB_DEFINITIONS}


@pytest.mark.parametrize("vpc", [VPC, None], ids=["in a vpc", "without a vpc"])
def test_both_job_definitions_run_as_given(bare, vpc):
    key_arn = {"Fn::GetAtt": [bare.logical_id(bare.key), "Arn"]}
    role_arn = {"Fn::GetAtt": [bare.logical_id(bare.role.role), "Arn"]}
    for resource_type, definition in job_definitions(monitored(bare, vpc)).items():
        output_config = next(value for name, value in definition.items() if name.endswith("JobOutputConfig"))
        assert output_config["KmsKeyId"] == key_arn, resource_type
        (output,) = output_config["MonitoringOutputs"]
        assert output["S3Output"]["S3Uri"].startswith(f"s3://{ARTIFACTS_BUCKET}/monitoring/{ENDPOINT_NAME}")
        assert definition["JobResources"]["ClusterConfig"] == {
            "InstanceCount": 1,
            "InstanceType": "ml.m5.large",
            "VolumeSizeInGB": 20,
            "VolumeKmsKeyId": key_arn,
        }, resource_type
        assert definition["RoleArn"] == role_arn, resource_type
        assert definition["StoppingCondition"] == {"MaxRuntimeInSeconds": 900}, resource_type
        if vpc is None:
            assert "NetworkConfig" not in definition, resource_type
        else:
            assert definition["NetworkConfig"] == {
                "VpcConfig": {"SecurityGroupIds": ["sg-0123456789abcdef0"], "Subnets": ["subnet-0123456789abcdef0"]}
            }, resource_type


@pytest.mark.parametrize("vpc", [VPC, None], ids=["in a vpc", "without a vpc"])
def test_both_job_definitions_are_requests_the_api_accepts(bare, vpc):
    stack = StackTemplate("Bare", "Bare", monitored(bare, vpc))
    resolver = CfnResolver(stack, Environment(ACCOUNT, "eu-west-1"), {})
    checked = [logical_id for logical_id, resource in stack.resources.items() if resource["Type"] in JOB_DEFINITIONS]
    assert len(checked) == len(JOB_DEFINITIONS)
    for logical_id in checked:
        api = RESOURCE_APIS[stack.resources[logical_id]["Type"]]
        found = resource_requests(logical_id, ("",), resolver, logical_id, api)
        assert [payload.operation for payload in found.payloads] == [call.operation for call in api.calls]
        assert found.report() == []
