"""Hyperparameter names live in a torch-free module; each implementation covers exactly those names."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from training_code import choices
from training_code.initializers import DEFAULT_FOR_ACTIVATION
from training_code.model import ACTIVATIONS
from training_code.serving.predictor import ACTIVATIONS as SERVED_ACTIVATIONS

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_training_and_serving_implement_every_activation():
    assert tuple(ACTIVATIONS) == choices.ACTIVATIONS
    assert set(SERVED_ACTIVATIONS) == set(choices.ACTIVATIONS)
    assert set(DEFAULT_FOR_ACTIVATION) == set(choices.ACTIVATIONS)
    assert set(DEFAULT_FOR_ACTIVATION.values()) <= set(choices.INITIALIZERS)


def test_the_operator_cli_starts_without_torch():
    """`mlops` validates pipeline parameters against these names; importing torch for that cost about 3 s."""
    probe = "import json, sys, pipelines.cli; print(json.dumps('torch' in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    assert json.loads(result.stdout.splitlines()[-1]) is False
