"""Stopping a local run, with real processes: Ctrl-C, SIGTERM and SIGHUP end its jobs at once and record it as
Stopped; a run killed outright (SIGKILL) leaves no job behind and is settled as Failed by the next run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.local.layout import LOCAL_DIR_VARIABLE, LocalLayout
from pipelines.local.runner import read_run_record, settle_abandoned_runs

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; the kill test needs Linux")

# A run whose one step is a tuning step of three trials, two at a time, each trial a process that prints its id and
# sleeps: the runner, its threads and its job processes as `mlops local run` has them, in a second.
TUNING_RUN = textwrap.dedent(
    """
    import io, json, tarfile, boto3
    from infra.config import cdk_json_context, load_stage_configs
    from infra.naming import BucketPurpose
    from pipelines.local.aws import embedded_aws
    from pipelines.local.layout import LocalLayout
    from pipelines.local.runner import LocalPipelineRun, LocalStage, RunObserver

    TRAIN = b"import os, time; print('pid', os.getpid(), flush=True); time.sleep(120)"

    class Printing(RunObserver):
        def trial_line(self, trial, line):
            print(trial.name, line, flush=True)

    layout = LocalLayout.from_environment()
    (config,) = load_stage_configs({**cdk_json_context(), "stage": "dev"})
    with embedded_aws(layout) as endpoint:
        stage = LocalStage(config, endpoint.region)
        s3 = boto3.client("s3")
        artifacts = stage.bucket(BucketPurpose.ARTIFACTS)
        for bucket in (stage.bucket(BucketPurpose.DATA), artifacts):
            s3.create_bucket(Bucket=bucket)
        code = io.BytesIO()
        with tarfile.open(fileobj=code, mode="w:gz") as bundle:
            entry = tarfile.TarInfo("train.py")
            entry.size = len(TRAIN)
            bundle.addfile(entry, io.BytesIO(TRAIN))
        s3.put_object(Bucket=artifacts, Key="code.tar.gz", Body=code.getvalue())
        tune = {
            "HyperParameterTuningJobConfig": {
                "HyperParameterTuningJobObjective": {"MetricName": "accuracy", "Type": "Maximize"},
                "ResourceLimits": {"MaxNumberOfTrainingJobs": 3, "MaxParallelTrainingJobs": 2},
                "ParameterRanges": {
                    "ContinuousParameterRanges": [{"Name": "dropout", "MinValue": "0", "MaxValue": "1"}]
                },
            },
            "TrainingJobDefinition": {
                "StaticHyperParameters": {
                    "sagemaker_submit_directory": json.dumps(f"s3://{artifacts}/code.tar.gz"),
                    "sagemaker_program": json.dumps("train.py"),
                },
                "AlgorithmSpecification": {"MetricDefinitions": [{"Name": "accuracy", "Regex": "accuracy=([0-9.]+)"}]},
                "InputDataConfig": [
                    {
                        "ChannelName": "train",
                        "DataSource": {"S3DataSource": {"S3Uri": {"Get": "Parameters.InputDataUri"}}},
                    }
                ],
                "OutputDataConfig": {"S3OutputPath": f"s3://{artifacts}/models"},
            },
        }
        definition = {
            "Parameters": [{"Name": "InputDataUri", "Type": "String", "DefaultValue": "s3://unused/"}],
            "Steps": [{"Name": "Tune", "Type": "Tuning", "Arguments": tune}],
        }
        data = layout.root / "train.csv"
        data.write_text("x,label\\n1,0\\n")
        LocalPipelineRun(stage, definition, {}, layout, Printing(), data=[data]).run()
    """
)


def processes_mentioning(text: str) -> list[int]:
    """The processes whose command line names `text` (the jobs name their directory under the local one)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:  # ended meanwhile
                pass
    return found


def gone_within(pids: list[int], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if Path(f"/proc/{pid}").exists() and not _zombie(pid)]
        if not alive:
            return True
        time.sleep(0.05)
    return False


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen]]:
    """The runs a test starts: one that a failed assertion leaves running is killed, and its jobs with it."""
    runs: list[subprocess.Popen] = []
    yield runs
    for run in runs:
        if run.poll() is None:
            run.kill()
            run.communicate()


