"""The pipeline stack per stage: model package group, pipeline resource and its substitutions, code, schedule."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from infra.config import STAGE_NAMES
from infra.pipeline.images import (
    IMAGE_SPECS,
    SERVING_DOCKERFILE,
    SERVING_IMAGE_CONTEXT,
    FrameworkImage,
    ServingImage,
    dockerfile_copy_sources,
    image_table,
    sdk_image_uri,
)
from infra.pipeline.stack import ROLE_PLACEHOLDER, SERVING_IMAGE_VARIABLE, SUBSTITUTED
from pipelines.bundle import STEP_RUNNER, TRAINING_ENTRY_POINT, build_bundle, bundle_members
from training_code.contract import ENCODING_FILE


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


def scheduled_rules(resources_of, stage: str) -> list[dict]:
    rules = resources_of(stage, "Pipeline", "AWS::Events::Rule").values()
    return [rule for rule in rules if "ScheduleExpression" in rule["Properties"]]


def test_schedule_only_where_configured(resources_of, stage_configs):
    assert scheduled_rules(resources_of, "dev") == []
    for stage in ("staging", "prod"):
        (scheduled,) = scheduled_rules(resources_of, stage)
        rule = scheduled["Properties"]
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
    assert (tmp_path / "out" / "train" / ENCODING_FILE).exists()


def serving_image_asset(synthesized_app, stage: str) -> tuple[str, dict]:
    """(hash, manifest entry) of the stage's one Docker image asset."""
    template_path = synthesized_app.stack(stage, "Pipeline").template_path
    assets = json.loads(template_path.with_name(template_path.name.replace(".template.", ".assets.")).read_text())
    ((image_hash, image),) = assets["dockerImages"].items()
    return image_hash, image


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_models_are_registered_with_the_serving_image_that_cdk_builds(synthesized_app, resources_of, stage):
    pipeline = only(resources_of, stage, "AWS::SageMaker::Pipeline")["Properties"]
    body, variables = pipeline["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
    (parameter,) = [p for p in json.loads(body)["Parameters"] if p["Name"] == "ServingImageUri"]
    assert parameter["DefaultValue"] == f"${{{SERVING_IMAGE_VARIABLE}}}"
    image_hash, image = serving_image_asset(synthesized_app, stage)
    (destination,) = image["destinations"].values()
    assert variables[SERVING_IMAGE_VARIABLE] == {
        "Fn::Sub": f"${{AWS::AccountId}}.dkr.ecr.${{AWS::Region}}.${{AWS::URLSuffix}}/{destination['repositoryName']}"
        f":{image_hash}"
    }
    assert image["source"]["platform"] == "linux/amd64"
    assert image["source"]["dockerFile"] == SERVING_DOCKERFILE


def test_the_image_build_context_holds_exactly_what_the_dockerfile_copies(synthesized_app):
    _, image = serving_image_asset(synthesized_app, "prod")
    staged_dir = synthesized_app.stack("prod", "Pipeline").template_path.parent / image["source"]["directory"]
    staged = sorted(str(path.relative_to(staged_dir)) for path in staged_dir.rglob("*") if path.is_file())
    sources = dockerfile_copy_sources((SERVING_IMAGE_CONTEXT / SERVING_DOCKERFILE).read_text())
    assert {"contract.py", "serving"} <= set(sources)
    expected = [
        str(path.relative_to(SERVING_IMAGE_CONTEXT))
        for path in sorted(SERVING_IMAGE_CONTEXT.rglob("*"))
        if path.is_file()
        and "__pycache__" not in path.parts
        and path.suffix != ".pyc"
        # CDK always sends the Dockerfile and .dockerignore; docker reads both.
        and (path.name in (SERVING_DOCKERFILE, ".dockerignore") or any(
            str(path.relative_to(SERVING_IMAGE_CONTEXT)).startswith(source) for source in sources
        ))
    ]  # fmt: skip
    assert staged == sorted(expected)
    assert "train.py" not in staged and not [path for path in staged if "__pycache__" in path]


def test_copy_sources_are_read_from_copy_and_add_instructions_but_not_other_stages():
    dockerfile = """# builder
FROM python:3.11 AS build
COPY --from=build /wheels /wheels
COPY requirements.txt \\
     serving/requirements.txt ./
ADD --chown=1000:1000 contract.py /opt/
RUN echo COPY not-this
COPY ["serving", "/opt/serving"]
"""
    assert dockerfile_copy_sources(dockerfile) == (
        "requirements.txt",
        "serving/requirements.txt",
        "contract.py",
        "serving",
    )


def image_hash(context_dir) -> str:
    from aws_cdk import App, Stack

    return ServingImage(Stack(App(), "Probe"), "Image", context_dir=context_dir).asset.asset_hash


def test_the_image_tag_changes_with_the_serving_code_only(tmp_path):
    context = tmp_path / "training_code"
    shutil.copytree(SERVING_IMAGE_CONTEXT, context, ignore=shutil.ignore_patterns("__pycache__"))
    original = image_hash(context)
    (context / "serving" / "__pycache__").mkdir()
    (context / "serving" / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"bytecode")
    (context / "train.py").write_text("# training code changes, the serving image does not\n")
    assert image_hash(context) == original
    (context / "contract.py").write_text((context / "contract.py").read_text() + "\nEXTRA = 1\n")
    assert image_hash(context) != original


def group_policy(template: dict) -> dict | None:
    (group,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::SageMaker::ModelPackageGroup"]
    return group["Properties"].get("ModelPackageGroupPolicy")


def test_in_one_account_the_registry_needs_no_resource_policy(synthesized_app):
    assert {stage: group_policy(synthesized_app.template(stage, "Pipeline")) for stage in STAGE_NAMES} == dict.fromkeys(
        STAGE_NAMES
    )


def test_staging_admits_the_prod_account_to_deploy_its_versions(delivery_app):
    from tests.conftest import DELIVERY_REGION, PIPELINE_ACCOUNT, PROD_ACCOUNT

    (statement,) = group_policy(delivery_app.template("Delivery/staging", "Pipeline"))["Statement"]
    assert statement["Sid"] == "ProdDeploysVersions"
    assert statement["Principal"] == {"AWS": f"arn:aws:iam::{PROD_ACCOUNT}:root"}
    assert sorted(statement["Action"]) == [
        "sagemaker:CreateModel",
        "sagemaker:DescribeModelPackage",
        "sagemaker:DescribeModelPackageGroup",
        "sagemaker:ListModelPackages",
    ]
    prefix = f"arn:aws:sagemaker:{DELIVERY_REGION}:{PIPELINE_ACCOUNT}"
    assert statement["Resource"] == [
        f"{prefix}:model-package-group/mlopskit-staging-models",
        f"{prefix}:model-package/mlopskit-staging-models/*",
    ]
    assert group_policy(delivery_app.template("Delivery/prod", "Pipeline")) is None
