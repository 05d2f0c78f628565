"""The model every mode serves: the configured model package version, run as the stage's SageMaker role."""

from __future__ import annotations

import pytest

from tests.infra.serving.conftest import only, render


@pytest.mark.parametrize("stage", ["staging", "prod"])
def test_the_model_is_the_configured_package_version_run_as_the_execution_role(serving, stage_configs, stage):
    model = only(serving(stage, "AWS::SageMaker::Model"))["Properties"]
    assert model["PrimaryContainer"] == {"ModelPackageName": stage_configs[stage].inference.model_package_arn}
    assert "RolesSageMakerExecution" in render(model["ExecutionRoleArn"])
    assert f"mlopskit-{stage}-foundation" in render(model["ExecutionRoleArn"])
    assert "ModelName" not in model, "a new package version replaces the model, which a fixed name would block"


def test_network_isolation_follows_the_pipeline_setting(serving, stage_configs):
    isolation = {
        stage: only(serving(stage, "AWS::SageMaker::Model"))["Properties"]["EnableNetworkIsolation"]
        for stage in ("staging", "prod")
    }
    assert isolation == {stage: stage_configs[stage].pipeline.network_isolation for stage in isolation}
    assert isolation == {"staging": False, "prod": True}


def test_the_model_runs_in_the_pipeline_vpc_when_one_is_configured(variant, serving):
    model = only(variant("AWS::SageMaker::Model"))["Properties"]
    assert model["VpcConfig"] == {"Subnets": ["subnet-0123456789abcdef0"], "SecurityGroupIds": ["sg-0123456789abcdef0"]}
    assert "VpcConfig" not in only(serving("prod", "AWS::SageMaker::Model"))["Properties"]
