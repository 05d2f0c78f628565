"""The sample dataset: digits as CSV with a known number of exact duplicate rows, reproducible from a seed."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import typer
from sklearn.datasets import load_digits
from typer.testing import CliRunner

from pipelines import sample_data
from pipelines.sample_data import (
    CITIES,
    COLOUR_EFFECT,
    PEOPLE_COLUMNS,
    PEOPLE_LABEL,
    people_label,
    write_digits_csv,
    write_people_csv,
)

EXPECTED_HEADER = [*(f"pixel_{index}" for index in range(64)), "label"]


def read_rows(path: Path) -> tuple[list[str], list[tuple[str, ...]]]:
    with path.open(newline="") as file:
        header, *rows = csv.reader(file)
    return header, [tuple(row) for row in rows]


def repeats_of_earlier_rows(rows: list[tuple[str, ...]]) -> int:
    seen: set[tuple[str, ...]] = set()
    repeats = 0
    for row in rows:
        repeats += row in seen
        seen.add(row)
    return repeats


@pytest.mark.parametrize(("rows", "duplicates"), [(300, 25), (50, 0), (20, 50)])
def test_csv_has_the_distinct_rows_then_the_requested_duplicates(tmp_path, rows, duplicates):
    header, data = read_rows(write_digits_csv(tmp_path / "digits.csv", duplicates=duplicates, rows=rows))

    assert header == EXPECTED_HEADER
    assert all(len(row) == len(header) for row in data)
    assert len(data) == rows + duplicates
    assert repeats_of_earlier_rows(data) == duplicates
    # The first `rows` rows are all distinct, and every appended row repeats one of them.
    assert len(set(data[:rows])) == rows
    assert set(data[rows:]) <= set(data[:rows])


def test_rows_are_digits_from_the_bundled_dataset(tmp_path):
    _, data = read_rows(write_digits_csv(tmp_path / "digits.csv", duplicates=5, rows=100))
    digits = load_digits()
    known = {(*row.astype(int).astype(str), str(label)) for row, label in zip(digits.data, digits.target, strict=True)}

    assert set(data) <= known


def test_without_a_row_limit_every_digit_is_written(tmp_path):
    _, data = read_rows(write_digits_csv(tmp_path / "digits.csv", duplicates=3))

    assert len(set(data)) == len(load_digits().target)
    assert len(data) == len(load_digits().target) + 3


def test_the_same_seed_writes_the_same_file_and_another_seed_a_different_one(tmp_path):
    first = write_digits_csv(tmp_path / "a.csv", duplicates=10, rows=100, seed=7).read_bytes()
    again = write_digits_csv(tmp_path / "b.csv", duplicates=10, rows=100, seed=7).read_bytes()
    other = write_digits_csv(tmp_path / "c.csv", duplicates=10, rows=100, seed=8).read_bytes()

    assert first == again
    assert first != other


def test_command_line_writes_the_csv_with_the_given_options(tmp_path):
    app = typer.Typer()
    app.command()(sample_data.main)
    path = tmp_path / "nested" / "digits.csv"

    result = CliRunner().invoke(app, [str(path), "--duplicates", "4", "--rows", "30", "--seed", "3"])

    assert result.exit_code == 0, result.output
    assert path.read_bytes() == write_digits_csv(tmp_path / "direct.csv", duplicates=4, rows=30, seed=3).read_bytes()


def test_command_line_rejects_too_few_rows(tmp_path):
    app = typer.Typer()
    app.command()(sample_data.main)
    path = tmp_path / "digits.csv"

    result = CliRunner().invoke(app, [str(path), "--rows", "19"])

    assert result.exit_code != 0
    assert not path.exists()


def test_the_people_sample_has_a_text_column_missing_cells_and_the_label_in_the_middle(tmp_path):
    path = write_people_csv(tmp_path / "people.csv", rows=400)
    header, *rows = list(csv.reader(path.open()))
    assert header == list(PEOPLE_COLUMNS) and header.index(PEOPLE_LABEL) == 2
    columns = dict(zip(header, zip(*rows, strict=True), strict=True))
    assert set(columns["colour"]) == {*COLOUR_EFFECT, "NA"}
    assert "" in columns["age"] and "" not in columns["size"] and set(columns["city"]) == set(CITIES)
    complete = [row for row in rows if row[0] and row[1] != "NA"]
    assert all(row[2] == people_label(float(row[0]), row[1], float(row[3])) for row in complete)
    assert {row[2] for row in rows} == {"high", "low"}
    assert write_people_csv(tmp_path / "again.csv", rows=400).read_bytes() == path.read_bytes()
