"""Data quality in the files of SageMaker Model Monitor's built-in analyzer: baseline statistics and constraints of
tabular CSV features, and the violations of a later dataset against them.

    python -m pipelines.steps.data_quality baseline [--input DIR_OR_FILE] [--output DIR] [--header]
        [--comparison-threshold 0.1]
    python -m pipelines.steps.data_quality analyze [--baseline DIR] [--input DIR_OR_FILE] [--output DIR] [--header]

`baseline` writes statistics.json and constraints.json, the files a scheduled data-quality monitor takes as its
baseline; `analyze` writes the current statistics.json and constraint_violations.json, and exits 0 whether or not
there are violations. The input is a CSV file or a directory of them. Columns are named as the analyzer names those
of captured CSV without a header (_c0, _c1, ...); with --header the first line of each file names them.

The rules, where AWS documents none of its own:
* Types: Integral when every present value is an integer literal, Fractional when every one is a decimal number,
  String otherwise. Missing cells are the project's missing markers ("", NA, null, ...).
* Numbers: 10 equal-width buckets from min to max (the last one closed); the sketch is one sorted sample of at most
  2048 evenly spaced order statistics, so the same data always gives the same file.
* Domains: a text column gets one when at most 10% of its distinct values occur once (Deequ's rule for suggesting a
  categorical range), so free text and identifiers get none.
* data_type_check: more than datatype_check_threshold of a numeric column's present values are not of its type.
* completeness_check: the present share is below the baseline's less 1.96 standard errors of a share of that size
  over this many rows (the built-in monitor compares without that allowance; a baseline with no missing cell allows
  none either way).
* baseline_drift_check: numbers, the Kolmogorov-Smirnov distance between the baseline's sketch and the current
  values, over comparison_threshold; text, the L-infinity distance between the category shares, over
  categorical_comparison_threshold.
* categorical_values_check: more than domain_content_threshold of a column's present values outside its domain.
* missing_column_check and extra_column_check: one violation per baseline column absent, per new column present.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training_code.contract import (
    CONSTRAINTS_FILE,
    DEFAULT_DRIFT_THRESHOLD,
    PROCESSING_FAILURE_FILE,
    PROCESSING_ROOT,
    STATISTICS_FILE,
    VIOLATIONS_FILE,
)
from training_code.data import DataError, read_csv_lines
from training_code.failure import ArgumentParser, run_script
from training_code.features import MISSING_MARKERS

INTEGRAL, FRACTIONAL, STRING = "Integral", "Fractional", "String"
NUMERIC_TYPES = (INTEGRAL, FRACTIONAL)

DATA_TYPE_CHECK = "data_type_check"
COMPLETENESS_CHECK = "completeness_check"
BASELINE_DRIFT_CHECK = "baseline_drift_check"
MISSING_COLUMN_CHECK = "missing_column_check"
EXTRA_COLUMN_CHECK = "extra_column_check"
CATEGORICAL_VALUES_CHECK = "categorical_values_check"

# The analyzer's histograms have 10 buckets, and its KLL sketches these parameters.
HISTOGRAM_BUCKETS = 10
SKETCH_SIZE = 2048
SKETCH_PARAMETERS = {"c": 0.64, "k": float(SKETCH_SIZE)}
# A text column gets a domain when at most this share of its distinct values occur once (Deequ's rule).
MAX_SINGLETON_SHARE = 0.1
# A two-sided 95% interval: the completeness check allows this many standard errors of sampling noise.
COMPLETENESS_STANDARD_ERRORS = 1.96

# Integer and decimal literals, as the analyzer's type inference reads them; no inf, nan or digit separators.
INTEGRAL_LITERAL = re.compile(r"[+-]?\d+")
FRACTIONAL_LITERAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
# How many offending values a violation's description quotes.
QUOTED_VALUES = 3


def statistics(rows: list[list[str]], names: list[str]) -> dict:
    """statistics.json of the rows (cells as text, one list per row) whose columns `names` names."""
    columns = _columns(rows, names)
    return {
        "version": 0,
        "dataset": {"item_count": len(rows)},
        "features": [_feature_statistics(name, cells) for name, cells in zip(names, columns, strict=True)],
    }


def constraints(stats: dict, comparison_threshold: float = DEFAULT_DRIFT_THRESHOLD) -> dict:
    """constraints.json suggested by a baseline's statistics; `comparison_threshold` bounds numeric drift."""
    if not 0 <= comparison_threshold <= 1:
        raise ValueError(f"comparison threshold {comparison_threshold} must be in [0, 1], as the distances are")
    features = []
    for feature in stats["features"]:
        numeric = feature["inferred_type"] in NUMERIC_TYPES
        section = feature["numerical_statistics" if numeric else "string_statistics"]
        common = section["common"]
        limits = {
            "name": feature["name"],
            "inferred_type": feature["inferred_type"],
            "completeness": common["num_present"] / (common["num_present"] + common["num_missing"]),
        }
        if numeric:
            limits["num_constraints"] = {"is_non_negative": section["min"] >= 0}
        elif domain := _suggested_domain(section["distribution"]["categorical"]["buckets"]):
            limits["string_constraints"] = {"domains": domain}
        features.append(limits)
    return {"version": 0, "features": features, "monitoring_config": _monitoring_config(comparison_threshold)}


