"""The models every mode serves: the configured model package version, run as the stage's serving role and cut off
from the network; the asynchronous endpoint's own model takes the 1 GB payloads asynchronous requests may carry."""

from __future__ import annotations

import pytest

from infra.config import ASYNC_PAYLOAD_LIMIT_MB
from tests.infra.serving.conftest import only, render
from training_code.contract import MAX_PAYLOAD_VARIABLE

STAGES = ("staging", "prod")


def model(serving, stage: str, prefix: str = "Model") -> dict:
    return only(serving(stage, "AWS::SageMaker::Model", prefix))


@pytest.mark.parametrize("stage", STAGES)
def test_the_model_is_the_configured_package_version_run_as_the_serving_role(serving, stage_configs, stage):
    properties = model(serving, stage)["Properties"]
    assert properties["PrimaryContainer"] == {"ModelPackageName": stage_configs[stage].inference.model_package_arn}
    (role_id,) = serving(stage, "AWS::IAM::Role", "ServingRole")
    assert properties["ExecutionRoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]}
    role = serving(stage, "AWS::IAM::Role")[role_id]["Properties"]
    assert role["RoleName"] == f"mlopskit-{stage}-serving", "the stage that shares its versions names it by ARN"
    assert "ModelName" not in properties, "a new package version replaces the model, which a fixed name would block"


@pytest.mark.parametrize("stage", STAGES)
def test_every_model_is_isolated_from_the_network_whatever_the_pipeline_setting(serving, stage_configs, stage):
    models = serving(stage, "AWS::SageMaker::Model")
    assert len(models) == 2
    assert {m["Properties"]["EnableNetworkIsolation"] for m in models.values()} == {True}
    assert {stage: stage_configs[stage].pipeline.network_isolation for stage in STAGES} == {
        "staging": False,
        "prod": True,
    }


@pytest.mark.parametrize("stage", STAGES)
def test_models_are_created_once_their_role_may_read_the_version(serving, stage):
    (policy_id,) = serving(stage, "AWS::IAM::Policy", "ServingRolePolicy")
    for resource in serving(stage, "AWS::SageMaker::Model").values():
        assert policy_id in resource["DependsOn"]


@pytest.mark.parametrize("stage", STAGES)
def test_the_asynchronous_model_raises_the_payload_limit_the_others_keep(serving, stage_configs, stage):
    limit = stage_configs[stage].inference.asynchronous.max_payload_mb
    assert limit == ASYNC_PAYLOAD_LIMIT_MB
    container = model(serving, stage, "AsyncModel")["Properties"]["PrimaryContainer"]
    assert container["Environment"] == {MAX_PAYLOAD_VARIABLE: str(limit)}
    assert container["ModelPackageName"] == stage_configs[stage].inference.model_package_arn
    assert "Environment" not in model(serving, stage)["Properties"]["PrimaryContainer"]
    (async_config,) = serving(stage, "AWS::SageMaker::EndpointConfig", "Async").values()
    (variant,) = async_config["Properties"]["ProductionVariants"]
    assert "AsyncModel" in render(variant["ModelName"])


def test_the_model_runs_in_the_pipeline_vpc_when_one_is_configured(variant, serving):
    properties = only(variant("AWS::SageMaker::Model"))["Properties"]
    assert properties["VpcConfig"] == {
        "Subnets": ["subnet-0123456789abcdef0"],
        "SecurityGroupIds": ["sg-0123456789abcdef0"],
    }
    assert "VpcConfig" not in model(serving, "prod")["Properties"]
