"""A job's process lives no longer than the run that started it."""

from __future__ import annotations

import os
import sys

import pytest

from pipelines.local.jobs import ContainerRoot, run_logged


def test_a_run_stopped_while_a_job_runs_stops_the_job(tmp_path):
    root = ContainerRoot(tmp_path)
    started: list[int] = []

    def interrupt(line: str) -> None:
        started.append(int(line))
        raise KeyboardInterrupt

    job = [sys.executable, "-c", "import os, time; print(os.getpid(), flush=True); time.sleep(120)"]
    with pytest.raises(KeyboardInterrupt):
        run_logged(job, root, {}, tmp_path, on_line=interrupt)
    (pid,) = started
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert root.log.read_text().strip() == str(pid)


def test_a_finished_job_returns_its_exit_code_with_its_output_in_the_log(tmp_path):
    root = ContainerRoot(tmp_path)
    lines: list[str] = []
    job = [sys.executable, "-c", "print('epoch=1'); print('bye'); raise SystemExit(3)"]
    assert run_logged(job, root, {}, tmp_path, on_line=lines.append) == 3
    assert lines == ["epoch=1", "bye"]
    assert root.log.read_text() == "epoch=1\nbye\n"