@dataclass(frozen=True)
class FeatureDrift:
    """One feature of a drift report: `distance` is None where there was nothing to compare (a column missing on
    either side, or no present value)."""

    name: str
    inferred_type: str
    distance: float | None
    threshold: float
    failed_checks: tuple[str, ...]

    @property
    def status(self) -> str:
        return ", ".join(self.failed_checks) or "ok"


@dataclass(frozen=True)
class DriftReport:
    """The features of the baseline and then the columns new to the current data; `violations` as in
    constraint_violations.json; `statistics` those of the current data."""

    features: tuple[FeatureDrift, ...]
    violations: list[dict]
    statistics: dict


def drift_report(
    baseline_stats: dict, baseline_constraints: dict, rows: list[list[str]], names: list[str]
) -> DriftReport:
    """Check the rows against a baseline (its statistics and constraints, as `load_baseline` returns them)."""
    current = statistics(rows, names)
    columns = dict(zip(names, _columns(rows, names), strict=True))
    config = _effective_monitoring_config(baseline_constraints)
    limits_by_name = {limits["name"]: limits for limits in baseline_constraints["features"]}
    known = [feature["name"] for feature in baseline_stats["features"]]
    counts = f"the current data has {len(names)} columns, the baseline {len(known)}"
    measured, violations = [], []
    for feature in baseline_stats["features"]:
        name = feature["name"]
        if name in columns:
            distance, found = _compare(feature, limits_by_name.get(name, {}), columns[name], config)
            violations += found
        else:
            distance = None
            violations.append(
                _violation(name, MISSING_COLUMN_CHECK, f"Column {name!r} of the baseline is missing: {counts}.")
            )
        measured.append((name, feature["inferred_type"], distance))
    for feature in current["features"]:
        if feature["name"] not in known:
            measured.append((feature["name"], feature["inferred_type"], None))
            violations.append(
                _violation(
                    feature["name"], EXTRA_COLUMN_CHECK, f"Column {feature['name']!r} is not in the baseline: {counts}."
                )
            )
    if config["evaluate_constraints"] != "Enabled":
        violations = [
            violation for violation in violations if violation["constraint_check_type"] == BASELINE_DRIFT_CHECK
        ]
    features = tuple(
        FeatureDrift(
            name,
            inferred_type,
            distance,
            _drift_threshold(inferred_type, config),
            tuple(violation["constraint_check_type"] for violation in violations if violation["feature_name"] == name),
        )
        for name, inferred_type, distance in measured
    )
    return DriftReport(features, violations, current)


def ks_distance(baseline_sample: Sequence[float], values: Sequence[float]) -> float:
    """The largest difference between the two samples' empirical distribution functions, in [0, 1]."""
    baseline_sorted, values_sorted = np.sort(baseline_sample), np.sort(values)
    points = np.concatenate([baseline_sorted, values_sorted])
    baseline_cdf = np.searchsorted(baseline_sorted, points, side="right") / len(baseline_sorted)
    values_cdf = np.searchsorted(values_sorted, points, side="right") / len(values_sorted)
    return float(np.max(np.abs(baseline_cdf - values_cdf)))


