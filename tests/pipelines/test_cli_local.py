"""`mlops --local ...`: promotion state stays with the embedded AWS, hints name --local, and `pipeline start` and
`pipeline status` explain local executions instead of asking the embedded AWS for a deployed pipeline."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator

import boto3
import pytest
from typer.testing import CliRunner

from infra import manifest
from infra.config import cdk_json_context, load_stage_configs
from pipelines.cli import app
from pipelines.local.aws import LOCAL_ACCOUNT, embedded_aws
from pipelines.local.layout import LOCAL_DIR_VARIABLE, LocalLayout
from pipelines.local.runner import RUN_RECORD, RunResult, StepFailed
from tests.pipelines.registry_fakes import BUCKET, GROUPS, FakeRegistry

STAGING = GROUPS["staging"]


@pytest.fixture
def layout(tmp_path, monkeypatch) -> Iterator[LocalLayout]:
    """An empty embedded account with the artifacts bucket and each stage's group; the committed manifests in a
    directory of their own, which no --local command may touch."""
    monkeypatch.setenv(LOCAL_DIR_VARIABLE, str(tmp_path / "local"))
    monkeypatch.setattr(manifest, "MANIFEST_DIR", tmp_path / "repository-manifests")
    layout = LocalLayout.from_environment()
    with embedded_aws(layout):
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        for group in GROUPS.values():
            boto3.client("sagemaker").create_model_package_group(ModelPackageGroupName=group)
    yield layout
    # moto keeps bucket names process-wide, beyond the state that each command restores: deleted here, so that the
    # next test's empty account can create the bucket again.
    with embedded_aws(layout):
        bucket = boto3.resource("s3").Bucket(BUCKET)
        bucket.objects.all().delete()
        bucket.delete()


def register_approved(layout: LocalLayout, count: int = 1) -> list[str]:
    with embedded_aws(layout):
        registry = FakeRegistry(boto3.client("sagemaker"), boto3.client("s3"))
        return [registry.register(status="Approved") for _ in range(count)]


def mlops(*arguments: str):
    return CliRunner().invoke(app, list(arguments), env={"COLUMNS": "200"})  # rich tables as wide as they need


def succeeded(result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def refused(result, message: str) -> str:
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert message in result.stderr, result.stderr
    return result.stderr.strip()


def run_suggested(line: str):
    program, *arguments = shlex.split(line.rsplit("run: ", 1)[1])
    assert program == "mlops", line
    return mlops(*arguments)


def test_a_local_promotion_is_recorded_with_the_embedded_aws_and_never_read_by_the_synth(layout):
    (arn,) = register_approved(layout)
    output = succeeded(mlops("--local", "promote", "--to", "staging", "--reason", "local review"))
    local_manifest = layout.root / "deployments" / "staging.json"
    assert output.splitlines() == [
        "staging: nothing -> version 1",
        f"  {arn}",
        f"wrote {local_manifest}, the embedded AWS's manifest (cdk synth reads only infra/deployments/)",
    ]
    assert manifest.deployed_model_package_arn("staging", local_manifest.parent) == arn
    assert not manifest.MANIFEST_DIR.exists()
    # What the synth reads: the stage config, from the committed manifests.
    (config,) = load_stage_configs({**cdk_json_context(), "stage": "staging"})
    assert config.inference.model_package_arn is None
    assert succeeded(mlops("deployed", "-s", "staging")) == "staging: nothing promoted\n"
    assert succeeded(mlops("--local", "deployed", "-s", "staging")).startswith(f"staging: version 1 of {STAGING} (")


def test_local_hints_name_local_commands_that_work(layout):
    first, _ = register_approved(layout, 2)
    succeeded(mlops("--local", "promote", "--to", "staging", "--version", "1"))
    refusal = refused(mlops("--local", "promote", "--to", "prod", "--version", "2"), "give --force")
    assert refusal.endswith("run: mlops --local promote --to staging --version 2")
    succeeded(run_suggested(refusal))
    warning = succeeded(mlops("--local", "models", "reject", "2", "-s", "staging", "-r", "5xx")).splitlines()[1]
    assert warning == "warning: staging still serves it; to roll back, run: mlops --local rollback --stage staging"
    succeeded(run_suggested(warning))
    deployed = succeeded(mlops("--local", "deployed", "-s", "staging")).splitlines()
    assert (
        deployed[0].startswith(f"staging: version 1 of {STAGING} (rolled back ")
        and "replacing version 2" in deployed[0]
    )
    assert deployed[1] == f"  {first}"
    with embedded_aws(layout):
        FakeRegistry(boto3.client("sagemaker"), boto3.client("s3")).register()
    approval = succeeded(mlops("--local", "models", "approve", "3", "-s", "staging", "-r", "reviewed"))
    assert approval.splitlines()[-1] == "next: mlops --local promote --to staging --version 3"
    assert not manifest.MANIFEST_DIR.exists()


def test_a_local_refusal_with_nothing_to_approve_suggests_a_local_run(layout):
    refused(
        mlops("--local", "rollback", "-s", "prod"),
        "prod serves no version yet; nothing to roll back; no other Approved version to serve, and none awaits "
        "approval; to train one, run: mlops local run --stage staging",
    )


def test_a_local_smoke_test_never_falls_back_to_an_accounts_version(layout):
    committed = f"arn:aws:sagemaker:eu-west-1:111111111111:model-package/{STAGING}/7"
    deployment = manifest.Deployment(committed, "promote", "2026-01-01T00:00:00Z", "someone")
    manifest.save(manifest.Manifest("staging").with_deployment(deployment))
    refused(mlops("--local", "smoke-test", "-s", "staging"), "staging serves no model package (none promoted")


def test_local_pipeline_start_says_how_local_executions_start(layout):
    result = mlops("--local", "pipeline", "start", "-s", "dev", "-p", "TuningMaxJobs=2")
    refused(
        result,
        "--local has no deployed pipeline to start; local executions are started with: "
        "mlops local run --stage dev -p TuningMaxJobs=2",
    )
    assert "ValidationException" not in result.output


def record_execution(layout: LocalLayout, execution_id: str, stage: str, started: str, **outcome) -> str:
    """A run's record as the runner saves it."""
    arn = f"arn:aws:sagemaker:us-east-1:{LOCAL_ACCOUNT}:pipeline/mlopskit-{stage}-training/execution/{execution_id}"
    result = RunResult(execution_id, arn, {}, layout.run_dir(execution_id), started=started, **outcome)
    result.run_dir.mkdir(parents=True)
    result.save()
    return arn


