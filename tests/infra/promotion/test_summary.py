"""`make run`'s delivery line: what the pipeline does in order, or why there is none."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra import summary
from infra.summary import app, delivery_summary, serving_by_stage

PIPELINE_LINE = (
    "pipeline mlopskit-delivery from CodeCommit mlopskit@main: Source → Build → UpdatePipeline → Assets → "
    "staging (then SmokeTest) → prod (after PromoteToProd approval)"
)


@pytest.fixture(autouse=True)
def shared_lint(monkeypatch, lint_once) -> None:
    """The summary lints through the test run's cache: each distinct template once (infra.lint as it is otherwise)."""
    monkeypatch.setattr(summary, "lint_templates", lint_once)


def test_the_delivery_line_names_pipeline_source_and_stage_order(delivery_app):
    assert delivery_summary(list(delivery_app.stacks.values())) == [PIPELINE_LINE]


def test_stages_under_the_pipeline_are_reported_by_their_own_name(delivery_app):
    served = serving_by_stage(list(delivery_app.stacks.values()))
    assert sorted(served) == ["dev", "prod", "staging"]
    assert "real-time endpoint mlopskit-staging-realtime" in served["staging"]


def test_the_summary_prints_the_delivery_line(delivery_app, tmp_path):
    """On a copy of the assembly reduced to the delivery stack (linting every stage again would be slow)."""
    copy = tmp_path / "cdk.out"
    shutil.copytree(delivery_app.assembly_dir, copy)
    manifest_path: Path = copy / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["artifacts"] = {
        name: artifact for name, artifact in manifest["artifacts"].items() if artifact["type"] != "cdk:cloud-assembly"
    }
    manifest_path.write_text(json.dumps(manifest))
    result = CliRunner().invoke(app, [str(copy)], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert f"Delivery: {PIPELINE_LINE}" in " ".join(result.output.split())
    assert "cfn-lint over 1 templates: 0 errors" in result.output
