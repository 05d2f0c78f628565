"""Stage configuration: cdk.json values, -c overrides, and one clear line per invalid key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from infra.config import (
    GPU_TRAINING_INSTANCE_TYPES,
    PROJECT_ROOT,
    STAGE_NAMES,
    StageConfigError,
    cdk_json_context,
    load_stage_configs,
)
from infra.framework_images import supported_regions


def configs(context: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    return {config.name: config for config in load_stage_configs({**context, **overrides})}


def error_for(context: dict[str, Any], **overrides: Any) -> str:
    with pytest.raises(StageConfigError) as raised:
        load_stage_configs({**context, **overrides})
    return str(raised.value)


def test_cdk_json_defines_every_stage(stage_configs):
    assert tuple(stage_configs) == STAGE_NAMES
    assert {config.project_name for config in stage_configs.values()} == {"mlopskit"}


def test_removal_policy_destroys_only_dev(stage_configs):
    assert stage_configs["dev"].removal_policy == "destroy"
    assert stage_configs["staging"].removal_policy == "retain"
    assert stage_configs["prod"].removal_policy == "retain"


def test_every_stage_trains_on_gpu_with_spot_by_default(stage_configs):
    for config in stage_configs.values():
        assert config.training.instance_type in GPU_TRAINING_INSTANCE_TYPES
        assert config.training.use_spot
        assert config.training.max_wait_seconds >= config.training.max_runtime_seconds


def test_synth_is_env_agnostic_unless_account_and_region_are_given(stage_configs):
    assert all(config.account is None and config.region is None for config in stage_configs.values())


def test_dotted_context_keys_override_one_stage(cdk_context):
    overridden = configs(
        cdk_context,
        **{
            "prod.account": "123456789012",
            "prod.region": "eu-west-1",
            "prod.training.instance_type": "ml.g6e.2xlarge",
            "prod.inference.realtime.max_capacity": "10",
            "prod.inference.serverless.enabled": "true",
            "prod.tags.owner": "ml-platform",
        },
    )
    prod = overridden["prod"]
    assert (prod.account, prod.region) == ("123456789012", "eu-west-1")
    assert prod.training.instance_type == "ml.g6e.2xlarge"
    assert prod.inference.realtime.max_capacity == 10
    assert prod.inference.serverless.enabled is True
    assert prod.tags["owner"] == "ml-platform"
    assert prod.tags["cost-center"] == "ml-platform", "an override adds to the cdk.json section, not replaces it"
    assert overridden["dev"].training.instance_type != "ml.g6e.2xlarge"
    assert cdk_context["stages"]["prod"]["training"]["instance_type"] != "ml.g6e.2xlarge", "cdk.json is not mutated"


def test_stage_selection(cdk_context):
    assert list(configs(cdk_context, stage="prod,dev")) == ["dev", "prod"]


def test_project_name_override_renames_every_stage(cdk_context):
    # Without the test context's model packages, which are versions of the mlopskit groups.
    served = {f"{stage}.inference.model_package_arn": None for stage in ("staging", "prod")}
    renamed = configs(cdk_context, project_name="fraud-ml", **served)
    assert {config.resource_prefix for config in renamed.values()} == {
        "fraud-ml-dev",
        "fraud-ml-staging",
        "fraud-ml-prod",
    }


def test_a_model_package_version_from_the_command_line_is_what_a_stage_serves(cdk_context):
    arn = "arn:aws-cn:sagemaker:cn-north-1:123456789012:model-package/mlopskit-dev-models/12"
    dev = configs(cdk_context, **{"dev.inference.model_package_arn": arn})["dev"]
    assert dev.inference.model_package_arn == arn
    assert dev.inference.model_package_region == "cn-north-1"
    assert configs(cdk_context)["dev"].inference.model_package_arn is None, "cdk.json names none"


def test_enabled_inference_modes_come_from_config(cdk_context):
    dev = configs(cdk_context, **{"dev.inference.asynchronous.enabled": "true"})["dev"]
    assert "asynchronous" in dev.inference.enabled_modes
    without_realtime = {
        "prod.inference.realtime.enabled": "false",
        "prod.monitoring.enabled": "false",
        "prod.monitoring.model_quality": "false",
    }
    prod = configs(cdk_context, **without_realtime)["prod"]
    assert "realtime" not in prod.inference.enabled_modes


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"stage": "qa"}, "context 'stage' = 'qa': unknown stage 'qa'; allowed: dev, staging, prod"),
        (
            {"dev.training.instance_type": "ml.m5.xlarge"},
            "stages.dev.training.instance_type = 'ml.m5.xlarge': not a GPU training instance type; "
            "allowed: ml.p3.{2xlarge,8xlarge,16xlarge}; ml.g4dn.{",
        ),
        (
            {"staging.inference.realtime.min_capacity": "5", "staging.inference.realtime.max_capacity": "2"},
            "stages.staging.inference.realtime: min_capacity (5) must be <= max_capacity (2)",
        ),
        (
            {"staging.inference.realtime.data_capture_percent": "0"},
            "stages.staging: monitoring.enabled: monitoring analyzes the real-time endpoint's captured requests; "
            "enable inference.realtime with inference.realtime.data_capture_percent above 0, or disable monitoring",
        ),
        (
            {"staging.inference.baseline.uri": "s3://bucket/baseline/statistics.json"},
            "stages.staging.inference.baseline.uri = 's3://bucket/baseline/statistics.json': expected an S3 folder",
        ),
        (
            {"staging.monitoring.retrain_drift_threshold": "0.05"},
            "stages.staging: monitoring.retrain_drift_threshold (0.05) must be at least pipeline.drift_threshold "
            "(0.1), the drift that raises the feature's alarm",
        ),
        (
            {
                "staging.region": "ca-west-1",
                "staging.inference.model_package_arn": "arn:aws:sagemaker:ca-west-1:123456789012:model-package/"
                "mlopskit-staging-models/3",
            },
            "stages.staging: monitoring.enabled: SageMaker Model Monitor's analyzer is not offered in ca-west-1; it "
            "is in af-south-1, ",
        ),
        (
            {"prod.monitoring.enabled": "false"},
            "stages.prod: monitoring.model_quality: model quality runs with the drift monitoring of captured "
            "requests; set monitoring.enabled to true too",
        ),
        (
            {"prod.monitoring.max_runtime_seconds": "3600"},
            "stages.prod: monitoring.max_runtime_seconds (3600): an hourly model-quality schedule may run for at most "
            "1800 s",
        ),
        (
            {"staging.inference.baseline.features": [f"f{i}" for i in range(91)]},
            "stages.staging: monitoring.retrain_on_drift: the served version has 91 features; the retrain alarm",
        ),
        (
            {"staging.monitoring.schedule": "weekly"},
            "stages.staging.monitoring.schedule = 'weekly': Input should be 'hourly' or 'daily'",
        ),
        (
            {"prod.inference.asynchronous.min_capacity": "3", "prod.inference.asynchronous.max_capacity": "1"},
            "stages.prod.inference.asynchronous: min_capacity (3) must be <= max_capacity (1)",
        ),
        (
            {"prod.account": "12345678901x"},
            "stages.prod.account = '12345678901x': not an AWS account id; expected exactly 12 digits",
        ),
        ({"dev.region": "mars-1"}, "stages.dev.region = 'mars-1': not an AWS region"),
        (
            {"prod.removal_policy": "destroy"},
            "stages.prod.removal_policy = 'destroy': 'destroy' is allowed only in dev; allowed here: 'retain'",
        ),
        ({"dev.removal_policy": "keep"}, "stages.dev.removal_policy = 'keep': Input should be 'destroy' or 'retain'"),
        (
            {"dev.training.max_runtime_seconds": "7200", "dev.training.max_wait_seconds": "3600"},
            "stages.dev.training: max_wait_seconds (3600) must be >= max_runtime_seconds (7200)",
        ),
        (
            {"dev.inference.serverless.memory_size_mb": "1000"},
            "stages.dev.inference.serverless.memory_size_mb = '1000': Input should be 1024, 2048, 3072, 4096, 5120",
        ),
        (
            {"dev.trainig.instance_type": "ml.g5.xlarge"},
            "stages.dev.trainig: unknown key; allowed keys: account, region,",
        ),
        (
            {"dev.training.spot": "true"},
            "stages.dev.training.spot: unknown key; allowed keys: instance_type, instance_count, use_spot,",
        ),
        ({"project_name": "ML_Kit"}, "project_name = 'ML_Kit': expected 3-16 characters of lowercase letters"),
        ({"dev.tags.aws:owner": "x"}, "stages.dev.tags: tag key 'aws:owner': expected 1-128 characters, not starting"),
        ({"dev.name": "prod"}, "stages.dev.name: not settable per stage"),
        ({"project_name": "xn--ml"}, "project_name = 'xn--ml': expected 3-16 characters"),
        ({"dev.tags.project": "other"}, "stages.dev.tags: tag 'project' is set from the project name and stage"),
        (
            {
                "dev.pipeline.vpc.subnet_ids": "subnet-0123456789abcdef0",
                "dev.pipeline.vpc.security_group_ids": "sg-0123456789abcdef0",
                "dev.pipeline.vpc.routes": "x",
            },
            "stages.dev.pipeline.vpc.routes: unknown key; allowed keys: subnet_ids, security_group_ids",
        ),
        (
            {"dev.pipeline.tuning_max_jobs": "2", "dev.pipeline.tuning_max_parallel_jobs": "3"},
            "stages.dev.pipeline: tuning_max_parallel_jobs (3) must be <= tuning_max_jobs (2)",
        ),
        ({"staging.pipeline.schedule": "every monday"}, "stages.staging.pipeline.schedule = 'every monday': expected"),
        (
            {"prod.pipeline.drift_threshold": "1.5"},
            "stages.prod.pipeline.drift_threshold = '1.5': Input should be less than 1",
        ),
        (
            {"dev.training.instance_type.size": "x"},
            "stages.dev.training.instance_type.size: 'instance_type' is a value",
        ),
        (
            {"dev.inference.model_package_arn": "arn:aws:sagemaker:eu-west-1:123456789012:model-package-group/x"},
            "stages.dev.inference.model_package_arn = 'arn:aws:sagemaker:eu-west-1:123456789012:model-package-group/x'"
            ": not a SageMaker model package version ARN; expected "
            "arn:<partition>:sagemaker:<region>:<account>:model-package/<group>/<version>",
        ),
        (
            {"dev.inference.model_package_arn": "arn:aws:sagemaker:eu-west-1:1234:model-package/models/1"},
            "stages.dev.inference.model_package_arn = 'arn:aws:sagemaker:eu-west-1:1234:model-package/models/1': not a",
        ),
        (
            {"prod.region": "us-east-1"},
            "stages.prod: inference.model_package_arn is in eu-west-1 but the stage deploys to us-east-1; SageMaker "
            "hosts a model package only in its own region",
        ),
        (
            {"dev.inference.realtime.invocations_per_instance_target": "0"},
            "stages.dev.inference.realtime.invocations_per_instance_target = '0': Input should be greater than 0",
        ),
        (
            {"dev.inference.realtime.canary_percent": "60"},
            "stages.dev.inference.realtime.canary_percent = '60': Input should be less than or equal to 50",
        ),
        (
            {"dev.inference.realtime.canary_percent": "0"},
            "stages.dev.inference.realtime.canary_percent = '0': Input should be greater than or equal to 1",
        ),
        (
            {"dev.inference.realtime.data_capture_percent": "101"},
            "stages.dev.inference.realtime.data_capture_percent = '101': Input should be less than or equal to 100",
        ),
        (
            {"dev.inference.realtime.deployment_timeout_seconds": "600"},
            "stages.dev.inference.realtime: deployment_timeout_seconds (600) must be greater than canary_wait_seconds "
            "+ termination_wait_seconds (600)",
        ),
        (
            {"dev.inference.realtime.scale_in_cooldown_seconds": "-1"},
            "stages.dev.inference.realtime.scale_in_cooldown_seconds = '-1': Input should be greater than or equal",
        ),
        (
            {"dev.inference.serverless.provisioned_concurrency": "6"},
            "stages.dev.inference.serverless: provisioned_concurrency (6) must be <= max_concurrency (5)",
        ),
        (
            {
                "dev.inference.serverless.provisioned_concurrency": "3",
                "dev.inference.serverless.max_provisioned_concurrency": "2",
            },
            "stages.dev.inference.serverless: provisioned_concurrency (3) must be <= max_provisioned_concurrency (2)",
        ),
        (
            {"dev.inference.serverless.max_provisioned_concurrency": "2"},
            "stages.dev.inference.serverless: max_provisioned_concurrency needs provisioned_concurrency",
        ),
        (
            {"dev.inference.serverless.provisioned_concurrency_utilization_target": "0"},
            "stages.dev.inference.serverless.provisioned_concurrency_utilization_target = '0': Input should be greater",
        ),
        (
            {"dev.inference.asynchronous.backlog_per_instance_target": "-5"},
            "stages.dev.inference.asynchronous.backlog_per_instance_target = '-5': Input should be greater than 0",
        ),
        (
            {"dev.inference.batch_transform.content_type": "text/plain"},
            "stages.dev.inference.batch_transform.content_type = 'text/plain': not a content type batch transform "
            "can split and join by line; allowed: text/csv, application/jsonlines",
        ),
        (
            {"dev.inference.batch_transform.input_prefix": "raw/"},
            "stages.dev.inference.batch_transform.input_prefix = 'raw/': expected a key prefix under the data "
            "bucket's batch-transform/",
        ),
        (
            {
                "dev.inference.batch_transform.max_payload_mb": "50",
                "dev.inference.batch_transform.max_concurrent_transforms": "3",
            },
            "stages.dev.inference.batch_transform: max_payload_mb x max_concurrent_transforms (50 x 3 = 150) must be "
            "<= 100",
        ),
        (
            {"dev.inference.batch_transform.input_filter": "columns 1-3"},
            "stages.dev.inference.batch_transform.input_filter = 'columns 1-3': expected a JSONPath expression",
        ),
        (
            {"dev.inference.batch_transform.join_source": "Output"},
            "stages.dev.inference.batch_transform.join_source = 'Output': Input should be 'Input' or 'None'",
        ),
        (
            {"dev.inference.batch_transform.schedule": "nightly"},
            "stages.dev.inference.batch_transform.schedule = 'nightly': expected an EventBridge schedule expression",
        ),
        (
            {"dev.inference.alarms.latency_p99_microseconds": "0"},
            "stages.dev.inference.alarms.latency_p99_microseconds = '0': Input should be greater than 0",
        ),
        (
            {"dev.inference.realtime.canary": "10"},
            "stages.dev.inference.realtime.canary: unknown key; allowed keys: ",
        ),
    ],
)
def test_invalid_value_is_one_line_naming_key_and_allowed_values(cdk_context, overrides, expected):
    message = error_for(cdk_context, **overrides)
    assert "\n" not in message
    assert message.startswith(expected)


def test_unknown_stage_section_is_rejected(cdk_context):
    stages = {**cdk_context["stages"], "qa": {}}
    assert error_for(cdk_context, stages=stages) == "stages.qa: unknown stage; allowed: dev, staging, prod"


def test_missing_stages_section_names_the_key():
    with pytest.raises(StageConfigError, match="context key 'stages' is missing"):
        load_stage_configs({"project_name": "mlopskit"})


def test_every_problem_is_reported_at_once(cdk_context):
    message = error_for(cdk_context, **{"dev.training.instance_type": "ml.c5.xlarge", "prod.account": "1"})
    assert [line.split(" ")[0] for line in message.splitlines()] == [
        "stages.dev.training.instance_type",
        "stages.prod.account",
    ]


def test_app_exits_with_one_line_per_problem(cdk_context, tmp_path):
    """As `npx cdk synth -c dev.training.instance_type=ml.m5.xlarge` runs it: context arrives in CDK_CONTEXT_JSON."""
    context = {**cdk_context, "dev.training.instance_type": "ml.m5.xlarge"}
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "invalid stage config: stages.dev.training.instance_type = 'ml.m5.xlarge': not a GPU training instance type; "
        "allowed: ml.p3.{2xlarge,8xlarge,16xlarge}; ml.g4dn.{xlarge,2xlarge,4xlarge,8xlarge,12xlarge,16xlarge}; "
        "ml.g5.{xlarge,2xlarge,4xlarge,8xlarge,12xlarge,16xlarge,24xlarge,48xlarge}; "
        "ml.g6.{xlarge,2xlarge,4xlarge,8xlarge,12xlarge,16xlarge,24xlarge,48xlarge}; "
        "ml.g6e.{xlarge,2xlarge,4xlarge,8xlarge,12xlarge,16xlarge,24xlarge,48xlarge}"
    ]
    assert not list(tmp_path.iterdir()), "nothing is synthesized from an invalid config"


def test_a_stage_section_that_is_not_an_object_is_named(cdk_context):
    stages = {**cdk_context["stages"], "dev": "oops"}
    assert error_for(cdk_context, stages=stages) == "stages.dev = 'oops': expected an object of settings"


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "ap-southeast-2", "sa-east-1"])
def test_regions_with_the_framework_images_are_accepted(cdk_context, region):
    # Without the test context's model package, which lives in one region only.
    overrides = {"prod.region": region, "prod.inference.model_package_arn": None}
    assert configs(cdk_context, **overrides)["prod"].region == region


@pytest.mark.parametrize("region", ["us-east-9", "us-gov-west-1", "cn-north-1"])
def test_a_region_without_the_framework_images_is_refused_at_synth_naming_the_supported_ones(cdk_context, region):
    """The template maps the framework images per region: an unmapped one would fail only at deploy."""
    overrides = {"prod.region": region, "prod.inference.model_package_arn": None}
    error = error_for(cdk_context, **overrides)
    assert error.startswith(f"stages.prod.region = {region!r}: the pipeline's framework images (pytorch 2.8.0, ")
    assert f"supported regions: {', '.join(supported_regions())}" in error
    assert "eu-west-1" in supported_regions() and region not in supported_regions()
    assert len(error.splitlines()) == 1


def test_a_stage_serves_the_version_its_deployment_manifest_names_and_no_context_value_overrides_it(
    tmp_path, monkeypatch
):
    """One truth for every path that synthesizes: -c may name a version only where none is promoted yet."""
    from infra import manifest

    promoted = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/mlopskit-staging-models/4"
    named = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/mlopskit-staging-models/7"
    monkeypatch.setattr(manifest, "MANIFEST_DIR", tmp_path)
    context = {**cdk_json_context(), "stage": "staging", "staging.region": "eu-west-1"}
    named_baseline = {"uri": "s3://artifacts-bucket/pipeline-runs/p/e7/baseline/", "features": ["age", "city"]}
    (first_deploy,) = load_stage_configs(
        {**context, "staging.inference.model_package_arn": named, "staging.inference.baseline": named_baseline}
    )
    assert first_deploy.inference.model_package_arn == named, "nothing promoted yet: a first deploy may name one"
    assert first_deploy.inference.baseline.model_dump() == {
        **named_baseline,
        "features": ("age", "city"),
        "model_constraints": None,
    }

    baseline = manifest.DriftBaseline("s3://artifacts-bucket/pipeline-runs/p/e4/baseline/", ("age", "colour"))
    deployment = manifest.Deployment(
        promoted, "promote", "2026-11-22T00:00:00+00:00", "arn:aws:sts::1:user/op", baseline=baseline
    )
    manifest.save(manifest.Manifest("staging").with_deployment(deployment))
    (from_manifest,) = load_stage_configs(context)
    (agreeing,) = load_stage_configs({**context, "staging.inference.model_package_arn": promoted})
    with pytest.raises(StageConfigError) as refused:
        load_stage_configs({**context, "staging.inference.model_package_arn": named})
    with pytest.raises(StageConfigError) as baseline_refused:
        load_stage_configs({**context, "staging.inference.baseline": named_baseline})

    assert from_manifest.inference.model_package_arn == agreeing.inference.model_package_arn == promoted
    assert (from_manifest.inference.baseline.uri, from_manifest.inference.baseline.features) == (
        baseline.uri,
        baseline.features,
    ), "the baseline comes with the version it was recorded with"
    (line,) = str(refused.value).splitlines()
    assert line.startswith(f"stages.staging.inference.model_package_arn: names {named}, but the manifest ")
    assert f"serves {promoted}" in line and "mlops promote --to staging" in line
    (line,) = str(baseline_refused.value).splitlines()
    assert line.startswith("stages.staging.inference.baseline: the manifest ") and "never set with -c" in line


def test_a_broken_deployment_manifest_fails_naming_the_file(tmp_path, monkeypatch):
    from infra import manifest

    monkeypatch.setattr(manifest, "MANIFEST_DIR", tmp_path)
    (tmp_path / "prod.json").write_text('{"format_version": 1, "stage": "staging", "history": []}')
    with pytest.raises(StageConfigError, match=r"deployment manifest of prod: .*prod\.json: it names stage 'staging'"):
        load_stage_configs({**cdk_json_context(), "stage": "prod"})


@pytest.mark.parametrize(
    ("key", "value", "kind", "suggestion"),
    [
        ("processing.instance_type", "ml.m5d.xlarge", "processing", "ml.m5.xlarge"),
        ("inference.realtime.instance_type", "ml.m5.larg", "endpoint", "ml.m5.large"),
        ("inference.asynchronous.instance_type", "ml.g5.xlarg", "endpoint", "ml.g5.xlarge"),
        ("inference.batch_transform.instance_type", "ml.m5d.large", "batch transform", "ml.m5.large"),
    ],
)
def test_instance_types_the_api_refuses_are_refused_at_synth(cdk_context, key, value, kind, suggestion):
    """Checked against botocore's enum of the API that takes the type, as SageMaker checks it at run time."""
    error = error_for(cdk_context, **{f"dev.{key}": value})
    assert error.startswith(f"stages.dev.{key} = {value!r}: not a SageMaker {kind} instance type")
    assert suggestion in error and len(error.splitlines()) == 1


