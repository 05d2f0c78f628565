"""Spot-safe checkpoints: written atomically, so a job killed mid-write resumes from the previous complete one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from training_code.contract import CHECKPOINT_FILE


def save_checkpoint(directory: Path, state: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / CHECKPOINT_FILE
    # A fixed name: one writer (rank 0), and no stray files accumulate in the synced checkpoint prefix.
    partial = directory / f".{CHECKPOINT_FILE}.partial"
    with partial.open("wb") as file:
        torch.save(state, file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(partial, final)
    return final


def load_checkpoint(directory: Path) -> dict[str, Any] | None:
    path = directory / CHECKPOINT_FILE
    if not path.exists():
        return None
    # Checkpoints hold RNG states (numpy arrays, Python tuples) besides tensors; they are our own files.
    return torch.load(path, map_location="cpu", weights_only=False)
