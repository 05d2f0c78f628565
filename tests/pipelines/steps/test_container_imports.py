"""The scripts SageMaker runs in its framework containers import nothing those containers lack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[3]
# In the project's venv, but not in the scikit-learn and PyTorch framework images. (`rich` is left out: scikit-learn
# imports it when present and does without it otherwise.)
PROJECT_ONLY = {"typer", "click", "pydantic", "aws_cdk", "cdk_nag", "constructs", "jsii", "sagemaker", "boto3"}


@pytest.mark.parametrize(
    ("module", "container_lacks"),
    [
        ("training_code.train", PROJECT_ONLY | {"sklearn", "matplotlib", "pandas"}),
        ("pipelines.steps.preprocess", PROJECT_ONLY | {"torch", "matplotlib"}),
        ("pipelines.steps.baseline", PROJECT_ONLY | {"torch", "matplotlib", "sklearn", "pandas"}),
        ("pipelines.steps.evaluate", PROJECT_ONLY | {"torch"}),
    ],
)
def test_script_imports_only_what_its_container_has(module, container_lacks):
    probe = f"import json, sys, {module}; print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True, timeout=120
    )
    assert set(json.loads(result.stdout.splitlines()[-1])) & container_lacks == set()
