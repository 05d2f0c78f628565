"""Small digits splits, prepared once per session, and helpers to run the training script in and out of process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipelines.sample_data import write_digits_csv
from pipelines.steps.preprocess import preprocess
from training_code.contract import MODEL_METADATA_FILE
from training_code.train import main

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Splits:
    root: Path

    @property
    def train(self) -> Path:
        return self.root / "train"

    @property
    def validation(self) -> Path:
        return self.root / "validation"


@pytest.fixture(scope="session")
def splits(tmp_path_factory: pytest.TempPathFactory) -> Splits:
    root = tmp_path_factory.mktemp("digits")
    write_digits_csv(root / "raw" / "digits.csv", duplicates=10, rows=600)
    preprocess(root / "raw", root, "label", validation_ratio=0.2, test_ratio=0.15, seed=0)
    return Splits(root)


@dataclass(frozen=True)
class Run:
    model_dir: Path
    checkpoint_dir: Path
    failure_file: Path

    @property
    def metadata(self) -> dict:
        return json.loads((self.model_dir / MODEL_METADATA_FILE).read_text())

    @property
    def history(self) -> list[dict[str, float]]:
        return self.metadata["history"]


def run_arguments(splits: Splits, workdir: Path, *hyperparameters: str) -> tuple[Run, list[str]]:
    run = Run(workdir / "model", workdir / "checkpoints", workdir / "failure")
    arguments = [
        "--train", str(splits.train),
        "--validation", str(splits.validation),
        "--model-dir", str(run.model_dir),
        "--checkpoint-dir", str(run.checkpoint_dir),
        "--failure-file", str(run.failure_file),
        *hyperparameters,
    ]  # fmt: skip
    return run, arguments


@pytest.fixture
def train_in_process(splits, tmp_path):
    """train_in_process(*flags, workdir=None) -> Run; raises SystemExit(1) on failure, as the script exits."""

    def run_training(*hyperparameters: str, workdir: Path | None = None) -> Run:
        run, arguments = run_arguments(splits, workdir or tmp_path, *hyperparameters)
        main(arguments)
        return run

    return run_training


def training_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "training_code.train", *arguments]


def subprocess_environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "OMP_NUM_THREADS": "1"}


def run_subprocess(command: list[str], timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, cwd=PROJECT_ROOT, env=subprocess_environment(), capture_output=True, text=True, timeout=timeout
    )