def linf_distance(baseline_counts: Mapping[str, int], current_counts: Mapping[str, int]) -> float:
    """The largest difference between the two category shares, over the categories of either, in [0, 1]."""
    baseline_total, current_total = sum(baseline_counts.values()), sum(current_counts.values())
    return max(
        abs(baseline_counts.get(value, 0) / baseline_total - current_counts.get(value, 0) / current_total)
        for value in baseline_counts.keys() | current_counts.keys()
    )


# --- Statistics -----------------------------------------------------------------------------------------------------


def _columns(rows: list[list[str]], names: list[str]) -> list[list[str]]:
    """The stripped cells column by column; rows of another width than `names` are a DataError naming the row."""
    if not rows:
        raise DataError("no data rows")
    for number, row in enumerate(rows, start=1):
        if len(row) != len(names):
            raise DataError(f"row {number}: expected {len(names)} fields ({', '.join(names)}), found {len(row)}")
    return [[cell.strip() for cell in column] for column in zip(*rows, strict=True)]


def _present(cells: list[str]) -> list[str]:
    return [cell for cell in cells if cell not in MISSING_MARKERS]


def _number(cell: str, inferred_type: str) -> float | None:
    """The cell's value if it is a finite literal of the numeric type, else None."""
    literal = INTEGRAL_LITERAL if inferred_type == INTEGRAL else FRACTIONAL_LITERAL
    if not literal.fullmatch(cell):
        return None
    value = float(cell)
    return value if math.isfinite(value) else None


def _inferred_type(present: list[str]) -> str:
    # A column with no present value has nothing numeric about it: String, with empty statistics.
    for inferred_type in NUMERIC_TYPES:
        if present and all(_number(cell, inferred_type) is not None for cell in present):
            return inferred_type
    return STRING


def _feature_statistics(name: str, cells: list[str]) -> dict:
    present = _present(cells)
    common = {"num_present": len(present), "num_missing": len(cells) - len(present)}
    inferred_type = _inferred_type(present)
    if inferred_type == STRING:
        return {"name": name, "inferred_type": STRING, "string_statistics": _string_statistics(present, common)}
    values = np.sort([_number(cell, inferred_type) for cell in present])
    return {"name": name, "inferred_type": inferred_type, "numerical_statistics": _numerical_statistics(values, common)}


def _numerical_statistics(ordered: np.ndarray, common: dict) -> dict:
    edges = np.linspace(ordered[0], ordered[-1], HISTOGRAM_BUCKETS + 1)
    # Bucket i holds [edges[i], edges[i+1]); the last also its upper edge, the maximum.
    counts = np.bincount(np.searchsorted(edges[1:-1], ordered, side="right"), minlength=HISTOGRAM_BUCKETS)
    buckets = [
        {"lower_bound": float(lower), "upper_bound": float(upper), "count": int(count)}
        for lower, upper, count in zip(edges[:-1], edges[1:], counts, strict=True)
    ]
    return {
        "common": common,
        "mean": float(ordered.mean()),
        "sum": float(ordered.sum()),
        "std_dev": float(ordered.std()),
        "min": float(ordered[0]),
        "max": float(ordered[-1]),
        "distribution": {
            "kll": {
                "buckets": buckets,
                "sketch": {"parameters": SKETCH_PARAMETERS, "data": [_sketch_sample(ordered).tolist()]},
            }
        },
    }


def _sketch_sample(ordered: np.ndarray) -> np.ndarray:
    """All values when they fit the sketch, else evenly spaced order statistics (the minimum and maximum included):
    the same empirical distribution, give or take 1/SKETCH_SIZE, and the same sample for the same data."""
    if len(ordered) <= SKETCH_SIZE:
        return ordered
    return ordered[np.round(np.linspace(0, len(ordered) - 1, SKETCH_SIZE)).astype(int)]


def _string_statistics(present: list[str], common: dict) -> dict:
    counts = Counter(present)
    # Most frequent first, ties by value: the same data always gives the same file.
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return {
        "common": common,
        "distinct_count": len(counts),
        "distribution": {"categorical": {"buckets": [{"value": value, "count": count} for value, count in ordered]}},
    }


