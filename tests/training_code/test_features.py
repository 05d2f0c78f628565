"""The feature encoding: which columns are numbers or categories, the statistics fitted on the training split, and
how cells (CSV text or JSON values) become the network's input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from training_code.data import DataError, Table, check_classification_target
from training_code.features import (
    CATEGORICAL,
    MAX_CATEGORIES,
    MISSING_MARKERS,
    NUMERIC,
    Column,
    Encoding,
    EncodingError,
    infer_columns,
)


def table_cells(*rows: tuple[str, ...]) -> np.ndarray:
    """Cells as `read_table` holds them: stripped text in an object array."""
    return np.array(rows, dtype=object)


def one_column(values: list[str]) -> np.ndarray:
    return table_cells(*((value,) for value in values))


def numbers(count: int) -> list[str]:
    return [str(number) for number in range(count)]


def fit_one(values: list[str], kind: str, may_miss: bool = False) -> Column:
    """The column fitted from one training column called "x"."""
    encoding = Encoding.fit(one_column(values), ("x",), "label", {"x": kind}, frozenset({"x"} if may_miss else ()))
    return encoding.columns[0]


# infer_columns


def test_a_column_of_numbers_is_numeric_and_one_of_words_categorical():
    cells = table_cells(("1", "red"), ("2.5", "blue"), ("-3", "red"), ("1e3", "green"))
    kinds, may_miss = infer_columns(cells, ("size", "color"))
    assert kinds == {"size": NUMERIC, "color": CATEGORICAL}
    assert may_miss == frozenset()


def test_one_typo_among_numbers_is_refused_naming_its_row_and_column():
    weights = numbers(20)
    weights.insert(7, "12,5")
    cells = table_cells(*(("a", weight) for weight in weights))
    with pytest.raises(EncodingError, match="'12,5' is not a number") as raised:
        infer_columns(cells, ("name", "weight"))
    assert (raised.value.row, raised.value.column) == (8, "weight")


def test_more_than_a_tenth_of_text_makes_a_column_categorical():
    kinds, _ = infer_columns(one_column([*numbers(17), "small", "large", "small"]), ("size",))
    assert kinds == {"size": CATEGORICAL}


def test_exactly_a_tenth_of_text_in_a_column_of_numbers_is_refused_as_typos():
    with pytest.raises(EncodingError):
        infer_columns(one_column([*numbers(18), "oops", "typo"]), ("size",))


@pytest.mark.parametrize("infinite", ["inf", "-inf", "Infinity", "1e999"])
def test_an_infinite_number_is_refused_naming_its_row(infinite: str):
    with pytest.raises(EncodingError, match="not a finite number") as raised:
        infer_columns(one_column(["1", "2", infinite, "4"]), ("size",))
    assert (raised.value.row, raised.value.column) == (3, "size")


def test_a_column_without_any_value_is_refused():
    with pytest.raises(EncodingError, match="no values") as raised:
        infer_columns(table_cells(("1", ""), ("2", "NA"), ("3", "?")), ("size", "empty"))
    assert raised.value.column == "empty"


@pytest.mark.parametrize("marker", sorted(MISSING_MARKERS))
def test_may_miss_holds_exactly_the_columns_with_a_missing_marker(marker: str):
    cells = table_cells(("1", "red", "7"), (marker, "blue", "8"), ("3", marker, "9"), ("4", "red", "10"))
    kinds, may_miss = infer_columns(cells, ("size", "color", "count"))
    assert may_miss == {"size", "color"}
    assert kinds == {"size": NUMERIC, "color": CATEGORICAL, "count": NUMERIC}


# Encoding.fit


def test_numeric_statistics_are_taken_after_filling_missing_cells_with_the_median():
    column = fit_one(["1", "3", "", "8"], NUMERIC, may_miss=True)
    filled = np.array([1.0, 3.0, 3.0, 8.0])
    assert column.fill == 3.0
    assert column.mean == pytest.approx(filled.mean())
    assert column.scale == pytest.approx(filled.std())


def test_statistics_come_from_the_training_cells_even_where_only_other_splits_miss():
    column = fit_one(["2", "4", "9"], NUMERIC, may_miss=True)
    assert column.fill == 4.0
    assert column.mean == pytest.approx(5.0)


def test_a_constant_column_keeps_scale_one_and_encodes_as_zero():
    encoding = Encoding.fit(one_column(["5", "5", "5"]), ("x",), "label", {"x": NUMERIC}, frozenset())
    assert (encoding.columns[0].mean, encoding.columns[0].scale) == (5.0, 1.0)
    np.testing.assert_array_equal(encoding.transform(encoding.codes(one_column(["5"]))), [[0.0]])


def test_categories_are_sorted_and_missing_cells_fill_with_the_most_frequent():
    column = fit_one(["pear", "apple", "pear", "fig", "", "NA"], CATEGORICAL, may_miss=True)
    assert column.categories == ("apple", "fig", "pear")
    assert column.fill == 2.0


def test_a_tie_for_most_frequent_category_goes_to_the_first_in_order():
    assert fit_one(["b", "a", "b", "a"], CATEGORICAL, may_miss=True).fill == 0.0


def test_categories_beyond_the_cap_drop_the_least_frequent():
    rare = [f"a{number}" for number in range(5)]
    frequent = [f"k{number:03}" for number in range(MAX_CATEGORIES)]
    column = fit_one([*rare, *frequent, *frequent, "k050"], CATEGORICAL, may_miss=True)
    assert column.categories == tuple(frequent)
    assert column.fill == 50.0


@pytest.mark.parametrize(("values", "kind"), [(["1", "2"], NUMERIC), (["a", "b"], CATEGORICAL)])
def test_a_column_that_may_not_miss_has_no_fill(values: list[str], kind: str):
    assert fit_one(values, kind).fill is None


@pytest.mark.filterwarnings("ignore:overflow encountered in reduce:RuntimeWarning")
def test_fitting_large_finite_numbers_gives_finite_statistics():
    column = fit_one(["1e308", "1e308"], NUMERIC)
    assert math.isfinite(column.mean) and math.isfinite(column.scale)


# codes and transform


FRUIT = Encoding(
    (
        Column("size", NUMERIC, fill=2.0, mean=1.0, scale=2.0),
        Column("color", CATEGORICAL, fill=1.0, categories=("blue", "green", "red")),
        Column("shape", CATEGORICAL, fill=None, categories=("round", "square")),
    ),
    "fruit",
)


def encode(encoding: Encoding, *rows: tuple[str, ...]) -> np.ndarray:
    return encoding.transform(encoding.codes(table_cells(*rows)))


def test_cells_become_standardized_numbers_and_one_hot_blocks():
    assert FRUIT.width == 6
    inputs = encode(FRUIT, ("3", "red", "square"), ("-1", "blue", "round"))
    assert inputs.dtype == np.float32
    np.testing.assert_array_equal(inputs, [[1, 0, 0, 1, 0, 1], [-1, 1, 0, 0, 1, 0]])


def test_a_category_training_never_saw_is_an_all_zero_block():
    np.testing.assert_array_equal(encode(FRUIT, ("3", "purple", "round")), [[1, 0, 0, 0, 1, 0]])


def test_missing_cells_take_the_median_and_the_most_frequent_category():
    np.testing.assert_array_equal(encode(FRUIT, ("NA", "", "round")), [[0.5, 0, 1, 0, 1, 0]])


@pytest.mark.parametrize(
    ("encoding", "bad_row", "column"),
    [
        (FRUIT, ("1", "red", "?"), "shape"),
        (Encoding((Column("count", NUMERIC),), "label"), ("",), "count"),
    ],
)
def test_a_missing_cell_where_training_had_none_is_refused_naming_row_and_column(
    encoding: Encoding, bad_row: tuple[str, ...], column: str
):
    good_row = tuple("1" if spec.kind == NUMERIC else spec.categories[0] for spec in encoding.columns)
    with pytest.raises(EncodingError, match="training had no missing values") as raised:
        encoding.codes(table_cells(good_row, bad_row))
    assert (raised.value.row, raised.value.column) == (2, column)


@pytest.mark.parametrize(("cell", "problem"), [("12,5", "not a number"), ("inf", "not a finite number")])
def test_a_bad_number_in_a_request_is_refused_naming_row_and_column(cell: str, problem: str):
    with pytest.raises(EncodingError, match=problem) as raised:
        FRUIT.codes(table_cells(("1", "red", "round"), ("2", "red", "round"), (cell, "red", "round")))
    assert (raised.value.row, raised.value.column) == (3, "size")


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
@pytest.mark.parametrize(
    ("training", "request_cell"),
    [(["-1", "1"], "1e39"), (["0", "0", "1.4179058467621544e-38"], "3")],
    ids=["beyond float32", "far outside a tiny spread"],
)
def test_a_number_accepted_as_finite_stays_finite_in_the_networks_input(training: list[str], request_cell: str):
    encoding = Encoding.fit(one_column(training), ("x",), "label", {"x": NUMERIC}, frozenset())
    try:
        codes = encoding.codes(one_column([request_cell]))
    except EncodingError:
        return
    assert np.isfinite(encoding.transform(codes)).all()


NUMBERS_COLUMN = Column("size", NUMERIC, fill=2.0)
CATEGORY_COLUMN = Column("class", CATEGORICAL, fill=0.0, categories=("1.5", "3", "b"))


@pytest.mark.parametrize(
    ("column", "value", "code"),
    [
        (NUMBERS_COLUMN, 2.5, 2.5),
        (NUMBERS_COLUMN, 7, 7.0),
        (NUMBERS_COLUMN, " 2.5 ", 2.5),
        (CATEGORY_COLUMN, 3, 1.0),
        (CATEGORY_COLUMN, 3.0, 1.0),
        (CATEGORY_COLUMN, 1.5, 0.0),
        (CATEGORY_COLUMN, " b ", 2.0),
        (CATEGORY_COLUMN, "c", -1.0),
    ],
)
def test_json_values_become_codes(column: Column, value: object, code: float):
    assert column.code(value) == code


@pytest.mark.parametrize("column", [NUMBERS_COLUMN, CATEGORY_COLUMN])
@pytest.mark.parametrize("value", [None, "NA", " "])
def test_a_missing_json_value_is_nan_where_training_had_missing_values(column: Column, value: object):
    assert math.isnan(column.code(value))


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        (Column("size", NUMERIC), None, "missing value"),
        (Column("class", CATEGORICAL, categories=("a",)), None, "missing value"),
        (CATEGORY_COLUMN, True, "not a category"),
        (CATEGORY_COLUMN, ["b"], "not a category"),
        (NUMBERS_COLUMN, True, "not a number"),
        (NUMBERS_COLUMN, {"value": 1}, "not a number"),
        (NUMBERS_COLUMN, "abc", "not a number"),
        (NUMBERS_COLUMN, 10**400, "not a finite number"),
    ],
)
def test_a_json_value_the_column_cannot_take_is_refused_naming_the_column(column: Column, value: object, problem):
    with pytest.raises(EncodingError, match=problem) as raised:
        column.code(value)
    assert raised.value.column == column.name


def test_a_nan_json_value_in_a_categorical_column_is_not_taken_for_an_unknown_category():
    with pytest.raises(EncodingError):
        Column("class", CATEGORICAL, categories=("a",)).code(math.nan)


# Round trips and artifacts of format 1


def fitted_encoding() -> tuple[Encoding, np.ndarray]:
    """An encoding fitted on cells of both kinds with missing values, and those cells."""
    cells = table_cells(("1.5", "red", "7"), ("", "blue", "8"), ("4", "NA", "9"), ("2", "red", "8"))
    kinds, may_miss = infer_columns(cells, ("size", "color", "count"))
    return Encoding.fit(cells, ("size", "color", "count"), "fruit", kinds, may_miss), cells


def test_the_encoding_survives_json_unchanged():
    encoding, cells = fitted_encoding()
    restored = Encoding.from_dict(json.loads(json.dumps(encoding.to_dict())))
    assert restored == encoding
    np.testing.assert_array_equal(restored.transform(restored.codes(cells)), encoding.transform(encoding.codes(cells)))


def test_the_encoding_survives_saving_and_loading(tmp_path: Path):
    encoding, cells = fitted_encoding()
    encoding.save(tmp_path / "encoding.json")
    restored = Encoding.load(tmp_path / "encoding.json")
    assert restored == encoding
    np.testing.assert_array_equal(restored.transform(restored.codes(cells)), encoding.transform(encoding.codes(cells)))


def test_artifact_metadata_of_either_format_gives_its_encoding():
    encoding, _ = fitted_encoding()
    assert Encoding.from_metadata({"format_version": 2, "encoding": encoding.to_dict()}) == encoding


def test_format_1_metadata_reads_as_standardized_numeric_columns():
    metadata = {
        "format_version": 1,
        "scaling": {"feature_names": ["height", "width"], "mean": [1.0, -2.0], "scale": [2.0, 0.5]},
        "label_column": "species",
    }
    encoding = Encoding.from_metadata(metadata)
    assert encoding.feature_names == ("height", "width")
    assert encoding.label_column == "species"
    assert all(column.kind == NUMERIC and column.fill is None for column in encoding.columns)
    np.testing.assert_allclose(encoding.transform(np.array([[3.0, -1.0], [1.0, -2.0]])), [[1.0, 2.0], [0.0, 0.0]])


# check_classification_target


def labelled(labels: list[str]) -> Table:
    return Table("train.csv", ("x", "price"), "price", one_column(["1"] * len(labels)), np.array(labels, dtype=object))


def test_a_continuous_label_column_is_refused():
    with pytest.raises(DataError, match=r"train\.csv: label column 'price' holds 60 distinct numbers.*continuous"):
        check_classification_target(labelled([f"{number * 0.37:.2f}" for number in range(60)]))


@pytest.mark.parametrize(
    "labels", [[f"class {number}" for number in range(60)], [str(number % 10) for number in range(60)]]
)
def test_many_text_classes_or_few_numeric_classes_are_accepted(labels: list[str]):
    check_classification_target(labelled(labels))


# Any table that infer_columns and fit accept encodes to finite one-hot rows


# Thousandths within ±1000: spreads so tiny or numbers so far that float32 overflows are the known bug above.
NUMBER_TEXT = st.one_of(st.integers(-1000, 1000).map(str), st.integers(-(10**6), 10**6).map(lambda n: repr(n / 1000)))
WORD = st.text(alphabet="abcdef", min_size=1, max_size=3)
MISSING = st.sampled_from(sorted(MISSING_MARKERS))
COLUMN_CELLS = st.sampled_from(
    [
        st.one_of(NUMBER_TEXT, NUMBER_TEXT, NUMBER_TEXT, MISSING),
        st.one_of(WORD, WORD, WORD, MISSING),
        st.one_of(NUMBER_TEXT, WORD, MISSING),
    ]
)


@st.composite
def tables(draw: st.DrawFn) -> tuple[np.ndarray, int]:
    """Cells of 1 to 4 columns, each mostly numbers, mostly words or a mix, and how many rows are the training split."""
    rows = draw(st.integers(1, 12))
    columns = [draw(st.lists(draw(COLUMN_CELLS), min_size=rows, max_size=rows)) for _ in range(draw(st.integers(1, 4)))]
    return np.array(columns, dtype=object).T, draw(st.integers(1, rows))


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(tables())
def test_every_accepted_table_encodes_to_finite_rows_with_at_most_one_category_per_column(table):
    cells, training_rows = table
    names = tuple(f"column {index}" for index in range(cells.shape[1]))
    try:
        kinds, may_miss = infer_columns(cells, names)
        encoding = Encoding.fit(cells[:training_rows], names, "label", kinds, may_miss)
    except EncodingError:
        assume(False)
    inputs = encoding.transform(encoding.codes(cells))
    assert inputs.shape == (len(cells), encoding.width)
    assert np.isfinite(inputs).all()
    offset = 0
    for column in encoding.columns:
        if column.kind == CATEGORICAL:
            ones = inputs[:, offset : offset + column.width].sum(axis=1)
            assert set(ones.tolist()) <= {0.0, 1.0}
            # Every training cell is a known category or filled with one.
            assert (ones[:training_rows] == 1.0).all()
        offset += column.width
