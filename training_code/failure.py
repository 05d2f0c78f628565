"""The failure contract: any error writes a one-paragraph reason where SageMaker reads it, and exits non-zero.

The scripts parse their arguments with the standard library only: SageMaker's framework containers run them
without this project's command-line dependencies.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from training_code.contract import FAILURE_REASON_LIMIT


class ArgumentParser(argparse.ArgumentParser):
    """Argument errors raise instead of exiting, so they reach the failure file like every other error."""

    def error(self, message: str) -> None:
        raise ValueError(f"invalid arguments: {message}")


def run_script(run: Callable[[list[str]], None], argv: list[str] | None, default_failure_file: Path) -> None:
    """Run `run(argv)`; on any error write the reason to --failure-file (or the default) and exit 1."""
    argv = sys.argv[1:] if argv is None else argv
    locator = argparse.ArgumentParser(add_help=False)
    locator.add_argument("--failure-file", type=Path, default=default_failure_file)
    failure_file = locator.parse_known_args(argv)[0].failure_file
    run_or_report_failure(lambda: run(argv), failure_file)


def run_or_report_failure(main: Callable[[], None], failure_file: Path) -> None:
    try:
        main()
    except Exception as error:  # noqa: BLE001 - every failure must reach the failure file, whatever its type
        traceback.print_exc()
        reason = " ".join(f"{type(error).__name__}: {error}".split())
        failure_file.parent.mkdir(parents=True, exist_ok=True)
        failure_file.write_text(reason[:FAILURE_REASON_LIMIT] + "\n", encoding="utf-8")
        print(f"failed: {reason}", file=sys.stderr)
        sys.exit(1)