# --- Constraints ----------------------------------------------------------------------------------------------------


def _suggested_domain(buckets: list[dict]) -> list[str]:
    """The values of a categorical column; none (empty) for one where many values occur once."""
    singletons = sum(bucket["count"] == 1 for bucket in buckets)
    if not buckets or singletons > MAX_SINGLETON_SHARE * len(buckets):
        return []
    return sorted(bucket["value"] for bucket in buckets)


def _monitoring_config(comparison_threshold: float) -> dict:
    return {
        "evaluate_constraints": "Enabled",
        "emit_metrics": "Enabled",
        "datatype_check_threshold": 0.1,
        "domain_content_threshold": 0.1,
        "distribution_constraints": {
            "perform_comparison": "Enabled",
            "comparison_threshold": comparison_threshold,
            "comparison_method": "Robust",
            "categorical_comparison_threshold": 0.1,
            "categorical_drift_method": "LInfinity",
        },
    }


def _effective_monitoring_config(baseline_constraints: dict) -> dict:
    """The baseline's monitoring_config over the defaults, so that a hand-written one may leave settings out."""
    defaults = _monitoring_config(DEFAULT_DRIFT_THRESHOLD)
    given = baseline_constraints.get("monitoring_config", {})
    distribution = {**defaults["distribution_constraints"], **given.get("distribution_constraints", {})}
    return {**defaults, **given, "distribution_constraints": distribution}


# --- Checks ---------------------------------------------------------------------------------------------------------


def _drift_threshold(inferred_type: str, config: dict) -> float:
    distribution = config["distribution_constraints"]
    key = "comparison_threshold" if inferred_type in NUMERIC_TYPES else "categorical_comparison_threshold"
    return distribution[key]


def _violation(feature_name: str, check: str, description: str) -> dict:
    return {"feature_name": feature_name, "constraint_check_type": check, "description": description}


def _quoted(values: list[str]) -> str:
    shown = ", ".join(map(repr, values[:QUOTED_VALUES]))
    return shown + (f" and {len(values) - QUOTED_VALUES} more" if len(values) > QUOTED_VALUES else "")


def _compare(feature: dict, limits: dict, cells: list[str], config: dict) -> tuple[float | None, list[dict]]:
    """One baseline feature against the current column: its drift distance (None with nothing to compare) and its
    violations."""
    name, inferred_type = feature["name"], feature["inferred_type"]
    present = _present(cells)
    violations = []
    if "completeness" in limits:
        violations += _completeness_violations(name, limits["completeness"], len(present), len(cells))
    if inferred_type in NUMERIC_TYPES:
        numbers = [_number(cell, inferred_type) for cell in present]
        violations += _data_type_violations(name, inferred_type, present, numbers, config["datatype_check_threshold"])
        levels = feature["numerical_statistics"]["distribution"]["kll"]["sketch"]["data"]
        sample = [value for level in levels for value in level]
        values = [number for number in numbers if number is not None]
        distance = ks_distance(sample, values) if sample and values else None
    else:
        domain = limits.get("string_constraints", {}).get("domains")
        if domain:
            violations += _domain_violations(name, domain, present, config["domain_content_threshold"])
        buckets = feature["string_statistics"]["distribution"]["categorical"]["buckets"]
        baseline_counts = {bucket["value"]: bucket["count"] for bucket in buckets}
        distance = linf_distance(baseline_counts, Counter(present)) if baseline_counts and present else None
    threshold = _drift_threshold(inferred_type, config)
    comparing = config["distribution_constraints"]["perform_comparison"] == "Enabled"
    if comparing and distance is not None and distance > threshold:
        description = f"Baseline drift distance: {distance:.4g} exceeds threshold: {threshold:g}"
        violations.append(_violation(name, BASELINE_DRIFT_CHECK, description))
    return distance, violations


def _completeness_violations(name: str, expected: float, present: int, total: int) -> list[dict]:
    observed = present / total
    allowance = COMPLETENESS_STANDARD_ERRORS * math.sqrt(expected * (1 - expected) / total)
    if observed >= expected - allowance:
        return []
    return [
        _violation(
            name,
            COMPLETENESS_CHECK,
            f"Data completeness requirement is not met. Expected completeness: {expected:.1%} (less {allowance:.1%} "
            f"for sampling). Observed: only {observed:.1%} of {total} values are present.",
        )
    ]


