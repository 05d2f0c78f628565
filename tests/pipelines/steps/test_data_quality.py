"""Data quality in Model Monitor's files: a baseline's statistics and constraints, and the violations of later data."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipelines.steps import data_quality
from pipelines.steps.data_quality import constraints, drift_report, statistics
from training_code.contract import CONSTRAINTS_FILE, STATISTICS_FILE, VIOLATIONS_FILE

PROJECT_ROOT = Path(__file__).resolve().parents[3]
NAMES = ["age", "income", "city", "score"]
CITIES = ["Berlin", "Lyon", "Oslo", "Porto"]
CITY_SHARES = [0.4, 0.3, 0.2, 0.1]
ROWS = 1000
INCOME_MEAN, INCOME_STD = 50.0, 10.0
INCOME_MISSING_SHARE = 0.05


def draw(
    seed: int, income_shift: float = 0.0, city_shares: list[float] = CITY_SHARES, cities: list[str] = CITIES
) -> list[list[str]]:
    """Rows of the four features: an integer, a number with some cells missing, a category, a number."""
    rng = np.random.default_rng(seed)
    ages = rng.integers(18, 90, ROWS)
    incomes = rng.normal(INCOME_MEAN + income_shift, INCOME_STD, ROWS)
    missing = rng.random(ROWS) < INCOME_MISSING_SHARE
    chosen = rng.choice(cities, ROWS, p=city_shares)
    scores = rng.normal(0, 1, ROWS)
    return [
        [str(age), "" if gap else f"{income:.3f}", city, f"{score:.4f}"]
        for age, income, gap, city, score in zip(ages, incomes, missing, chosen, scores, strict=True)
    ]


def feature(document: dict, name: str) -> dict:
    return next(entry for entry in document["features"] if entry["name"] == name)


def checks(violations: list[dict]) -> list[tuple[str, str]]:
    return sorted((violation["feature_name"], violation["constraint_check_type"]) for violation in violations)


def write_csv(path: Path, rows: list[list[str]], names: list[str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerows([names, *rows] if names else rows)
    return path


@pytest.fixture(scope="module")
def baseline_rows() -> list[list[str]]:
    return draw(seed=1)


@pytest.fixture(scope="module")
def baseline(baseline_rows) -> tuple[dict, dict]:
    stats = statistics(baseline_rows, NAMES)
    return stats, constraints(stats, comparison_threshold=0.1)


# --- The baseline ---------------------------------------------------------------------------------------------------


def test_statistics_hold_the_analyzer_keys_and_the_data_values(baseline_rows, baseline):
    stats, _ = baseline
    incomes = np.array([float(row[1]) for row in baseline_rows if row[1]])

    assert stats["version"] == 0
    assert stats["dataset"] == {"item_count": ROWS}
    assert [(entry["name"], entry["inferred_type"]) for entry in stats["features"]] == [
        ("age", "Integral"),
        ("income", "Fractional"),
        ("city", "String"),
        ("score", "Fractional"),
    ]
    income = feature(stats, "income")["numerical_statistics"]
    assert income["common"] == {"num_present": len(incomes), "num_missing": ROWS - len(incomes)}
    assert 0 < income["common"]["num_missing"] < ROWS
    assert income["mean"] == pytest.approx(incomes.mean())
    assert income["sum"] == pytest.approx(incomes.sum())
    assert income["std_dev"] == pytest.approx(incomes.std())
    assert (income["min"], income["max"]) == (incomes.min(), incomes.max())
    kll = income["distribution"]["kll"]
    assert len(kll["buckets"]) == 10
    assert sum(bucket["count"] for bucket in kll["buckets"]) == len(incomes)
    assert kll["buckets"][0]["lower_bound"] == incomes.min() and kll["buckets"][-1]["upper_bound"] == incomes.max()
    assert kll["sketch"]["parameters"] == {"c": 0.64, "k": 2048.0}
    assert kll["sketch"]["data"] == [sorted(incomes.tolist())]
    city = feature(stats, "city")["string_statistics"]
    assert city["common"] == {"num_present": ROWS, "num_missing": 0}
    assert city["distinct_count"] == len(CITIES)
    assert sum(bucket["count"] for bucket in city["distribution"]["categorical"]["buckets"]) == ROWS
    assert json.loads(json.dumps(stats)) == statistics(baseline_rows, NAMES)


def test_the_sketch_of_many_values_is_a_deterministic_sample_that_keeps_the_extremes():
    rows = [[f"{value:.6f}"] for value in np.random.default_rng(0).normal(size=5000)]

    def sketch() -> list[list[float]]:
        return statistics(rows, ["x"])["features"][0]["numerical_statistics"]["distribution"]["kll"]["sketch"]["data"]

    sample = sketch()

    values = sorted(float(row[0]) for row in rows)
    assert len(sample) == 1 and len(sample[0]) == 2048
    assert sample[0] == sorted(sample[0]) and (sample[0][0], sample[0][-1]) == (values[0], values[-1])
    assert sample == sketch()


def test_constraints_suggest_completeness_signs_domains_and_the_monitoring_config(baseline):
    stats, limits = baseline
    present = feature(stats, "income")["numerical_statistics"]["common"]["num_present"]

    assert limits["version"] == 0
    assert feature(limits, "income")["completeness"] == present / ROWS
    assert feature(limits, "age") == {
        "name": "age",
        "inferred_type": "Integral",
        "completeness": 1.0,
        "num_constraints": {"is_non_negative": True},
    }
    assert feature(limits, "score")["num_constraints"] == {"is_non_negative": False}
    assert feature(limits, "city")["string_constraints"] == {"domains": sorted(CITIES)}
    assert limits["monitoring_config"]["distribution_constraints"] == {
        "perform_comparison": "Enabled",
        "comparison_threshold": 0.1,
        "comparison_method": "Robust",
        "categorical_comparison_threshold": 0.1,
        "categorical_drift_method": "LInfinity",
    }
    assert constraints(stats, comparison_threshold=0.3)["monitoring_config"]["distribution_constraints"][
        "comparison_threshold"
    ] == pytest.approx(0.3)


def test_a_text_column_of_mostly_unique_values_gets_no_domain():
    rows = [[f"id-{index}"] for index in range(100)]

    assert "string_constraints" not in constraints(statistics(rows, ["id"]))["features"][0]


# --- Violations -----------------------------------------------------------------------------------------------------


def test_a_second_draw_of_the_same_distribution_has_no_violations(baseline):
    report = drift_report(*baseline, draw(seed=2), NAMES)

    assert report.violations == []
    assert [entry.status for entry in report.features] == ["ok"] * len(NAMES)
    assert all(entry.distance < entry.threshold for entry in report.features)


def test_a_numeric_feature_shifted_by_one_standard_deviation_drifts(baseline):
    report = drift_report(*baseline, draw(seed=2, income_shift=INCOME_STD), NAMES)

    assert checks(report.violations) == [("income", "baseline_drift_check")]
    assert report.violations[0]["description"].startswith("Baseline drift distance: 0.")
    assert "threshold: 0.1" in report.violations[0]["description"]
    distances = {entry.name: entry.distance for entry in report.features}
    assert distances.pop("income") > 0.1
    assert all(distance < 0.1 for distance in distances.values())
    assert report.statistics["features"][1]["numerical_statistics"]["mean"] > INCOME_MEAN + 0.5 * INCOME_STD


def test_shifted_category_shares_drift(baseline):
    report = drift_report(*baseline, draw(seed=2, city_shares=CITY_SHARES[::-1]), NAMES)

    assert checks(report.violations) == [("city", "baseline_drift_check")]
    # The largest share difference: Berlin's 0.4 against 0.1.
    assert next(entry for entry in report.features if entry.name == "city").distance == pytest.approx(0.3, abs=0.05)


def test_values_outside_the_domain_violate_it(baseline):
    rows = draw(seed=2, cities=["Berlin", "Lyon", "Rome", "Porto"])

    report = drift_report(*baseline, rows, NAMES)

    assert ("city", "categorical_values_check") in checks(report.violations)
    assert (
        "'Rome'"
        in next(v for v in report.violations if v["constraint_check_type"] == "categorical_values_check")["description"]
    )


def test_text_in_a_numeric_column_fails_the_data_type_check(baseline):
    rows = draw(seed=2)
    for row in rows[::4]:
        row[0] = "unknown"

    report = drift_report(*baseline, rows, NAMES)

    assert checks(report.violations) == [("age", "data_type_check")]
    description = report.violations[0]["description"]
    assert all(part in description for part in ("Integral", "75.0%", "90.0%", "'unknown'"))


def test_fewer_missing_cells_than_the_baseline_allows_fail_the_completeness_check(baseline):
    rows = draw(seed=2)
    for row in rows[::5]:
        row[1] = ""

    assert ("income", "completeness_check") in checks(drift_report(*baseline, rows, NAMES).violations)


def test_unnamed_columns_are_compared_by_position_and_a_missing_one_is_reported(baseline_rows):
    names = [f"_c{index}" for index in range(len(NAMES))]
    stats = statistics(baseline_rows, names)

    report = drift_report(stats, constraints(stats), [row[:-1] for row in draw(seed=2)], names[:-1])

    assert checks(report.violations) == [("_c3", "missing_column_check")]
    assert report.features[-1].distance is None and report.features[-1].status == "missing_column_check"


def test_a_column_new_to_the_current_data_is_an_extra_column(baseline):
    report = drift_report(*baseline, [[*row, "1"] for row in draw(seed=2)], [*NAMES, "extra"])

    assert checks(report.violations) == [("extra", "extra_column_check")]


# --- Command line ---------------------------------------------------------------------------------------------------


def test_baseline_then_analyze_writes_the_analyzer_files(invoke, baseline_rows, tmp_path):
    # Two files with a header each, as a processing channel may hold.
    write_csv(tmp_path / "train" / "a.csv", baseline_rows[:400], NAMES)
    write_csv(tmp_path / "train" / "b.csv", baseline_rows[400:], NAMES)
    write_csv(tmp_path / "captured" / "current.csv", draw(seed=2, income_shift=INCOME_STD), NAMES)

    result = invoke(
        lambda arguments: data_quality.main(["baseline", "--header", *arguments]),
        input=tmp_path / "train",
        output=tmp_path / "baseline",
    )
    analyzed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.steps.data_quality",
            "analyze",
            f"--baseline={tmp_path / 'baseline'}",
            f"--input={tmp_path / 'captured'}",
            f"--output={tmp_path / 'report'}",
            "--header",
            f"--failure-file={tmp_path / 'failure'}",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "baseline" / STATISTICS_FILE).read_text())
    assert written == statistics(baseline_rows, NAMES)
    assert json.loads((tmp_path / "baseline" / CONSTRAINTS_FILE).read_text()) == constraints(written)
    assert analyzed.returncode == 0, analyzed.stderr
    assert analyzed.stdout.strip() == f"{ROWS} rows, 4 features: 1 violation: income (baseline_drift_check)"
    violations = json.loads((tmp_path / "report" / VIOLATIONS_FILE).read_text())["violations"]
    assert checks(violations) == [("income", "baseline_drift_check")]
    assert json.loads((tmp_path / "report" / STATISTICS_FILE).read_text())["dataset"] == {"item_count": ROWS}
    assert not (tmp_path / "failure").exists()


def test_a_ragged_row_fails_naming_the_file_and_line(failure_reason, tmp_path):
    path = write_csv(tmp_path / "data.csv", [["1", "a"], ["2", "b"], ["3"]])

    reason = failure_reason(
        lambda arguments: data_quality.main(["baseline", *arguments]), input=path, output=tmp_path / "out"
    )

    assert reason == f"DataError: {path} line 3: expected 2 fields, found 1"


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        (
            {STATISTICS_FILE: '{"version": 0, "features": []}'},
            f"{CONSTRAINTS_FILE}: cannot read the baseline (No such file or directory)",
        ),
        (
            {STATISTICS_FILE: '{"features": [{"name": "_c0"}]}', CONSTRAINTS_FILE: '{"features": []}'},
            f"{STATISTICS_FILE} feature '_c0': no inferred_type, so not a data-quality baseline",
        ),
        ({STATISTICS_FILE: "{", CONSTRAINTS_FILE: "{}"}, f"{STATISTICS_FILE}: not a JSON document"),
    ],
)
def test_an_unreadable_baseline_fails_naming_the_file(failure_reason, tmp_path, files, reason):
    (tmp_path / "baseline").mkdir()
    for name, text in files.items():
        (tmp_path / "baseline" / name).write_text(text)

    failure = failure_reason(
        lambda arguments: data_quality.main(["analyze", *arguments]),
        baseline=tmp_path / "baseline",
        input=write_csv(tmp_path / "data.csv", [["1"]]),
        output=tmp_path / "out",
    )

    assert failure.startswith(f"DataError: {tmp_path / 'baseline' / reason}"), failure


def test_an_empty_input_fails(failure_reason, tmp_path):
    (tmp_path / "empty.csv").write_text("\n")

    reason = failure_reason(
        lambda arguments: data_quality.main(["baseline", *arguments]),
        input=tmp_path / "empty.csv",
        output=tmp_path / "out",
    )

    assert reason == f"DataError: {tmp_path / 'empty.csv'}: no data rows"
