"""The pipeline definitions as deployed: read back from each stage's synthesized template."""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.config import STAGE_NAMES


@pytest.fixture(scope="session")
def definitions(synthesized_app) -> dict[str, dict[str, Any]]:
    found = {}
    for stage in STAGE_NAMES:
        resources = synthesized_app.template(stage, "Pipeline")["Resources"]
        (pipeline,) = [r for r in resources.values() if r["Type"] == "AWS::SageMaker::Pipeline"]
        body, _ = pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]["Fn::Sub"]
        found[stage] = json.loads(body)
    return found
