"""Processing and training jobs as local processes, under the container contract SageMaker gives them.

Each job gets its own directory standing in for the container's filesystem: `/opt/ml/...` is `<job dir>/opt/ml/...`.
Inputs are downloaded from (embedded) S3 to their container paths, the job's own command runs with the variables
SageMaker sets, and outputs are uploaded where the definition says. A job that fails is reported with the reason it
wrote where SageMaker reads it (`/opt/ml/output/failure` for training, `/opt/ml/output/message` for processing).

A job's process lives no longer than the run: a stop signal ends every running job at once (as stopping a pipeline
execution stops its jobs), and on Linux the kernel ends a job whose run was killed outright.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pipelines.local.aws import STOP_SIGNALS
from pipelines.local.expressions import hyperparameter_value
from pipelines.registry import split_s3_uri
from training_code.contract import (
    CONTAINER_ROOT,
    DEFAULT_CHECKPOINT_DIR,
    DEFAULT_MODEL_DIR,
    MODEL_ARCHIVE,
    MODEL_DIR_VARIABLE,
    PROCESSING_FAILURE_FILE,
    TRAINING_FAILURE_FILE,
    TRAINING_JOB_NAME_VARIABLE,
    channel_variable,
)

# What the PyTorch training toolkit passes to the script itself; everything under this prefix is its own setting.
TOOLKIT_HYPERPARAMETER_PREFIX = "sagemaker_"
SUBMIT_DIRECTORY = "sagemaker_submit_directory"
PROGRAM = "sagemaker_program"
CODE_DIR = CONTAINER_ROOT / "code"
CONFIG_DIR = CONTAINER_ROOT / "input" / "config"
CHANNELS_DIR = CONTAINER_ROOT / "input" / "data"
OUTPUT_DATA_DIR = CONTAINER_ROOT / "output" / "data"
LOCAL_HOST = "algo-1"
LOG_FILE = "job.log"
# A container's /tmp lives and dies with it: a job's temporary files go here, removed when the job ends.
TMP_DIR = "tmp"
# SageMaker reports the reason a job wrote; without one, the end of its log is the best substitute.
LOG_TAIL_LINES = 5

Client = Any


class JobFailed(Exception):
    def __init__(self, job_name: str, reason: str, log: Path) -> None:
        super().__init__(f"{job_name}: {reason}")
        self.job_name = job_name
        self.reason = reason
        self.log = log


class JobStopped(BaseException):
    """The run was stopped while this job ran or before it started. Not an Exception: the handlers that turn a job's
    errors into a failed trial must not report a stopped one as failed."""

    def __init__(self, job_name: str) -> None:
        super().__init__(f"{job_name}: stopped")
        self.job_name = job_name


class RunStopped(SystemExit):
    """A stop signal (Ctrl-C, SIGTERM, SIGHUP) ended the run after its jobs' processes. A SystemExit: a caller that
    does not report it exits as the signal would have it end (128 + its number), without a traceback."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signal_name = signal.Signals(signum).name


@dataclass(frozen=True)
class ContainerRoot:
    """A job's stand-in for the container filesystem."""

    directory: Path

    def path(self, container_path: str | PurePosixPath | Path) -> Path:
        relative = PurePosixPath(container_path).relative_to("/")
        return self.directory.joinpath(*relative.parts)

    def argument(self, argument: str) -> str:
        """A command-line argument with a container path replaced by its local place."""
        inside = argument == str(CONTAINER_ROOT) or argument.startswith(f"{CONTAINER_ROOT}/")
        return str(self.path(argument)) if inside else argument

    @property
    def log(self) -> Path:
        return self.directory / LOG_FILE


