"""Preprocessing: exact duplicates dropped, a stratified and reproducible split, the encoding fitted on train only."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from pipelines.sample_data import CITIES, COLOUR_EFFECT, PEOPLE_LABEL, write_people_csv
from pipelines.steps import preprocess as preprocess_step
from pipelines.steps.preprocess import preprocess
from training_code.contract import ENCODING_FILE, PREPROCESSING_REPORT_FILE, SPLITS
from training_code.data import read_table
from training_code.features import Encoding

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


# --- Encoding -------------------------------------------------------------------------------------------------------


def numeric_statistics(splits: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    encoding = json.loads((splits / "train" / ENCODING_FILE).read_text())
    columns = encoding["columns"]
    assert {column["kind"] for column in columns} == {"numeric"}
    return (
        [column["name"] for column in columns],
        np.array([column["mean"] for column in columns]),
        np.array([column["scale"] for column in columns]),
    )


def test_scaling_is_fitted_on_the_train_split_alone(digits_csv, splits):
    names, mean, scale = numeric_statistics(splits)
    header = (splits / "train" / "train.csv").read_text().splitlines()[0].split(",")
    train = np.loadtxt(splits / "train" / "train.csv", delimiter=",", skiprows=1)[:, :-1]
    everything = np.array([row[:-1] for row in set(read_rows(digits_csv))], dtype=float)
    deviation = train.std(axis=0)

    assert names == header[:-1]
    np.testing.assert_allclose(mean, train.mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(scale, np.where(deviation > 0, deviation, 1.0), rtol=1e-12)
    # Statistics over all the data would differ: the test set must not leak into the scaling.
    assert np.abs(mean - everything.mean(axis=0)).max() > 1e-3


def test_a_constant_column_gets_scale_one(splits):
    _, _, scale = numeric_statistics(splits)
    train = np.loadtxt(splits / "train" / "train.csv", delimiter=",", skiprows=1)[:, :-1]
    constant = train.std(axis=0) == 0

    assert constant.any(), "the sample data should have a constant pixel (pixel_0 is always blank)"
    assert scale[constant].tolist() == [1.0] * int(constant.sum())


def test_the_encoding_travels_with_the_training_channel_only(splits):
    assert (splits / "train" / ENCODING_FILE).is_file()
    assert not (splits / "validation" / ENCODING_FILE).exists()
    assert not (splits / "test" / ENCODING_FILE).exists()


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


# --- Tables as users bring them -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed_splits(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    raw = write_people_csv(tmp_path_factory.mktemp("mixed") / "input" / "people.csv")
    output = raw.parent.parent / "output"
    return raw, output, preprocess(raw.parent, output, PEOPLE_LABEL, 0.15, 0.15, seed=0)


def test_a_text_column_becomes_categories_fitted_on_the_train_split(mixed_splits):
    _, output, report = mixed_splits
    encoding = Encoding.load(output / "train" / ENCODING_FILE)
    columns = {column.name: column for column in encoding.columns}
    assert encoding.label_column == PEOPLE_LABEL
    assert encoding.feature_names == ("age", "colour", "size", "city")
    assert (columns["colour"].kind, columns["colour"].categories) == ("categorical", ("blue", "green", "red"))
    assert (columns["city"].kind, columns["city"].categories) == ("categorical", CITIES)
    assert columns["size"].kind == columns["age"].kind == "numeric"
    assert report["columns"]["colour"]["kind"] == "categorical"
    assert report["columns"]["colour"]["missing_filled_with"] in COLOUR_EFFECT
    assert report["columns"]["city"]["missing_filled_with"] is None


def test_missing_cells_are_filled_with_train_statistics_only_where_the_data_has_missing_cells(mixed_splits):
    _, output, _ = mixed_splits
    encoding = Encoding.load(output / "train" / ENCODING_FILE)
    columns = {column.name: column for column in encoding.columns}
    train = read_table(output / "train" / "train.csv", PEOPLE_LABEL)
    ages = np.array([float(cell) for cell in train.cells[:, 0] if cell not in ("", "NA")])
    colours = Counter(cell for cell in train.cells[:, 1] if cell != "NA")
    assert columns["age"].fill == pytest.approx(float(np.median(ages)))
    assert columns["colour"].categories[int(columns["colour"].fill)] == colours.most_common(1)[0][0]
    assert columns["size"].fill is None and columns["city"].fill is None, "no missing cells: a missing one is refused"


def test_splits_keep_the_users_columns_in_their_order_and_cells_as_written(mixed_splits):
    raw, output, _ = mixed_splits
    with raw.open(newline="") as file:
        header, *rows = list(csv.reader(file))
    written = []
    for name in SPLITS:
        with (output / name / f"{name}.csv").open(newline="") as file:
            split_header, *split_rows_ = list(csv.reader(file))
        assert split_header == header
        written += split_rows_
    assert sorted(map(tuple, written)) == sorted(set(map(tuple, rows)))


def test_a_continuous_label_column_is_refused_with_a_short_reason(failure_reason, tmp_path):
    path = tmp_path / "input" / "houses.csv"
    path.parent.mkdir()
    path.write_text("rooms,price\n" + "".join(f"{i % 7},{100_000 + 1_234.5 * i}\n" for i in range(300)))

    reason = failure_reason(
        preprocess_step.main, input_dir=path.parent, output_dir=tmp_path / "output", label_column="price"
    )

    assert "'price' holds 300 distinct numbers" in reason and "continuous" in reason
    assert len(reason) < 300
    assert not (tmp_path / "output").exists()


def test_a_missing_label_column_lists_a_few_columns_and_says_how_to_name_it(failure_reason, tmp_path):
    path = tmp_path / "input" / "wide.csv"
    path.parent.mkdir()
    path.write_text(",".join(f"feature_{i}" for i in range(1000)) + "\n" + ",".join(["1"] * 1000) + "\n")

    reason = failure_reason(preprocess_step.main, input_dir=path.parent, output_dir=tmp_path / "output")

    assert "--label-column" in reason and "LabelColumn" in reason
    assert "feature_0" in reason and "and 992 more" in reason and "feature_999" not in reason
    assert len(reason) < 400


def test_errors_name_the_users_file_under_the_input_uri_not_the_jobs_copy(digits_csv, failure_reason, tmp_path):
    header, lines = raw_lines(digits_csv)
    cells = lines[6].split(",")
    cells[3] = "abc"
    lines[6] = ",".join(cells)
    path = write_lines(tmp_path / "opt" / "ml" / "processing" / "input" / "raw" / "digits.csv", header, lines)

    reason = failure_reason(
        preprocess_step.main,
        input_dir=path.parent,
        output_dir=tmp_path / "output",
        input_uri="s3://my-data/raw/run-7/",
    )

    assert reason.startswith("DataError: s3://my-data/raw/run-7/digits.csv row 7 column 'pixel_3': 'abc'"), reason
    assert str(path.parent) not in reason
