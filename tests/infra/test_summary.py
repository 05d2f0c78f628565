"""`make run`'s summary of cdk.out: what it reports, and that it fails on a gate failure."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra import summary
from infra.serving.stack import NO_MODEL_PACKAGE
from infra.summary import app, serving_by_stage


@pytest.fixture(autouse=True)
def shared_lint(monkeypatch, lint_once) -> None:
    """The summary lints through the test run's cache: each distinct template once (infra.lint as it is otherwise)."""
    monkeypatch.setattr(summary, "lint_templates", lint_once)


@pytest.fixture
def dev_assembly(synthesized_app, tmp_path) -> Path:
    """A copy of the session's cdk.out reduced to the dev stage (linting every stage again would be slow)."""
    copy = tmp_path / "cdk.out"
    shutil.copytree(synthesized_app.assembly_dir, copy)
    manifest_path = copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["artifacts"] = {
        name: artifact
        for name, artifact in manifest["artifacts"].items()
        if artifact["type"] != "cdk:cloud-assembly" or name == "assembly-dev"
    }
    manifest_path.write_text(json.dumps(manifest))
    return copy


def summarize(assembly: Path):
    return CliRunner().invoke(app, [str(assembly)], env={"COLUMNS": "200"})


def test_summary_lists_stacks_resource_counts_and_gate_status(dev_assembly, synthesized_app):
    acknowledged = sum(
        len(stack.acknowledgements()) for name, stack in synthesized_app.stacks.items() if name.startswith("dev/")
    )
    result = summarize(dev_assembly)
    assert result.exit_code == 0, result.output
    assert "mlopskit-dev-foundation" in result.output
    assert "mlopskit-prod-foundation" not in result.output
    assert "AWS::S3::Bucket" in result.output
    assert f"cdk-nag AwsSolutions: 0 unacknowledged findings, {acknowledged} acknowledged with reasons" in result.output
    assert "cfn-lint over 2 templates: 0 errors" in result.output


def test_summary_fails_on_a_lint_error(dev_assembly):
    (template_path,) = (dev_assembly / "assembly-dev").glob("*Foundation*.template.json")
    template = json.loads(template_path.read_text())
    template["Resources"]["Broken"] = {"Type": "AWS::S3::Bucket", "Properties": {"VersioningConfiguration": "on"}}
    template_path.write_text(json.dumps(template))
    result = summarize(dev_assembly)
    assert result.exit_code == 1
    assert "cfn-lint over 2 templates: 1 errors" in result.output


def test_summary_fails_on_an_unacknowledged_nag_finding(dev_assembly):
    violation = {"ruleName": "AwsSolutions-S10", "description": "no TLS", "violatingConstructs": []}
    report = {"pluginReports": [{"pluginName": "AwsSolutions", "conclusion": "failure", "violations": [violation]}]}
    (dev_assembly / "validation-report.json").write_text(json.dumps(report))
    result = summarize(dev_assembly)
    assert result.exit_code == 1
    assert "cdk-nag AwsSolutions: 1 unacknowledged findings" in result.output


def test_summary_rejects_a_directory_without_stacks(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"artifacts": {}}))
    result = summarize(tmp_path)
    assert result.exit_code == 1
    assert f"no stacks in {tmp_path}" in result.output


def test_summary_fails_when_the_nag_report_is_missing(dev_assembly):
    (dev_assembly / "validation-report.json").unlink()
    result = summarize(dev_assembly)
    assert result.exit_code == 1
    assert "no policy-validation report" in " ".join(result.output.split())


def test_summary_says_why_a_stage_serves_nothing(dev_assembly):
    result = summarize(dev_assembly)
    assert result.exit_code == 0, result.output
    assert "Serving per stage" in result.output
    output = " ".join(result.output.split())
    assert f"not deployed: {NO_MODEL_PACKAGE}" in output


def test_summary_lists_the_endpoints_and_batch_transform_of_each_serving_stage(synthesized_app):
    served = serving_by_stage(list(synthesized_app.stacks.values()))
    assert served["dev"] == f"not deployed: {NO_MODEL_PACKAGE}"
    assert served["prod"] == (
        "real-time endpoint mlopskit-prod-realtime (drift monitoring mlopskit-prod-data-quality: 4 feature alarms, "
        "retraining on mlopskit-prod-realtime-retrain; model quality mlopskit-prod-model-quality); "
        "asynchronous endpoint mlopskit-prod-async; "
        "batch transform mlopskit-prod-batch-transform"
    )
    assert "serverless endpoint mlopskit-staging-serverless" in served["staging"]
