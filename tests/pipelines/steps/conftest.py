"""Fixtures for the processing-step tests: a small digits CSV with duplicates, its splits, and the step CLIs."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipelines.sample_data import write_digits_csv
from pipelines.steps.preprocess import preprocess

# Small enough to keep the tests fast, large enough for a stratified 70/15/15 split of ten classes.
SAMPLE_ROWS = 300
SAMPLE_DUPLICATES = 25


@dataclass(frozen=True)
class Result:
    exit_code: int
    output: str


Invoke = Callable[..., Result]
FailureReason = Callable[..., str]


@pytest.fixture(scope="session")
def digits_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The raw input: <dir>/digits.csv, alone in its directory (a processing input channel). Read-only."""
    return write_digits_csv(
        tmp_path_factory.mktemp("raw") / "digits.csv", duplicates=SAMPLE_DUPLICATES, rows=SAMPLE_ROWS
    )


@pytest.fixture(scope="session")
def splits(digits_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The preprocessing output for `digits_csv` with the default ratios and seed 0. Read-only."""
    output = tmp_path_factory.mktemp("splits")
    preprocess(digits_csv.parent, output, "label", validation_ratio=0.15, test_ratio=0.15, seed=0)
    return output


@pytest.fixture(scope="session")
def invoke() -> Invoke:
    """invoke(step_main, option=value, ...) runs a step's command line in-process, as `python -m` would."""

    def run(command: Callable[[list[str]], None], **options: Any) -> Result:
        arguments = [f"--{name.replace('_', '-')}={value}" for name, value in options.items()]
        output = io.StringIO()
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            try:
                command(arguments)
            except SystemExit as exited:
                return Result(exit_code=exited.code, output=output.getvalue())
        return Result(exit_code=0, output=output.getvalue())

    return run


@pytest.fixture
def failure_reason(invoke: Invoke, tmp_path: Path) -> FailureReason:
    """failure_reason(step_main, option=value, ...) runs a step that must fail; returns its one-line reason."""

    def run(command: Callable[..., None], **options: Any) -> str:
        failure_file = tmp_path / "failure" / "message"
        result = invoke(command, failure_file=failure_file, **options)
        assert result.exit_code != 0, result.output
        text = failure_file.read_text(encoding="utf-8")
        assert text.endswith("\n")
        assert "\n" not in text[:-1], text
        return text[:-1]

    return run
