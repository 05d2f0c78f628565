"""Spot interruption: a run killed with SIGKILL mid-training and restarted ends exactly like an uninterrupted one."""

from __future__ import annotations

import os
import signal
import subprocess

import torch

from tests.training_code.conftest import PROJECT_ROOT, run_arguments, subprocess_environment, training_command
from training_code.checkpoint import load_checkpoint
from training_code.contract import MODEL_WEIGHTS_FILE
from training_code.train import main

# Nine epochs after the kill: the killed process cannot finish in the moment between its line and the signal.
EPOCHS = 12
KILL_AFTER_EPOCH = 3
FLAGS = ("--epochs", str(EPOCHS), "--patience", "100", "--hidden-sizes", "128,64", "--seed", "3", "--dropout", "0.2")


def final_line(stdout: str) -> str:
    (line,) = [line for line in stdout.splitlines() if line.startswith("final ")]
    return line


def test_killed_run_resumes_to_the_same_final_metrics_and_weights(splits, tmp_path, capsys):
    # Only the killed run needs a process of its own (most of its cost is importing torch); the uninterrupted and the
    # resumed run train in this process, where nothing but the checkpoint carries over: every run seeds the RNG and
    # builds its model, data and optimizer anew, and the resumed run restores the RNG state from the checkpoint.
    reference, reference_arguments = run_arguments(splits, tmp_path / "reference", *FLAGS)
    main(reference_arguments)
    uninterrupted = capsys.readouterr().out

    interrupted, arguments = run_arguments(splits, tmp_path / "interrupted", *FLAGS)
    process = subprocess.Popen(
        training_command(*arguments), cwd=PROJECT_ROOT, env=subprocess_environment(), stdout=subprocess.PIPE, text=True
    )
    for line in process.stdout:
        if line.startswith(f"epoch={KILL_AFTER_EPOCH} "):
            os.kill(process.pid, signal.SIGKILL)
            break
    process.wait(timeout=60)
    process.stdout.close()
    assert process.returncode == -signal.SIGKILL
    assert not (interrupted.model_dir / MODEL_WEIGHTS_FILE).exists(), "killed before it could finish"
    completed_epochs = load_checkpoint(interrupted.checkpoint_dir)["progress"]["epoch"]
    # The metric line precedes the epoch's checkpoint, so the kill may land before or after that checkpoint.
    assert KILL_AFTER_EPOCH - 1 <= completed_epochs < EPOCHS

    main(arguments)
    resumed = capsys.readouterr().out
    assert f"resuming after epoch {completed_epochs}" in resumed
    assert final_line(resumed) == final_line(uninterrupted)
    assert interrupted.history == reference.history
    weights = torch.load(interrupted.model_dir / MODEL_WEIGHTS_FILE, weights_only=True)
    reference_weights = torch.load(reference.model_dir / MODEL_WEIGHTS_FILE, weights_only=True)
    assert weights.keys() == reference_weights.keys()
    assert all(torch.equal(weights[name], reference_weights[name]) for name in weights)


def test_a_run_restarted_after_early_stopping_does_not_train_further(train_in_process, tmp_path, capsys):
    run = train_in_process("--epochs", "40", "--patience", "2", "--min-delta", "100", "--hidden-sizes", "32")
    assert len(run.history) == 3
    capsys.readouterr()
    train_in_process("--epochs", "40", "--patience", "2", "--min-delta", "100", "--hidden-sizes", "32")
    output = capsys.readouterr().out
    assert "resuming after epoch 3" in output
    assert not [line for line in output.splitlines() if line.startswith("epoch=")]
    assert len(run.history) == 3
