"""The pipeline stack per stage: model package group, pipeline resource and its substitutions, code, schedule."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from infra.config import STAGE_NAMES
from infra.pipeline.images import IMAGE_SPECS, FrameworkImage, image_table, sdk_image_uri
from infra.pipeline.stack import ROLE_PLACEHOLDER, SUBSTITUTED
from pipelines.bundle import STEP_RUNNER, TRAINING_ENTRY_POINT, build_bundle, bundle_members


def only(resources_of, stage: str, resource_type: str) -> dict:
    (resource,) = resources_of(stage, "Pipeline", resource_type).values()
    return resource


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_model_package_group_per_stage(resources_of, stage):
    group = only(resources_of, stage, "AWS::SageMaker::ModelPackageGroup")
    assert group["Properties"]["ModelPackageGroupName"] == f"mlopskit-{stage}-models"


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_pipeline_runs_as_the_pipeline_role_and_every_placeholder_is_substituted(synthesized_app, resources_of, stage):
    pipeline = only(resources_of, stage, "AWS::SageMaker::Pipeline")["Properties"]
    assert pipeline["PipelineName"] == f"mlopskit-{stage}-training"
    assert "PipelineExecution" in str(pipeline["RoleArn"])
    body, variables = pipeline["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
    used = set(re.findall(r"\$\{([^}]+)\}", body))
    assert used - {"AWS::Region", "AWS::AccountId"} == set(variables) == set(SUBSTITUTED)
    assert "SageMakerExecution" in str(variables["ExecutionRoleArn"])
    assert variables[FrameworkImage.TRAINING]["Fn::FindInMap"][1] == {"Ref": "AWS::Region"}
    assert ROLE_PLACEHOLDER.split(":role/")[0] not in synthesized_app.stack(stage, "Pipeline").template_path.read_text()


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_the_execution_role_may_read_exactly_the_two_code_objects(synthesized_app, resources_of, stage):
    policy = only(resources_of, stage, "AWS::IAM::Policy")["Properties"]
    read, listing = policy["PolicyDocument"]["Statement"]
    keys = sorted(
        re.findall(
            r"\$\{CodeBucket\}/([0-9a-f]{64}\.\w+)", synthesized_app.stack(stage, "Pipeline").template_path.read_text()
        )
    )
    assert read["Action"] == "s3:GetObject"
    assert sorted(str(resource).split("/")[-1].rstrip("']}") for resource in read["Resource"]) == sorted(set(keys))
    assert listing["Action"] == "s3:ListBucket"
    assert sorted(listing["Condition"]["StringEquals"]["s3:prefix"]) == sorted(set(keys))
    assert "SageMakerExecution" in str(policy["Roles"])


def test_schedule_only_where_configured(resources_of, stage_configs):
    assert resources_of("dev", "Pipeline", "AWS::Events::Rule") == {}
    for stage in ("staging", "prod"):
        rule = only(resources_of, stage, "AWS::Events::Rule")["Properties"]
        assert rule["ScheduleExpression"] == stage_configs[stage].pipeline.schedule
        (target,) = rule["Targets"]
        assert ":pipeline/mlopskit-" in str(target["Arn"])
        role = [r for i, r in resources_of(stage, "Pipeline", "AWS::IAM::Role").items() if i.startswith("ScheduleRole")]
        (policy,) = role[0]["Properties"]["Policies"]
        assert policy["PolicyDocument"]["Statement"][0]["Action"] == "sagemaker:StartPipelineExecution"


def test_image_mapping_covers_the_commercial_regions(synthesized_app):
    (mapping,) = synthesized_app.template("prod", "Pipeline")["Mappings"].values()
    assert {"us-east-1", "eu-west-1", "ap-southeast-2"} <= set(mapping)
    assert set(mapping["eu-west-1"]) == set(FrameworkImage)


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "ap-southeast-2", "af-south-1", "sa-east-1"])
def test_image_table_matches_the_sdk(region):
    for image, image_spec in IMAGE_SPECS.items():
        assert image_table()[region][image] == sdk_image_uri(image_spec, region)


def test_code_bundle_is_reproducible_and_complete(tmp_path):
    first = build_bundle(tmp_path / "a" / "sourcedir.tar.gz")
    second = build_bundle(tmp_path / "b" / "sourcedir.tar.gz")
    assert first.read_bytes() == second.read_bytes()
    members = bundle_members()
    assert TRAINING_ENTRY_POINT in members
    assert {"training_code/train.py", "pipelines/steps/preprocess.py", "pipelines/steps/evaluate.py"} <= set(members)


def test_the_step_runner_runs_a_step_from_the_bundle_alone(tmp_path):
    """As in a processing container: only the bundle and the runner, no project checkout on the path."""
    bundle_dir = tmp_path / "bundle"
    build_bundle(bundle_dir / "0123abcd.gz")  # CDK keys the asset by its hash and last suffix only
    raw = tmp_path / "raw"
    raw.mkdir()
    rows = "\n".join(f"{i % 7},{(i * 3) % 5},{i % 3}" for i in range(60))
    (raw / "data.csv").write_text(f"a,b,label\n{rows}\n")

    result = subprocess.run(
        [sys.executable, str(STEP_RUNNER), "--bundle-dir", str(bundle_dir), "pipelines.steps.preprocess",
         "--input-dir", str(raw), "--output-dir", str(tmp_path / "out"), "--failure-file", str(tmp_path / "failure")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "train" / "scaling.json").exists()