def test_a_processing_type_with_local_storage_is_accepted(cdk_context):
    assert configs(cdk_context, **{"dev.processing.instance_type": "ml.g4dn.xlarge"})["dev"].processing


def test_prod_serves_versions_of_staging_or_its_own_group_only(cdk_context):
    arn = "arn:aws:sagemaker:eu-west-1:123456789012:model-package/{}/4"
    for group in ("mlopskit-staging-models", "mlopskit-prod-models"):
        prod = configs(cdk_context, **{"prod.inference.model_package_arn": arn.format(group)})["prod"]
        assert prod.inference.model_package_group == group
    error = error_for(cdk_context, **{"prod.inference.model_package_arn": arn.format("mlopskit-dev-models")})
    assert error == (
        "stages.prod: inference.model_package_arn names a version of mlopskit-dev-models; prod serves versions of "
        "mlopskit-prod-models or mlopskit-staging-models (the stages that grant it their model data, image and "
        "registry)"
    )
    error = error_for(cdk_context, **{"staging.inference.model_package_arn": arn.format("mlopskit-prod-models")})
    assert "staging serves versions of mlopskit-staging-models (" in error


def test_a_version_of_the_stage_own_group_must_be_in_its_account(cdk_context):
    arn = "arn:aws:sagemaker:eu-west-1:111111111111:model-package/mlopskit-staging-models/4"
    overrides = {"staging.account": "222222222222", "staging.inference.model_package_arn": arn}
    assert error_for(cdk_context, **overrides) == (
        "stages.staging: inference.model_package_arn is a version of the stage's own group in account 111111111111, "
        "but the stage deploys to account 222222222222"
    )


def test_async_payload_limit_is_at_most_what_asynchronous_inference_accepts(cdk_context):
    assert configs(cdk_context)["staging"].inference.asynchronous.max_payload_mb == 1024
    error = error_for(cdk_context, **{"staging.inference.asynchronous.max_payload_mb": "1025"})
    assert error.startswith("stages.staging.inference.asynchronous.max_payload_mb = '1025'")


@pytest.mark.parametrize("key", ["content_type", "accept"])
@pytest.mark.parametrize("value", ["application/json", "application/x-npy"])
def test_batch_transform_takes_only_types_with_one_record_per_line(cdk_context, key, value):
    """SplitType=Line and JoinSource=Input split the input and join the answers line by line: a JSON document or a
    NumPy array is not one record per line."""
    error = error_for(cdk_context, **{f"staging.inference.batch_transform.{key}": value})
    assert error == (
        f"stages.staging.inference.batch_transform.{key} = {value!r}: not a content type batch transform can split "
        "and join by line; allowed: text/csv, application/jsonlines"
    )