def test_local_pipeline_status_explains_local_executions(layout):
    refused(
        mlops("--local", "pipeline", "status"), "no local executions yet; start one with: mlops local run --stage dev"
    )
    package = f"arn:aws:sagemaker:us-east-1:{LOCAL_ACCOUNT}:model-package/mlopskit-dev-models/3"
    ended = "2027-01-15T08:05:00.000+00:00"
    first = record_execution(
        layout, "aaa111", "dev", "2027-01-15T08:00:00.000+00:00", model_package_arn=package, ended=ended
    )
    failure = StepFailed("Tune", "every trial failed")
    latest = record_execution(layout, "bbb222", "dev", "2027-01-15T09:00:00.000+00:00", failure=failure, ended=ended)
    record_execution(layout, "ccc333", "staging", "2027-01-14T08:00:00.000+00:00", stopped_in="Preprocess", ended=ended)

    listing = succeeded(mlops("--local", "pipeline", "status"))
    rows = [[cell.strip() for cell in line.split("│")[1:4]] for line in listing.splitlines() if line.startswith("│")]
    assert rows == [
        ["bbb222", "mlopskit-dev-training", "Failed"],
        ["aaa111", "mlopskit-dev-training", "Succeeded"],
        ["ccc333", "mlopskit-staging-training", "Stopped"],
    ]
    shown = succeeded(mlops("--local", "pipeline", "status", "-s", "dev"))
    assert f"execution: {latest}" in shown and "failure_reason: step Tune: every trial failed" in shown
    assert json.loads(succeeded(mlops("--local", "pipeline", "status", first, "--json"))) == {
        "execution": first,
        "status": "Succeeded",
        "started": "2027-01-15T08:00:00.000+00:00",
        "ended": ended,
        "current_step": "",
        "failure_reason": "",
        "stopped_in": "",
        "model_package": package,
        "record": str(layout.run_dir("aaa111") / RUN_RECORD),
    }
    assert "stopped_in: Preprocess" in succeeded(mlops("--local", "pipeline", "status", "ccc333"))
    refused(
        mlops("--local", "pipeline", "status", "-s", "prod"),
        "pipeline mlopskit-prod-training has no local executions yet; start one with: mlops local run --stage prod",
    )
    refused(mlops("--local", "pipeline", "status", "ddd444"), "no local execution ddd444")

    (layout.run_dir("aaa111") / RUN_RECORD).write_text("{")
    refused(mlops("--local", "pipeline", "status"), f"cannot read the local run record {layout.run_dir('aaa111')}")
