"""torchrun entry for the distributed test: every rank but 0 fails the run if it writes a checkpoint or the model."""

import os

from training_code import train


def _refuse(*_args: object, **_kwargs: object) -> None:
    raise AssertionError(f"rank {os.environ['RANK']} wrote: only rank 0 may")


if __name__ == "__main__":
    if os.environ.get("RANK", "0") != "0":
        train.save_checkpoint = _refuse
        train.ModelArtifact.save = _refuse
    train.main()