def _kill(process: subprocess.Popen[str]) -> None:
    """The job's whole process group: what it started itself (torchrun's workers) ends with it."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


class _RunningJobs:
    """This command's running job processes, by job name. A signal handler stops them while the threads that started
    them wait on them; it takes no lock, which the interrupted main thread could be holding."""

    def __init__(self) -> None:
        self.processes: dict[str, subprocess.Popen[str]] = {}
        self.stopping = False
        self.stopped: dict[str, None] = {}  # in the order they were stopped

    def reset(self) -> None:
        self.processes.clear()
        self.stopping = False
        self.stopped = {}

    def stop(self) -> None:
        self.stopping = True
        for name, process in list(self.processes.items()):
            _kill(process)
            self.stopped[name] = None

    def check(self, job_name: str) -> None:
        if self.stopping:
            raise JobStopped(job_name)

    def started(self, job_name: str, process: subprocess.Popen[str]) -> None:
        self.processes[job_name] = process
        # A stop between the check before starting and the line above has not seen this process.
        if self.stopping:
            _kill(process)
            self.stopped[job_name] = None

    def ended(self, job_name: str) -> None:
        self.processes.pop(job_name, None)


_RUNNING = _RunningJobs()


def stopped_jobs() -> list[str]:
    """The jobs that a stop signal ended while they ran (read inside jobs_stopped_by_signals' block)."""
    return list(_RUNNING.stopped)


@contextlib.contextmanager
def jobs_stopped_by_signals() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP end the running jobs' processes at once, keep jobs not started yet from starting,
    and then end the block with RunStopped. Only the main thread can set handlers; elsewhere the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: object) -> None:
        # A second Ctrl-C while the run winds down is ignored: its record and the state still have to be written.
        if _RUNNING.stopping:
            return
        _RUNNING.stop()
        raise RunStopped(signum)

    previous = {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _RUNNING.reset()  # the next run in this process starts its jobs again


# PR_SET_PDEATHSIG, resolved once here: between fork and exec the child must do as little as it can.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
_SET_PARENT_DEATH_SIGNAL = 1


def _leave_stop_signals_to_the_main_thread() -> None:
    """A trial's thread never takes a stop signal: the main thread, waiting on the trials, would not wake to handle
    it (see pipelines.local.aws.stop_signals_kept_from_new_threads)."""
    if threading.current_thread() is not threading.main_thread():
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def _prepared_child(parent: int) -> Callable[[], None]:
    """What the job's process does before its command: take the stop signals again (a trial's thread blocks them,
    and a child inherits that), and on Linux get SIGKILL when the thread that started it ends, so that a run killed
    outright (SIGKILL, which no handler sees) leaves no job behind. Elsewhere such a job ends at its next line of
    output, on the closed pipe."""
    prctl = _PRCTL

    def prepare() -> None:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        if prctl is not None:
            prctl(_SET_PARENT_DEATH_SIGNAL, signal.SIGKILL)
            if os.getppid() != parent:  # the run ended before the line above: nothing would send the signal
                os._exit(1)

    return prepare


def download(s3: Client, uri: str, destination: Path) -> int:
    """Every object under the S3 prefix `uri`, laid out below `destination` by the rest of its key (an object named
    exactly by `uri` keeps its own name), as SageMaker's S3Prefix inputs are. Returns how many objects."""
    bucket, prefix = split_s3_uri(uri)
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            relative = item["Key"][len(prefix) :].lstrip("/") or PurePosixPath(item["Key"]).name
            target = destination.joinpath(*PurePosixPath(relative).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, item["Key"], str(target))
            count += 1
    if count == 0:
        raise FileNotFoundError(f"no objects under {uri}")
    return count


def upload(s3: Client, source: Path, uri: str) -> None:
    """Every file below `source` to the S3 prefix `uri`, keyed by its relative path."""
    bucket, prefix = split_s3_uri(uri.rstrip("/") + "/")
    for path in sorted(source.rglob("*")):
        if path.is_file():
            s3.upload_file(str(path), bucket, prefix + path.relative_to(source).as_posix())


def run_logged(
    command: list[str],
    root: ContainerRoot,
    environment: Mapping[str, str],
    working_dir: Path,
    on_line: Callable[[str], None] | None = None,
) -> int:
    """Run the job's process, its output to the job log (as CloudWatch has it) and, line by line, to `on_line`.

    Raises JobStopped when a stop signal ended it (or came before it started)."""
    _leave_stop_signals_to_the_main_thread()
    job_name = root.directory.name
    _RUNNING.check(job_name)
    temporary = root.directory / TMP_DIR
    temporary.mkdir(parents=True, exist_ok=True)
    with root.log.open("a", encoding="utf-8") as log:
        process = subprocess.Popen(
            command,
            cwd=working_dir,
            env={**os.environ, **environment, "TMPDIR": str(temporary)},
            # A container has no terminal; a job outside the terminal's process group would stop on reading it.
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            # Its own process group: Ctrl-C reaches the run alone, which stops the jobs itself (no job tracebacks).
            process_group=0,
            preexec_fn=_prepared_child(os.getpid()),
        )
        _RUNNING.started(job_name, process)
        assert process.stdout is not None
        try:
            for line in process.stdout:
                log.write(line)
                if on_line is not None:
                    on_line(line.rstrip("\n"))
            exit_code = process.wait()
        finally:
            # However the run left this function (Ctrl-C, an error in on_line), the job does not outlive it.
            _kill(process)
            process.wait()
            _RUNNING.ended(job_name)
            shutil.rmtree(temporary, ignore_errors=True)
    _RUNNING.check(job_name)
    return exit_code


def failure_reason(root: ContainerRoot, failure_file: Path, exit_code: int) -> str:
    written = root.path(failure_file)
    if written.is_file() and written.read_text(encoding="utf-8").strip():
        return written.read_text(encoding="utf-8").strip()
    tail = root.log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-LOG_TAIL_LINES:]
    return f"exited with code {exit_code} without writing {failure_file}; its log ends: " + " | ".join(tail)