def start(started: list[subprocess.Popen], local_dir: Path, *command: str) -> subprocess.Popen:
    run = subprocess.Popen(
        [sys.executable, *command],
        env={**os.environ, LOCAL_DIR_VARIABLE: str(local_dir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    started.append(run)
    return run


def start_tuning_run(started: list[subprocess.Popen], local_dir: Path) -> tuple[subprocess.Popen, list[int]]:
    """The run, once both trials that run at a time have started: returns it and their process ids."""
    run = start(started, local_dir, "-c", TUNING_RUN)
    trials = []
    for line in run.stdout:
        trials.append(int(line.split()[-1]))
        if len(trials) == 2:
            return run, trials
    raise AssertionError(f"the run ended before its trials started: {run.communicate()[1][-2000:]}")


def only_record(local_dir: Path) -> dict:
    (path,) = LocalLayout(local_dir).runs_dir.glob("*/run.json")
    return read_run_record(path)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP], ids=["sigterm", "closed-terminal"])
def test_a_stop_signal_ends_the_running_trials_at_once_and_records_the_run_as_stopped(tmp_path, started, stop):
    run, trials = start_tuning_run(started, tmp_path)
    run.send_signal(stop)
    _, errors = run.communicate(timeout=10)
    assert run.returncode == 128 + stop
    assert gone_within(trials, 3)
    assert "Traceback" not in errors
    record = only_record(tmp_path)
    assert (record["status"], record["stopped_in"], record["failure"]) == ("Stopped", "Tune", None)
    assert len(record["stopped_jobs"]) == 2
    run_dir = LocalLayout(tmp_path).run_dir(record["execution_id"])
    started = sorted(path.name.split("-")[-2] for path in run_dir.iterdir() if path.is_dir())
    assert started == ["001", "002"]  # the third trial waited for its turn: it never started


def test_a_run_killed_outright_leaves_no_job_behind_and_is_settled_as_failed_by_the_next(tmp_path, started):
    run, trials = start_tuning_run(started, tmp_path)
    run.kill()
    run.communicate(timeout=10)
    assert gone_within(trials, 3)
    assert only_record(tmp_path)["status"] == "Executing"
    assert settle_abandoned_runs(LocalLayout(tmp_path)) == [only_record(tmp_path)["execution_id"]]
    record = only_record(tmp_path)
    assert (record["status"], record["failure"]["step"]) == ("Failed", "Tune")
    assert f"process {run.pid}" in record["failure"]["reason"]


REDUCED = ["--sample-rows", "300", "-p", "TuningMaxJobs=3", "-p", "AccuracyThreshold=0.5"]


def test_ctrl_c_in_mlops_local_run_stops_its_trials_and_ends_with_one_line(tmp_path, started):
    """The whole command as the operator has it: the trial bars say stopped, and one line says where and what."""
    run = start(started, tmp_path, "-m", "pipelines.cli", "local", "run", *REDUCED)
    for line in run.stdout:
        if line.startswith("▶ Tune"):
            break
    deadline = time.monotonic() + 30
    while len(trials := processes_mentioning(f"{tmp_path}/runs/")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    run.send_signal(signal.SIGINT)
    output, errors = run.communicate(timeout=15)
    assert run.returncode == 130
    assert gone_within(trials, 3) and len(trials) == 2
    assert "Traceback" not in output + errors and "Aborted" not in errors
    record = only_record(tmp_path)
    (message,) = errors.strip().splitlines()
    assert message == (
        f"stopped in step Tune (stopped {', '.join(record['stopped_jobs'])}): execution {record['execution_id']} "
        f"is recorded as Stopped in {tmp_path}/runs/{record['execution_id']}/run.json; "
        f"the embedded AWS state is saved in {tmp_path}/aws-state.pickle"
    )
    assert output.count("stopped") == 3  # each trial's bar
    assert (record["status"], record["stopped_in"], len(record["stopped_jobs"])) == ("Stopped", "Tune", 2)
    # What the run wrote and uploaded is on record before its jobs wrote it, for pruning to find.
    assert record["input_data_uri"].endswith(f"/raw/{record['execution_id']}/")
    trial_outputs = [uri for uri in record["outputs"] if "/models/" in uri]
    assert len(trial_outputs) == 3 and all(record["execution_id"] in uri for uri in record["outputs"])
