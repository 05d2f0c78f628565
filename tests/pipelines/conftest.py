"""The pipeline definitions as deployed, read back from each stage's synthesized template; the fake registry of the
operator commands' tests."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra import manifest
from infra.config import STAGE_NAMES
from tests.pipelines.registry_fakes import fake_registry


@pytest.fixture(scope="session")
def definitions(synthesized_app) -> dict[str, dict[str, Any]]:
    found = {}
    for stage in STAGE_NAMES:
        resources = synthesized_app.template(stage, "Pipeline")["Resources"]
        (pipeline,) = [r for r in resources.values() if r["Type"] == "AWS::SageMaker::Pipeline"]
        body, _ = pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
        found[stage] = json.loads(body)
    return found


@pytest.fixture
def aws(monkeypatch, tmp_path):
    # No test may read or write the repository's manifests, also through the stage config.
    monkeypatch.setattr(manifest, "MANIFEST_DIR", tmp_path / "repository-manifests")
    with fake_registry(monkeypatch) as fake:
        yield fake