def _data_type_violations(
    name: str, inferred_type: str, present: list[str], numbers: list[float | None], threshold: float
) -> list[dict]:
    mismatched = [cell for cell, number in zip(present, numbers, strict=True) if number is None]
    if not present or len(mismatched) / len(present) <= threshold:
        return []
    matched = 1 - len(mismatched) / len(present)
    return [
        _violation(
            name,
            DATA_TYPE_CHECK,
            f"Data type match requirement is not met. Expected data type: {inferred_type}, expected match: "
            f"{1 - threshold:.1%}. Observed: only {matched:.1%} of {len(present)} present values are {inferred_type} "
            f"(not: {_quoted(sorted(set(mismatched)))}).",
        )
    ]


def _domain_violations(name: str, domain: list[str], present: list[str], threshold: float) -> list[dict]:
    known = set(domain)
    outside = [cell for cell in present if cell not in known]
    if not present or len(outside) / len(present) <= threshold:
        return []
    return [
        _violation(
            name,
            CATEGORICAL_VALUES_CHECK,
            f"Data domain requirement is not met: {len(outside) / len(present):.1%} of {len(present)} present values "
            f"are outside the baseline's {len(domain)} values, more than the threshold {threshold:.1%} "
            f"(new: {_quoted(sorted(set(outside)))}).",
        )
    ]


# --- Files ----------------------------------------------------------------------------------------------------------


def read_csv(path: Path, header: bool) -> tuple[list[list[str]], list[str]]:
    """The rows and column names of a CSV file or of every .csv file of a directory (in name order); blank lines are
    skipped. Errors name the file and line."""
    if path.is_dir():
        files = sorted(path.glob("*.csv"))
        if not files:
            raise DataError(f"{path}: no .csv files")
    elif path.is_file():
        files = [path]
    else:
        raise DataError(f"{path}: no such file or directory")
    rows: list[list[str]] = []
    names: list[str] | None = None
    for file in files:
        lines = read_csv_lines(file)
        if header:
            if not lines:
                raise DataError(f"{file}: empty file; --header expects a first line of column names")
            file_names = [name.strip() for name in lines.pop(0)[1]]
            duplicated = sorted({name for name in file_names if file_names.count(name) > 1})
            if duplicated:
                raise DataError(f"{file}: columns {duplicated} appear more than once in the header")
            if names is not None and file_names != names:
                raise DataError(f"{file}: columns {file_names} differ from {files[0]}'s {names}")
            names = file_names
        elif names is None and lines:
            names = [f"_c{index}" for index in range(len(lines[0][1]))]
        for number, row in lines:
            if len(row) != len(names):
                raise DataError(f"{file} line {number}: expected {len(names)} fields, found {len(row)}")
            rows.append(row)
    if not rows:
        raise DataError(f"{path}: no data rows")
    return rows, names


def load_baseline(directory: Path) -> tuple[dict, dict]:
    """The statistics and constraints of a baseline directory; errors name the file and what it lacks."""
    stats, limits = (_read_json(directory / name) for name in (STATISTICS_FILE, CONSTRAINTS_FILE))
    for feature in _listed(stats, "features", directory / STATISTICS_FILE):
        source = f"{directory / STATISTICS_FILE} feature {feature.get('name')!r}"
        _required(feature, ("name",), source)
        inferred_type = _required(feature, ("inferred_type",), source)
        if inferred_type in NUMERIC_TYPES:
            _required(feature, ("numerical_statistics", "distribution", "kll", "sketch", "data"), source)
        elif inferred_type == STRING:
            _required(feature, ("string_statistics", "distribution", "categorical", "buckets"), source)
        else:
            raise DataError(f"{source}: inferred_type {inferred_type!r} is none of {INTEGRAL}, {FRACTIONAL}, {STRING}")
    for feature in _listed(limits, "features", directory / CONSTRAINTS_FILE):
        _required(feature, ("name",), f"{directory / CONSTRAINTS_FILE} feature")
    return stats, limits


