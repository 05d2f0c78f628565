"""Preprocessing: exact duplicates dropped, a stratified and reproducible split, scaling fitted on train only."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from pipelines.steps import preprocess as preprocess_step
from pipelines.steps.preprocess import preprocess
from training_code.contract import PREPROCESSING_REPORT_FILE, SCALING_FILE, SPLITS

Row = tuple[float | str, ...]


def raw_lines(path: Path) -> tuple[str, list[str]]:
    header, *lines = path.read_text().splitlines()
    return header, lines


def duplicate_lines(lines: list[str]) -> int:
    return sum(count - 1 for count in Counter(lines).values())


def read_rows(path: Path) -> list[Row]:
    """Data rows as (feature values..., label), so that 3 and 3.0 compare equal; the label is the last column."""
    with path.open(newline="") as file:
        header, *rows = csv.reader(file)
    assert header[-1] == "label"
    return [(*map(float, row[:-1]), row[-1]) for row in rows]


def split_rows(output: Path) -> dict[str, list[Row]]:
    return {name: read_rows(output / name / f"{name}.csv") for name in SPLITS}


def run(input_dir: Path, output: Path, validation_ratio: float = 0.15, test_ratio: float = 0.15, seed: int = 0) -> dict:
    return preprocess(input_dir, output, "label", validation_ratio, test_ratio, seed)


def write_lines(path: Path, header: str, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


# --- Deduplication and the split ------------------------------------------------------------------------------------


def test_removes_exactly_the_duplicate_lines(digits_csv, splits):
    _, lines = raw_lines(digits_csv)
    injected = duplicate_lines(lines)
    report = json.loads((splits / "report" / PREPROCESSING_REPORT_FILE).read_text())

    assert injected > 0
    assert report["duplicates_removed"] == injected
    assert sum(report["rows"].values()) == len(set(lines))


def test_removes_duplicates_across_the_files_of_the_input_directory(digits_csv, tmp_path):
    header, lines = raw_lines(digits_csv)
    # The second file repeats the last rows of the first: duplicates that no single file holds.
    first, second = lines[:200], lines[150:]
    write_lines(tmp_path / "input" / "a.csv", header, first)
    write_lines(tmp_path / "input" / "b.csv", header, second)

    report = run(tmp_path / "input", tmp_path / "output")

    assert report["input_rows"] == len(first) + len(second)
    assert report["duplicates_removed"] == duplicate_lines(first + second)
    assert {row for rows in split_rows(tmp_path / "output").values() for row in rows} == set(read_rows(digits_csv))


def test_no_row_is_in_two_splits_and_together_they_hold_every_distinct_row(digits_csv, splits):
    rows = split_rows(splits)

    for name, split in rows.items():
        assert len(set(split)) == len(split), f"{name} holds a row twice"
    for one, other in (("train", "validation"), ("train", "test"), ("validation", "test")):
        assert not set(rows[one]) & set(rows[other]), f"{one} and {other} share rows"
    assert set(rows["train"]) | set(rows["validation"]) | set(rows["test"]) == set(read_rows(digits_csv))


@pytest.mark.parametrize(("validation_ratio", "test_ratio"), [(0.15, 0.15), (0.2, 0.1), (0.1, 0.3)])
def test_split_sizes_follow_the_ratios(digits_csv, tmp_path, validation_ratio, test_ratio):
    distinct = len(set(read_rows(digits_csv)))

    report = run(digits_csv.parent, tmp_path, validation_ratio, test_ratio)
    sizes = {name: len(rows) for name, rows in split_rows(tmp_path).items()}

    assert sizes == report["rows"]
    assert sum(sizes.values()) == distinct
    # Validation and test are each rounded up to whole rows, so train may come out up to two rows short.
    assert sizes["test"] == pytest.approx(test_ratio * distinct, abs=1 + 1e-9)
    assert sizes["validation"] == pytest.approx(validation_ratio * distinct, abs=1 + 1e-9)
    assert sizes["train"] == pytest.approx((1 - validation_ratio - test_ratio) * distinct, abs=2 + 1e-9)


@pytest.mark.parametrize(("validation_ratio", "test_ratio", "seed"), [(0.15, 0.15, 0), (0.15, 0.15, 5), (0.2, 0.1, 1)])
def test_splits_are_stratified_by_class(digits_csv, tmp_path, validation_ratio, test_ratio, seed):
    distinct = set(read_rows(digits_csv))
    shares = {label: count / len(distinct) for label, count in Counter(row[-1] for row in distinct).items()}

    run(digits_csv.parent, tmp_path, validation_ratio, test_ratio, seed)

    for name, rows in split_rows(tmp_path).items():
        counts = Counter(row[-1] for row in rows)
        # The test split is drawn first, stratified, so within one row; the others inherit up to one more.
        tolerance = 1 if name == "test" else 2
        for label, share in shares.items():
            expected = share * len(rows)
            assert abs(counts[label] - expected) <= tolerance, f"{name}: class {label} has {counts[label]}, ~{expected}"


def test_the_same_seed_gives_the_same_splits_and_another_seed_different_ones(digits_csv, splits, tmp_path):
    run(digits_csv.parent, tmp_path / "again", seed=0)
    run(digits_csv.parent, tmp_path / "other", seed=1)

    for name in SPLITS:
        file = Path(name) / f"{name}.csv"
        assert (tmp_path / "again" / file).read_bytes() == (splits / file).read_bytes()
    other = split_rows(tmp_path / "other")
    for name, rows in split_rows(splits).items():
        assert set(other[name]) != set(rows), f"seed 1 gave the same {name} split as seed 0"


# --- Scaling --------------------------------------------------------------------------------------------------------


def test_scaling_is_fitted_on_the_train_split_alone(digits_csv, splits):
    scaling = json.loads((splits / "train" / SCALING_FILE).read_text())
    header = (splits / "train" / "train.csv").read_text().splitlines()[0].split(",")
    train = np.loadtxt(splits / "train" / "train.csv", delimiter=",", skiprows=1)[:, :-1]
    everything = np.array([row[:-1] for row in set(read_rows(digits_csv))], dtype=float)
    deviation = train.std(axis=0)

    assert scaling["feature_names"] == header[:-1]
    np.testing.assert_allclose(scaling["mean"], train.mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(scaling["scale"], np.where(deviation > 0, deviation, 1.0), rtol=1e-12)
    # Statistics over all the data would differ: the test set must not leak into the scaling.
    assert np.abs(np.array(scaling["mean"]) - everything.mean(axis=0)).max() > 1e-3


def test_a_constant_column_gets_scale_one(splits):
    scaling = json.loads((splits / "train" / SCALING_FILE).read_text())
    train = np.loadtxt(splits / "train" / "train.csv", delimiter=",", skiprows=1)[:, :-1]
    constant = train.std(axis=0) == 0

    assert constant.any(), "the sample data should have a constant pixel (pixel_0 is always blank)"
    assert np.array(scaling["scale"])[constant].tolist() == [1.0] * int(constant.sum())


def test_scaling_travels_with_the_training_channel_only(splits):
    assert (splits / "train" / SCALING_FILE).is_file()
    assert not (splits / "validation" / SCALING_FILE).exists()
    assert not (splits / "test" / SCALING_FILE).exists()


# --- Report ---------------------------------------------------------------------------------------------------------


def test_report_counts_rows_duplicates_and_classes_per_split(digits_csv, splits):
    _, lines = raw_lines(digits_csv)
    report = json.loads((splits / "report" / PREPROCESSING_REPORT_FILE).read_text())
    rows = split_rows(splits)

    assert report["input_rows"] == len(lines)
    assert report["duplicates_removed"] == duplicate_lines(lines)
    assert report["rows"] == {name: len(split) for name, split in rows.items()}
    assert report["class_counts"] == {name: dict(Counter(row[-1] for row in split)) for name, split in rows.items()}


def test_command_line_success_writes_the_splits_and_no_failure(digits_csv, invoke, tmp_path):
    failure_file = tmp_path / "failure"

    result = invoke(
        preprocess_step.main,
        input_dir=digits_csv.parent,
        output_dir=tmp_path / "output",
        validation_ratio=0.2,
        test_ratio=0.1,
        seed=3,
        failure_file=failure_file,
    )

    assert result.exit_code == 0, result.output
    assert not failure_file.exists()
    report = json.loads((tmp_path / "output" / "report" / PREPROCESSING_REPORT_FILE).read_text())
    assert report["seed"] == 3
    assert report == run(digits_csv.parent, tmp_path / "direct", validation_ratio=0.2, test_ratio=0.1, seed=3)


# --- Failure contract -----------------------------------------------------------------------------------------------


def test_a_class_with_fewer_than_three_distinct_rows_fails(digits_csv, failure_reason, tmp_path):
    header, lines = raw_lines(digits_csv)
    # Four rows of class 10, but only two distinct ones: duplicates do not count.
    rare = [",".join(["1"] * 64 + ["10"]), ",".join(["2"] * 64 + ["10"])]
    path = write_lines(tmp_path / "input" / "data.csv", header, [*lines, *rare, rare[0], rare[0]])

    reason = failure_reason(preprocess_step.main, input_dir=path.parent, output_dir=tmp_path / "output")

    assert str(path) in reason
    assert "'10'" in reason
    assert re.search(r"\b3\b", reason), reason
    assert not (tmp_path / "output").exists()


def test_a_class_with_exactly_three_distinct_rows_is_split(digits_csv, invoke, tmp_path):
    header, lines = raw_lines(digits_csv)
    rare = [",".join([str(value)] * 64 + ["10"]) for value in (1, 2, 3)]
    path = write_lines(tmp_path / "input" / "data.csv", header, [*lines, *rare])

    result = invoke(
        preprocess_step.main,
        input_dir=path.parent,
        output_dir=tmp_path / "output",
        failure_file=tmp_path / "failure",
    )

    assert result.exit_code == 0, result.output
    assert sum(row[-1] == "10" for rows in split_rows(tmp_path / "output").values() for row in rows) == 3


def test_a_missing_label_column_fails_naming_file_and_column(digits_csv, failure_reason, tmp_path):
    header, lines = raw_lines(digits_csv)
    path = write_lines(tmp_path / "input" / "data.csv", header.replace(",label", ",digit"), lines)

    reason = failure_reason(preprocess_step.main, input_dir=path.parent, output_dir=tmp_path / "output")

    assert str(path) in reason
    assert "'label'" in reason
    assert not (tmp_path / "output").exists()


def test_a_non_numeric_cell_fails_naming_file_row_and_column(digits_csv, failure_reason, tmp_path):
    header, lines = raw_lines(digits_csv)
    columns = header.split(",")
    cells = lines[6].split(",")
    cells[columns.index("pixel_5")] = "abc"
    lines[6] = ",".join(cells)
    path = write_lines(tmp_path / "input" / "data.csv", header, lines)

    reason = failure_reason(preprocess_step.main, input_dir=path.parent, output_dir=tmp_path / "output")

    assert str(path) in reason
    assert re.search(r"\brow 7\b", reason), reason
    assert "'pixel_5'" in reason
    assert "'abc'" in reason
    assert not (tmp_path / "output").exists()


@pytest.mark.parametrize(
    ("validation_ratio", "test_ratio"), [(0.5, 0.5), (0.6, 0.6), (0.0, 0.15), (0.15, 1.0), (-0.1, 0.2), (0.2, 0.0)]
)
def test_invalid_ratios_fail_naming_them(digits_csv, failure_reason, tmp_path, validation_ratio, test_ratio):
    reason = failure_reason(
        preprocess_step.main,
        input_dir=digits_csv.parent,
        output_dir=tmp_path / "output",
        validation_ratio=validation_ratio,
        test_ratio=test_ratio,
    )

    assert "ratio" in reason
    assert str(validation_ratio) in reason
    assert str(test_ratio) in reason
    assert not (tmp_path / "output").exists()
