"""A sample dataset: scikit-learn's bundled digits (8x8 images, 10 classes; no download) as CSV, with duplicates.

python -m pipelines.sample_data data/raw/digits.csv [--duplicates 40] [--rows N] [--seed 0]
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from sklearn.datasets import load_digits

from training_code.contract import DEFAULT_LABEL_COLUMN

FEATURE_NAMES = tuple(f"pixel_{index}" for index in range(64))


def write_digits_csv(path: Path, duplicates: int = 40, rows: int | None = None, seed: int = 0) -> Path:
    """Write the digits as CSV (64 pixel columns, then `label`), appending `duplicates` exact copies of random rows.

    `rows` keeps a stratified-ish subset (the first rows of a fixed shuffle) for fast tests.
    """
    digits = load_digits()
    random = np.random.default_rng(seed)
    order = random.permutation(len(digits.target))[:rows]
    features = digits.data[order].astype(int)
    labels = digits.target[order]
    copies = random.choice(len(order), size=duplicates, replace=duplicates > len(order))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([*FEATURE_NAMES, DEFAULT_LABEL_COLUMN])
        for row in (*range(len(order)), *copies):
            writer.writerow([*features[row], labels[row]])
    return path


def main(
    path: Annotated[Path, typer.Argument(help="where to write the CSV")],
    duplicates: Annotated[int, typer.Option(min=0, help="exact duplicate rows to append")] = 40,
    rows: Annotated[int | None, typer.Option(min=20, help="keep only this many distinct rows")] = None,
    seed: Annotated[int, typer.Option(help="seed for the subset and the duplicates")] = 0,
) -> None:
    write_digits_csv(path, duplicates, rows, seed)
    typer.echo(f"wrote {path}")


if __name__ == "__main__":
    typer.run(main)