def _read_json(path: Path) -> dict:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise DataError(f"{path}: cannot read the baseline ({error.strerror})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{path}: not a JSON document ({error})") from None
    if not isinstance(document, dict):
        raise DataError(f"{path}: expected a JSON object, found {type(document).__name__}")
    return document


def _required(document: dict, keys: tuple[str, ...], source: str) -> object:
    value = document
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            raise DataError(f"{source}: no {'.'.join(keys)}, so not a data-quality baseline")
        value = value[key]
    return value


def _listed(document: dict, key: str, source: Path) -> list[dict]:
    items = _required(document, (key,), str(source))
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise DataError(f"{source}: {key} must be a list of objects")
    return items


def write_json(path: Path, document: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1, allow_nan=False) + "\n", encoding="utf-8")


# --- Command line ---------------------------------------------------------------------------------------------------


def write_baseline(rows: list[list[str]], names: list[str], output_dir: Path, comparison_threshold: float) -> dict:
    """Write the statistics and constraints of the rows; return the statistics."""
    stats = statistics(rows, names)
    write_json(output_dir / STATISTICS_FILE, stats)
    write_json(output_dir / CONSTRAINTS_FILE, constraints(stats, comparison_threshold))
    return stats


def baseline(input_path: Path, output_dir: Path, header: bool, comparison_threshold: float) -> dict:
    """Write the baseline of the input's rows; return its statistics."""
    rows, names = read_csv(input_path, header)
    return write_baseline(rows, names, output_dir, comparison_threshold)


def analyze(baseline_dir: Path, input_path: Path, output_dir: Path, header: bool) -> DriftReport:
    """Check the input's rows against a baseline; write their statistics and the violations."""
    baseline_stats, baseline_constraints = load_baseline(baseline_dir)
    rows, names = read_csv(input_path, header)
    report = drift_report(baseline_stats, baseline_constraints, rows, names)
    write_json(output_dir / STATISTICS_FILE, report.statistics)
    write_json(output_dir / VIOLATIONS_FILE, {"violations": report.violations})
    return report


def summary(report: DriftReport) -> str:
    """One line: how much was checked, and which features failed which checks."""
    checked = f"{report.statistics['dataset']['item_count']} rows, {len(report.features)} features"
    failed = [f"{feature.name} ({feature.status})" for feature in report.features if feature.failed_checks]
    if not failed:
        return f"{checked}: no violations"
    count = len(report.violations)
    return f"{checked}: {count} violation{'' if count == 1 else 's'}: {'; '.join(failed)}"


def main(argv: list[str] | None = None) -> None:
    run_script(_run, argv, PROCESSING_FAILURE_FILE)


def _run(argv: list[str]) -> None:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common = ArgumentParser(add_help=False)
    common.add_argument("--input", type=Path, default=PROCESSING_ROOT / "input", help="a CSV file or a directory")
    common.add_argument("--output", type=Path, default=PROCESSING_ROOT / "output", help="where the files go")
    common.add_argument("--header", action="store_true", help="the first line of each file names the columns")
    common.add_argument("--failure-file", type=Path, default=PROCESSING_FAILURE_FILE)
    commands = parser.add_subparsers(dest="command", required=True)
    baseline_command = commands.add_parser("baseline", parents=[common], help="statistics and constraints")
    baseline_command.add_argument("--comparison-threshold", type=float, default=DEFAULT_DRIFT_THRESHOLD)
    analyze_command = commands.add_parser("analyze", parents=[common], help="statistics and violations")
    analyze_command.add_argument("--baseline", type=Path, default=PROCESSING_ROOT / "baseline")
    arguments = parser.parse_args(argv)
    if arguments.command == "baseline":
        stats = baseline(arguments.input, arguments.output, arguments.header, arguments.comparison_threshold)
        print(
            f"baseline of {stats['dataset']['item_count']} rows, {len(stats['features'])} features: "
            f"{arguments.output / STATISTICS_FILE}, {arguments.output / CONSTRAINTS_FILE}"
        )
    else:
        print(summary(analyze(arguments.baseline, arguments.input, arguments.output, arguments.header)))


if __name__ == "__main__":
    main()
