"""A job's process lives no longer than the run that started it, and leaves no temporary files behind."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import pytest

from pipelines.local.jobs import (
    TMP_DIR,
    ContainerRoot,
    JobStopped,
    RunStopped,
    jobs_stopped_by_signals,
    run_logged,
    stopped_jobs,
)


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


def test_a_stop_signal_ends_running_jobs_at_once_and_keeps_waiting_ones_from_starting(tmp_path):
    pids: list[int] = []
    outcome: list[BaseException] = []

    def trial() -> None:
        job = [sys.executable, "-c", "import os, time; print(os.getpid(), flush=True); time.sleep(120)"]
        try:
            run_logged(
                job, ContainerRoot(tmp_path / "trial-1"), {}, tmp_path, on_line=lambda line: pids.append(int(line))
            )
        except BaseException as error:  # what the trial's thread ends with is the point
            outcome.append(error)

    (tmp_path / "trial-1").mkdir()
    with jobs_stopped_by_signals():
        worker = threading.Thread(target=trial)
        worker.start()
        deadline = time.monotonic() + 30
        while not pids and time.monotonic() < deadline:
            time.sleep(0.05)
        started = time.monotonic()
        with pytest.raises(RunStopped) as stopped:
            signal.raise_signal(signal.SIGTERM)
        worker.join(timeout=10)
        assert time.monotonic() - started < 5
        assert stopped.value.code == 128 + signal.SIGTERM
        (error,) = outcome
        assert isinstance(error, JobStopped) and not isinstance(error, Exception)  # not a failed trial
        assert stopped_jobs() == ["trial-1"]
        with pytest.raises(JobStopped):
            run_logged([sys.executable, "-c", "print('ran')"], ContainerRoot(tmp_path / "trial-2"), {}, tmp_path)
        assert not (tmp_path / "trial-2" / "job.log").exists()
    (pid,) = pids
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    # The block is over: the next run's jobs start again.
    assert run_logged([sys.executable, "-c", "pass"], ContainerRoot(tmp_path), {}, tmp_path) == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_job_has_its_own_process_group_and_no_terminal_to_read(tmp_path):
    """Ctrl-C in the terminal reaches the run alone (which stops its jobs), and a job in a process group of its own
    that read the terminal would be stopped by the system instead."""
    lines: list[str] = []
    probe = "import os; print(os.getpgid(0) == os.getpid()); print(os.readlink('/proc/self/fd/0'))"
    run_logged([sys.executable, "-c", probe], ContainerRoot(tmp_path), {}, tmp_path, on_line=lines.append)
    assert lines == ["True", "/dev/null"]


@pytest.mark.parametrize("exit_code", [0, 3], ids=["succeeds", "fails"])
def test_a_jobs_temporary_files_stay_in_its_tree_and_go_when_it_ends(tmp_path, exit_code):
    lines: list[str] = []
    probe = (
        "import tempfile, sys; path = tempfile.mkdtemp(prefix='code-'); print(tempfile.gettempdir()); "
        f"open(path + '/file', 'w').write('x'); sys.exit({exit_code})"
    )
    root = ContainerRoot(tmp_path / "job")
    root.directory.mkdir()
    assert run_logged([sys.executable, "-c", probe], root, {}, tmp_path, on_line=lines.append) == exit_code
    assert lines == [str(root.directory / TMP_DIR)]
    assert not (root.directory / TMP_DIR).exists()


def test_a_trials_thread_leaves_stop_signals_to_the_main_thread_but_its_job_takes_them(tmp_path):
    """The main thread waits on the trials; a stop signal that a trial's thread took would not wake it. The job's
    process must not inherit that: it would outlive a `kill`."""
    masks: list[set[int]] = []
    job_masks: list[str] = []
    probe = "import signal; print(sorted(map(int, signal.pthread_sigmask(signal.SIG_BLOCK, []))))"

    def trial() -> None:
        run_logged([sys.executable, "-c", probe], ContainerRoot(tmp_path), {}, tmp_path, on_line=job_masks.append)
        masks.append(signal.pthread_sigmask(signal.SIG_BLOCK, []))

    worker = threading.Thread(target=trial)
    worker.start()
    worker.join(timeout=30)
    (mask,) = masks
    assert {signal.SIGINT, signal.SIGTERM, signal.SIGHUP} <= mask
    assert job_masks == ["[]"]
    assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, [])  # the main thread still takes them
