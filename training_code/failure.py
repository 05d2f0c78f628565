"""The failure contract: any error writes a one-paragraph reason where SageMaker reads it, and exits non-zero."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from training_code.contract import FAILURE_REASON_LIMIT


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
