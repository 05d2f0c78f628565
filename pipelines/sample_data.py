"""Sample datasets as CSV: scikit-learn's bundled digits (8x8 images, 10 classes; no download) with duplicates, and a
table of people as users bring them (a text column, missing cells, the label column in the middle).

python -m pipelines.sample_data data/raw/digits.csv [--duplicates 40] [--rows N] [--seed 0]
python -m pipelines.sample_data data/people/people.csv --kind people [--rows 600]
"""

from __future__ import annotations

import csv
import random
from enum import StrEnum
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
    generator = np.random.default_rng(seed)
    order = generator.permutation(len(digits.target))[:rows]
    features = digits.data[order].astype(int)
    labels = digits.target[order]
    copies = generator.choice(len(order), size=duplicates, replace=duplicates > len(order))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([*FEATURE_NAMES, DEFAULT_LABEL_COLUMN])
        for row in (*range(len(order)), *copies):
            writer.writerow([*features[row], labels[row]])
    return path


PEOPLE_COLUMNS = ("age", "colour", "outcome", "size", "city")
PEOPLE_LABEL = "outcome"
COLOUR_EFFECT = {"red": 2.0, "green": 0.0, "blue": -2.0}
CITIES = ("Lyon", "Oslo", "Porto", "Riga")


def people_label(age: float, colour: str, size: float) -> str:
    """The rule the classes follow: learnable only with the text column and the numbers together."""
    return "high" if 0.08 * (age - 40) + COLOUR_EFFECT[colour] + 0.5 * size > 0.0 else "low"


def write_people_csv(path: Path, rows: int = 600, seed: int = 0, missing_share: float = 0.08) -> Path:
    """age and colour miss a cell now and then ("" and "NA"); size and city never do; `outcome` is the label."""
    generator = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(PEOPLE_COLUMNS)
        for _ in range(rows):
            age, colour = generator.randint(18, 80), generator.choice(sorted(COLOUR_EFFECT))
            size = round(generator.gauss(0, 2), 2)
            label = people_label(age, colour, size)
            age_cell = "" if generator.random() < missing_share else str(age)
            colour_cell = "NA" if generator.random() < missing_share else colour
            writer.writerow([age_cell, colour_cell, label, size, generator.choice(CITIES)])
    return path


class SampleKind(StrEnum):
    DIGITS = "digits"
    PEOPLE = "people"


def main(
    path: Annotated[Path, typer.Argument(help="where to write the CSV")],
    kind: Annotated[SampleKind, typer.Option(help="digits (label column: label) or people (outcome)")] = (
        SampleKind.DIGITS
    ),
    duplicates: Annotated[int, typer.Option(min=0, help="digits: exact duplicate rows to append")] = 40,
    rows: Annotated[int | None, typer.Option(min=20, help="keep only this many distinct rows")] = None,
    seed: Annotated[int, typer.Option(help="seed for the subset and the duplicates")] = 0,
) -> None:
    if kind == SampleKind.PEOPLE:
        write_people_csv(path, rows or 600, seed)
    else:
        write_digits_csv(path, duplicates, rows, seed)
    typer.echo(f"wrote {path}")


if __name__ == "__main__":
    typer.run(main)
