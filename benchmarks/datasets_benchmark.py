"""Bring your own data: real tables through the whole local loop, as a user types it.

    .venv/bin/python benchmarks/datasets_benchmark.py [--only NAME ...] [--stage dev]

For each dataset (scikit-learn's bundled ones, no download, and generated ones) it writes the CSV file a user would
have, runs `mlops local loop --data DIR --label-column NAME` against a fresh embedded AWS, and reports the test
accuracy that Evaluate registered, whether the stage's accuracy gate passed, the best trial's hyperparameters and the
wall time. Writes benchmarks/results/datasets.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_iris, load_wine, make_classification

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from pipelines import spec  # noqa: E402
from pipelines.local.layout import LOCAL_DIR_VARIABLE  # noqa: E402
from pipelines.sample_data import PEOPLE_LABEL, write_digits_csv, write_people_csv  # noqa: E402
from training_code.contract import ACCURACY_JSON_PATH  # noqa: E402

RESULTS = PROJECT_ROOT / "benchmarks" / "results" / "datasets.json"


@dataclass(frozen=True)
class Dataset:
    name: str
    label_column: str
    write: Callable[[Path], None]
    description: str


def write_table(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        writer.writerows(rows)


def sklearn_table(loader: Callable, label_column: str, text_labels: bool) -> Callable[[Path], None]:
    """A bundled dataset as its CSV: feature columns, then the label column (class names, or their numbers)."""

    def write(path: Path) -> None:
        bunch = loader()
        labels = [bunch.target_names[target] for target in bunch.target] if text_labels else bunch.target.tolist()
        names = [str(name).replace(" ", "_") for name in bunch.feature_names]
        rows = [[*row, label] for row, label in zip(bunch.data.tolist(), labels, strict=True)]
        write_table(path, [*names, label_column], rows)

    return write


def wide_table(path: Path) -> None:
    """200 features x 20,000 rows, 4 classes, 30 informative features: a 12 MB CSV, a test split over 6 MB."""
    features, labels = make_classification(
        n_samples=20_000, n_features=200, n_informative=30, n_redundant=20, n_classes=4, random_state=0
    )
    write_table(
        path,
        [*(f"f{index}" for index in range(200)), "class"],
        [[*np.round(row, 5).tolist(), int(label)] for row, label in zip(features, labels, strict=True)],
    )


DATASETS = (
    Dataset(
        "breast_cancer",
        "diagnosis",
        sklearn_table(load_breast_cancer, "diagnosis", text_labels=True),
        "569 rows, 30 numeric features, binary (malignant/benign)",
    ),
    Dataset("wine", "cultivar", sklearn_table(load_wine, "cultivar", False), "178 rows, 13 features, 3 classes"),
    Dataset("iris", "species", sklearn_table(load_iris, "species", True), "150 rows, 4 features, 3 string classes"),
    Dataset("digits", "label", lambda path: write_digits_csv(path), "1,797 rows (+40 duplicates), 64 features"),
    Dataset(
        "people",
        PEOPLE_LABEL,
        lambda path: write_people_csv(path, rows=2000),
        "2,000 rows; a text column, missing cells, the label in the middle",
    ),
    Dataset("wide", "class", wide_table, "20,000 rows x 200 features, 4 classes"),
)


def run_loop(dataset: Dataset, workdir: Path, stage: str) -> dict:
    data = workdir / "data"
    data.mkdir(parents=True)
    dataset.write(data / f"{dataset.name}.csv")
    local_dir = workdir / "local"
    command = [
        sys.executable, "-m", "pipelines.cli", "local", "loop", "--stage", stage,
        "--data", str(data), "--label-column", dataset.label_column,
    ]  # fmt: skip
    started = time.perf_counter()
    completed = subprocess.run(
        command, env={**os.environ, LOCAL_DIR_VARIABLE: str(local_dir)}, capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - started
    records = list(local_dir.glob("runs/*/run.json"))
    record = json.loads(records[0].read_text()) if records else {}
    evaluation = record.get("reports", {}).get(f"{spec.StepName.EVALUATE}.{spec.EVALUATION_PROPERTY_FILE}")
    accuracy = evaluation
    for part in ACCURACY_JSON_PATH.split("."):
        accuracy = accuracy.get(part) if isinstance(accuracy, dict) else None
    error = completed.stderr.strip().splitlines()[-1] if completed.returncode else None
    return {
        "dataset": dataset.name,
        "description": dataset.description,
        "label_column": dataset.label_column,
        "exit_code": completed.returncode,
        "status": record.get("status"),
        "test_accuracy": accuracy,
        "gate_passed": completed.returncode == 0,
        "best_trial": record.get("best_trial"),
        "seconds": round(seconds, 1),
        "error": error,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=[dataset.name for dataset in DATASETS])
    parser.add_argument("--stage", default="dev")
    arguments = parser.parse_args()
    chosen = [dataset for dataset in DATASETS if not arguments.only or dataset.name in arguments.only]
    results = []
    print(f"{'dataset':<15}{'accuracy':>10}{'gate':>7}{'seconds':>9}  description")
    for dataset in chosen:
        with tempfile.TemporaryDirectory(prefix=f"mlops-{dataset.name}-") as workdir:
            result = run_loop(dataset, Path(workdir), arguments.stage)
        results.append(result)
        accuracy = f"{result['test_accuracy']:.4f}" if result["test_accuracy"] is not None else "-"
        gate = "pass" if result["gate_passed"] else "FAIL"
        print(f"{dataset.name:<15}{accuracy:>10}{gate:>7}{result['seconds']:>9.1f}  {dataset.description}", flush=True)
        if result["error"]:
            print(f"  {result['error']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"stage": arguments.stage, "results": results}, indent=1))
    print(f"wrote {RESULTS}")
    return 0 if all(result["status"] == "Succeeded" for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