def thread_environment(cores: int) -> dict[str, str]:
    """Jobs that run side by side share the machine's cores instead of each taking all of them."""
    threads = str(max(1, cores))
    return {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads}


def run_processing_job(
    name: str, arguments: Mapping[str, Any], root: ContainerRoot, s3: Client, cores: int
) -> dict[str, Any]:
    """A resolved CreateProcessingJob request, run here. Returns the job's properties (its request, as SageMaker's
    DescribeProcessingJob echoes it)."""
    root.directory.mkdir(parents=True, exist_ok=True)
    for processing_input in arguments.get("ProcessingInputs", []):
        source = processing_input["S3Input"]
        download(s3, source["S3Uri"], root.path(source["LocalPath"]))
    for output in arguments["ProcessingOutputConfig"]["Outputs"]:
        root.path(output["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
    application = arguments["AppSpecification"]
    entrypoint = [root.argument(part) for part in application["ContainerEntrypoint"]]
    if PurePosixPath(entrypoint[0]).name.startswith("python"):
        entrypoint[0] = sys.executable  # the image's interpreter is this environment's
    command = [
        *entrypoint,
        *(root.argument(argument) for argument in application.get("ContainerArguments", [])),
        "--failure-file",
        str(root.path(PROCESSING_FAILURE_FILE)),
    ]
    environment = {**arguments.get("Environment", {}), **thread_environment(cores)}
    exit_code = run_logged(command, root, environment, root.directory)
    if exit_code != 0:
        raise JobFailed(name, failure_reason(root, PROCESSING_FAILURE_FILE, exit_code), root.log)
    for output in arguments["ProcessingOutputConfig"]["Outputs"]:
        upload(s3, root.path(output["S3Output"]["LocalPath"]), output["S3Output"]["S3Uri"])
    return dict(arguments)


@dataclass(frozen=True)
class TrainingOutcome:
    job_name: str
    hyperparameters: dict[str, str]
    final_metrics: dict[str, float]
    model_uri: str


def _install_code(submit_directory: str, root: ContainerRoot, s3: Client) -> None:
    """What the training toolkit does with sagemaker_submit_directory: fetch the bundle and unpack it as the code."""
    archive = root.directory / "sourcedir.tar.gz"
    if submit_directory.startswith("s3://"):
        bucket, key = split_s3_uri(submit_directory)
        s3.download_file(bucket, key, str(archive))
    else:  # a path inside the container: the code channel, already downloaded (network isolation)
        archive = root.path(submit_directory)
    with tarfile.open(archive) as bundle:
        bundle.extractall(root.path(CODE_DIR), filter="data")


def run_training_job(
    name: str,
    definition: Mapping[str, Any],
    hyperparameters: Mapping[str, str],
    root: ContainerRoot,
    s3: Client,
    cores: int,
    on_line: Callable[[str], None] | None = None,
    read_metrics: Callable[[str], dict[str, float]] | None = None,
) -> TrainingOutcome:
    """A resolved training job definition with these (JSON-encoded, as SageMaker stores them) hyperparameters."""
    _leave_stop_signals_to_the_main_thread()
    _RUNNING.check(name)  # a trial still waiting for its turn when the run stops does not start
    root.directory.mkdir(parents=True, exist_ok=True)
    channels = {}
    for channel in definition["InputDataConfig"]:
        local = root.path(CHANNELS_DIR / channel["ChannelName"])
        download(s3, channel["DataSource"]["S3DataSource"]["S3Uri"], local)
        channels[channel["ChannelName"]] = local
    _install_code(hyperparameter_value(hyperparameters[SUBMIT_DIRECTORY]), root, s3)
    config_dir = root.path(CONFIG_DIR)
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "hyperparameters.json").write_text(json.dumps(dict(hyperparameters), indent=1))
    (config_dir / "inputdataconfig.json").write_text(
        json.dumps({c["ChannelName"]: {"ContentType": c.get("ContentType")} for c in definition["InputDataConfig"]})
    )
    (config_dir / "resourceconfig.json").write_text(
        json.dumps({"current_host": LOCAL_HOST, "hosts": [LOCAL_HOST], "network_interface_name": "lo"})
    )
    user_hyperparameters = {
        key: hyperparameter_value(value)
        for key, value in hyperparameters.items()
        if not key.startswith(TOOLKIT_HYPERPARAMETER_PREFIX)
    }
    model_dir = root.path(DEFAULT_MODEL_DIR)
    model_dir.mkdir(parents=True, exist_ok=True)
    environment = {
        TRAINING_JOB_NAME_VARIABLE: name,
        MODEL_DIR_VARIABLE: str(model_dir),
        "SM_CHANNELS": json.dumps(sorted(channels)),
        **{channel_variable(channel): str(path) for channel, path in channels.items()},
        "SM_HPS": json.dumps(user_hyperparameters),
        "SM_OUTPUT_DATA_DIR": str(root.path(OUTPUT_DATA_DIR)),
        "SM_INPUT_CONFIG_DIR": str(config_dir),
        "SM_CURRENT_HOST": LOCAL_HOST,
        "SM_HOSTS": json.dumps([LOCAL_HOST]),
        "SM_NUM_GPUS": "0",
        "SM_NUM_CPUS": str(cores),
        **thread_environment(cores),
    }
    code_dir = root.path(CODE_DIR)
    program = code_dir / hyperparameter_value(hyperparameters[PROGRAM])
    arguments = [part for key, value in user_hyperparameters.items() for part in (f"--{key}", str(value))]
    command = [
        sys.executable,
        str(program),
        *arguments,
        # Flags for the two paths the script defaults to under /opt/ml and takes no variable for.
        "--checkpoint-dir",
        str(root.path(DEFAULT_CHECKPOINT_DIR)),
        "--failure-file",
        str(root.path(TRAINING_FAILURE_FILE)),
    ]
    exit_code = run_logged(command, root, environment, code_dir, on_line)
    if exit_code != 0:
        raise JobFailed(name, failure_reason(root, TRAINING_FAILURE_FILE, exit_code), root.log)
    archive = root.directory / MODEL_ARCHIVE
    with tarfile.open(archive, "w:gz") as packed:
        for path in sorted(model_dir.iterdir()):
            packed.add(path, arcname=path.name)
    output_path = definition["OutputDataConfig"]["S3OutputPath"].rstrip("/")
    model_uri = f"{output_path}/{name}/output/{MODEL_ARCHIVE}"
    bucket, key = split_s3_uri(model_uri)
    s3.upload_file(str(archive), bucket, key)
    log = root.log.read_text(encoding="utf-8", errors="replace")
    return TrainingOutcome(name, dict(hyperparameters), read_metrics(log) if read_metrics else {}, model_uri)
