"""A 2-process CPU run under torchrun (gloo), as SageMaker's torch_distributed launches multi-instance jobs."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.training_code.conftest import run_arguments, run_subprocess
from training_code.checkpoint import load_checkpoint
from training_code.contract import MODEL_METADATA_FILE, MODEL_WEIGHTS_FILE, SERVING_WEIGHTS_FILE

EPOCHS = 5


def test_two_workers_train_together_and_only_rank_zero_writes(splits, tmp_path):
    """rank_guard makes rank 1 fail the run if it writes a checkpoint or the model."""
    run, arguments = run_arguments(
        splits, tmp_path, "--epochs", str(EPOCHS), "--patience", "50", "--hidden-sizes", "64", "--learning-rate", "0.01"
    )
    torchrun = Path(sys.executable).with_name("torchrun")
    result = run_subprocess(
        [
            str(torchrun),
            "--standalone",
            "--nproc-per-node",
            "2",
            "--module",
            "tests.training_code.rank_guard",
            *arguments,
        ],
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 worker(s) on cpu" in result.stdout
    epoch_lines = [line for line in result.stdout.splitlines() if line.startswith("epoch=")]
    assert [line.split()[0] for line in epoch_lines] == [f"epoch={epoch}" for epoch in range(1, EPOCHS + 1)]
    assert result.stdout.count("best_epoch=") == 1
    assert sorted(path.name for path in run.model_dir.iterdir()) == sorted(
        [MODEL_WEIGHTS_FILE, SERVING_WEIGHTS_FILE, MODEL_METADATA_FILE]
    )
    checkpoint = load_checkpoint(run.checkpoint_dir)
    assert checkpoint["progress"]["epoch"] == EPOCHS
    assert len(checkpoint["rng"]) == 2, "each worker's RNG state is kept for an exact resume"
    assert not [path for path in run.checkpoint_dir.iterdir() if path.name.endswith(".partial")]
    assert max(epoch["validation_accuracy"] for epoch in run.history) >= 0.85
