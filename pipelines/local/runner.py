"""Runs a stage's SageMaker Pipeline definition on this machine, step by step, against the embedded AWS.

The runner executes the definition that `cdk deploy` deploys (built by pipelines/definition.py from
pipelines/spec.py), not a copy of it: the same steps in the same order, the same parameters and defaults, the same
step scripts and code bundle, the same container paths and S3 locations. Only where a job runs differs: a local
process stands in for each processing and training container (see pipelines/local/jobs.py).

Each run keeps its record in `run.json` from its start (status Executing) to its end. Before a run starts, the records
of runs whose command was killed outright are settled, and the runs older than the newest KEEP_RUNS are pruned.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from infra import naming
from infra.config import StageConfig
from infra.layout import DataPrefix
from infra.manifest import MODEL_PACKAGE_ARN
from infra.naming import BucketPurpose
from pipelines import spec
from pipelines.bundle import BUILD_DIR, BUNDLE_NAME, STEP_RUNNER, build_bundle
from pipelines.local.aws import LOCAL_ACCOUNT, EmbeddedAwsError
from pipelines.local.expressions import DefinitionError, Scope, references
from pipelines.local.jobs import ContainerRoot, JobFailed, jobs_stopped_by_signals, run_processing_job, stopped_jobs
from pipelines.local.layout import LocalLayout
from pipelines.local.tuning import Trial, TrialResult, TuningFailed, plan_trials, run_tuning, summaries
from pipelines.registry import split_s3_uri

if TYPE_CHECKING:
    from pipelines.definition import PipelineTargets

Client = Any
# The step types the local runner executes; a definition with any other type is refused before anything runs.
SUPPORTED_STEP_TYPES = ("Processing", "Tuning", "Condition", "RegisterModel", "Fail")
CONDITIONS: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": lambda left, right: left == right,
    "GreaterThan": lambda left, right: left > right,
    "GreaterThanOrEqualTo": lambda left, right: left >= right,
    "LessThan": lambda left, right: left < right,
    "LessThanOrEqualTo": lambda left, right: left <= right,
}
PARAMETER_TYPES: dict[str, Callable[[Any], Any]] = {
    "String": str,
    "Integer": int,
    "Float": float,
    # The definition and the command line hold booleans as text; bool("false") would be True.
    "Boolean": lambda value: value if isinstance(value, bool) else str(value).strip().lower() == "true",
}
# CDK's default bootstrap bucket holds the code assets in an account; locally the runner uploads them there itself.
CODE_BUCKET_TEMPLATE = "cdk-hnb659fds-assets-{account}-{region}"
LOCAL_EXECUTION_ROLE = "arn:aws:iam::{account}:role/{prefix}-local-execution"
# Images are not run locally: each job runs in this environment. They name what runs in their place.
LOCAL_IMAGE = "local/{purpose}"
RUN_RECORD = "run.json"
# Held by the command that runs the execution; the system releases it however that command ends.
RUN_LOCK = "run.lock"
EXECUTION_VARIABLES = ("PipelineExecutionId", "PipelineExecutionArn")
EXECUTING = "Executing"
BEFORE_FIRST_STEP = "(before the first step)"
# Runs kept, newest first, when a run starts; older runs' directories and S3 objects are deleted.
KEEP_RUNS = 10


class StepFailed(Exception):
    """A step failed; the run stops here."""

    def __init__(self, step: str, reason: str, log: Path | None = None) -> None:
        super().__init__(f"step {step} failed: {reason}")
        self.step = step
        self.reason = reason
        self.log = log


@dataclass(frozen=True)
class LocalStage:
    """A stage's resources in the embedded account: what the Foundation and Pipeline stacks create in AWS."""

    config: StageConfig
    region: str

    def bucket(self, purpose: BucketPurpose) -> str:
        template = naming.bucket_name_template(self.config, purpose)
        return template.replace("${AWS::AccountId}", LOCAL_ACCOUNT).replace("${AWS::Region}", self.region)

    @property
    def code_bucket(self) -> str:
        return CODE_BUCKET_TEMPLATE.format(account=LOCAL_ACCOUNT, region=self.region)

    @property
    def group(self) -> str:
        return naming.model_package_group_name(self.config)

    def provision(self, s3: Client, sagemaker: Client) -> tuple[str, str]:
        """Create the buckets and the model package group if missing, and upload the code as `cdk deploy` uploads
        its assets (named by content hash). Returns the code bundle's and the step runner's S3 URIs."""
        for bucket in (self.bucket(BucketPurpose.DATA), self.bucket(BucketPurpose.ARTIFACTS), self.code_bucket):
            try:
                s3.head_bucket(Bucket=bucket)
            except ClientError:
                location = {} if self.region == "us-east-1" else {"LocationConstraint": self.region}
                s3.create_bucket(Bucket=bucket, **({"CreateBucketConfiguration": location} if location else {}))
        try:
            sagemaker.describe_model_package_group(ModelPackageGroupName=self.group)
        except ClientError:
            sagemaker.create_model_package_group(
                ModelPackageGroupName=self.group, ModelPackageGroupDescription=f"Models of {self.config.name}"
            )
        uris = []
        for path, suffix in ((build_bundle(BUILD_DIR / BUNDLE_NAME), ".gz"), (STEP_RUNNER, ".py")):
            data = path.read_bytes()
            key = hashlib.sha256(data).hexdigest() + suffix
            s3.put_object(Bucket=self.code_bucket, Key=key, Body=data)
            uris.append(f"s3://{self.code_bucket}/{key}")
        return uris[0], uris[1]

    def targets(self, code_bundle_uri: str, step_runner_uri: str) -> PipelineTargets:
        # Imported here: the SageMaker SDK takes seconds to import, and only building the definition needs it.
        from pipelines.definition import PipelineTargets

        return PipelineTargets(
            region=self.region,
            execution_role_arn=LOCAL_EXECUTION_ROLE.format(account=LOCAL_ACCOUNT, prefix=self.config.resource_prefix),
            kms_key_arn=f"arn:aws:kms:{self.region}:{LOCAL_ACCOUNT}:alias/{self.config.resource_prefix}",
            data_bucket=self.bucket(BucketPurpose.DATA),
            artifacts_bucket=self.bucket(BucketPurpose.ARTIFACTS),
            code_bundle_uri=code_bundle_uri,
            step_runner_uri=step_runner_uri,
            training_image_uri=LOCAL_IMAGE.format(purpose="training"),
            processing_image_uri=LOCAL_IMAGE.format(purpose="preprocessing"),
            evaluation_image_uri=LOCAL_IMAGE.format(purpose="evaluation"),
            serving_image_uri=LOCAL_IMAGE.format(purpose="serving"),
        )

    def run_data_uri(self, execution_id: str) -> str:
        """The execution's own prefix under raw/: runs that share an embedded AWS (`mlops local aws`) at the same
        time never train on each other's data."""
        return f"s3://{self.bucket(BucketPurpose.DATA)}/{DataPrefix.RAW}{execution_id}/"

    def upload_data(self, s3: Client, files: list[Path], uri: str) -> None:
        bucket, prefix = split_s3_uri(uri)
        for path in files:
            s3.upload_file(str(path), bucket, prefix + path.name)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class RunObserver:
    """What the runner reports while it runs; the CLI renders it (tests record it)."""

    def step_started(self, name: str, step_type: str) -> None: ...
    def step_finished(self, name: str, seconds: float, detail: str) -> None: ...
    def trials_planned(self, trials: list[Trial], epochs: int) -> None: ...
    def trial_line(self, trial: Trial, line: str) -> None: ...
    def trial_finished(self, result: TrialResult) -> None: ...


@dataclass
class RunResult:
    execution_id: str
    execution_arn: str
    parameters: dict[str, Any]
    run_dir: Path
    steps: list[dict[str, Any]] = field(default_factory=list)
    best_trial: dict[str, Any] | None = None
    model_package_arn: str | None = None
    failure: StepFailed | None = None
    # The step that was running when the run was stopped (Ctrl-C, SIGTERM), if it was, and the jobs that it stopped.
    stopped_in: str | None = None
    stopped_jobs: list[str] = field(default_factory=list)
    # Property files the run read, by "<step>.<file name>" (the evaluation report among them).
    reports: dict[str, Any] = field(default_factory=dict)
    # The last step started: a run killed outright is settled as failed there.
    current_step: str | None = None
    # The prefix the run uploaded its data to (None when InputDataUri named other data), and the S3 prefixes its jobs
    # write: what pruning the run deletes.
    input_data_uri: str | None = None
    outputs: list[str] = field(default_factory=list)
    started: str = field(default_factory=_now)
    ended: str | None = None

    @property
    def registered_version(self) -> str:
        """The registered version's number, as `mlops models` commands take it."""
        assert self.model_package_arn is not None, "the run registered no version"
        return MODEL_PACKAGE_ARN.match(self.model_package_arn)["version"]

    @property
    def status(self) -> str:
        if self.failure:
            return "Failed"
        if self.stopped_in:
            return "Stopped"
        return "Succeeded" if self.ended else EXECUTING

    @property
    def record_file(self) -> Path:
        return self.run_dir / RUN_RECORD

    def record(self) -> dict[str, Any]:
        return {
            "execution_id": self.execution_id,
            "execution_arn": self.execution_arn,
            "status": self.status,
            "failure": {"step": self.failure.step, "reason": self.failure.reason} if self.failure else None,
            "stopped_in": self.stopped_in,
            "stopped_jobs": self.stopped_jobs,
            "current_step": self.current_step,
            "pid": os.getpid(),
            "started": self.started,
            "ended": self.ended,
            "parameters": self.parameters,
            "steps": self.steps,
            "best_trial": self.best_trial,
            "reports": self.reports,
            "model_package_arn": self.model_package_arn,
            "input_data_uri": self.input_data_uri,
            "outputs": self.outputs,
        }

    def save(self) -> None:
        _write_record(self.record_file, self.record())


def _write_record(path: Path, record: dict[str, Any]) -> None:
    """Whole or not at all: other commands read the records while this run goes on."""
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(record, indent=1, default=str))
    os.replace(partial, path)


def read_run_record(path: Path) -> dict[str, Any]:
    """A run's record; one that cannot be read is named, with what to do, instead of failing with a traceback."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as error:
        problem = f"{type(error).__name__}: {error}"
    else:
        if _is_run_record(record):
            return record
        problem = "it is not a run record of this version"
    raise EmbeddedAwsError(
        f"cannot read the local run record {path} ({problem}); delete {path.parent} (that run's record, jobs and "
        f"logs) to go on"
    )


def _is_run_record(record: Any) -> bool:
    optional_texts = ("started", "current_step", "input_data_uri", "model_package_arn")
    return (
        isinstance(record, dict)
        and all(isinstance(record.get(name), str) for name in ("execution_id", "status"))
        and all(isinstance(record.get(name), str | None) for name in optional_texts)
        and isinstance(record.get("outputs", []), list)
        and all(isinstance(uri, str) for uri in record.get("outputs", []))
    )


def _run_records(layout: LocalLayout) -> list[tuple[Path, dict[str, Any]]]:
    found = []
    for path in sorted(layout.runs_dir.glob(f"*/{RUN_RECORD}")):
        with contextlib.suppress(FileNotFoundError):  # pruned meanwhile by another command
            found.append((path, read_run_record(path)))
    return found


@contextlib.contextmanager
def _run_lock(run_dir: Path, blocking: bool) -> Iterator[bool]:
    """The run's lock: held by the command that runs it, and by one that settles or prunes it. Yields whether it was
    taken (without `blocking`, not when another command holds it or the run is gone)."""
    try:
        lock = (run_dir / RUN_LOCK).open("a")
    except FileNotFoundError:
        yield False
        return
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True


def settle_abandoned_runs(layout: LocalLayout) -> list[str]:
    """Record as Failed the runs whose command ended without recording an outcome (killed with SIGKILL, a machine
    that stopped), in the step they were in, so that none stays Executing forever. Returns their execution ids."""
    settled = []
    for path, record in _run_records(layout):
        if record["status"] != EXECUTING:
            continue
        with _run_lock(path.parent, blocking=False) as free:
            if not free:  # its command still runs
                continue
            record = read_run_record(path)  # as its command left it, now that no command can write it
            if record["status"] != EXECUTING:
                continue
            step = record.get("current_step") or BEFORE_FIRST_STEP
            reason = (
                f"its command (process {record.get('pid')}) ended without recording an outcome (killed with SIGKILL, "
                f"or the machine stopped)"
            )
            record.update(status="Failed", failure={"step": step, "reason": reason}, ended=_now())
            _write_record(path, record)
            settled.append(record["execution_id"])
    return settled


def _s3_uris(value: Any) -> Iterator[str]:
    if isinstance(value, str) and value.startswith("s3://"):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _s3_uris(item)
    elif isinstance(value, list):
        for item in value:
            yield from _s3_uris(item)


def _registered_objects(sagemaker: Client, model_package_arn: str | None) -> set[str]:
    """What a version that a run registered refers to (its model, its metrics report), while the registry holds it:
    pruning the run keeps these, so that the version can still be shown, approved and served."""
    if not model_package_arn:
        return set()
    try:
        description = sagemaker.describe_model_package(ModelPackageName=model_package_arn)
    except ClientError as error:
        if error.response["Error"]["Code"] == "ValidationException":  # the version is gone
            return set()
        raise
    return set(_s3_uris(description))


def _delete_under(s3: Client, prefix_uri: str, kept: set[str]) -> None:
    bucket, prefix = split_s3_uri(prefix_uri)
    doomed = [
        {"Key": item["Key"]}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
        if f"s3://{bucket}/{item['Key']}" not in kept
    ]
    for start in range(0, len(doomed), 1000):  # DeleteObjects takes up to 1,000 keys
        s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed[start : start + 1000]})


def prune_runs(layout: LocalLayout, s3: Client, sagemaker: Client, keep: int = KEEP_RUNS) -> list[str]:
    """Delete the finished runs older than the newest `keep`: their directories, their uploaded data and what their
    jobs wrote to S3, except what a version they registered still refers to. Returns their execution ids."""
    finished = [(path, record) for path, record in _run_records(layout) if record["status"] != EXECUTING]
    finished.sort(key=lambda item: (item[1].get("started") or "", str(item[0])), reverse=True)
    pruned = []
    for path, record in finished[keep:]:
        with _run_lock(path.parent, blocking=False) as free:
            if not free:  # another command settles or prunes it now
                continue
            kept = _registered_objects(sagemaker, record.get("model_package_arn"))
            for prefix in [*record.get("outputs", []), *filter(None, [record.get("input_data_uri")])]:
                _delete_under(s3, prefix, kept)
            shutil.rmtree(path.parent)
        pruned.append(record["execution_id"])
    return pruned


def parameter_values(definition: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Every parameter of the definition: its default unless overridden, in the definition's type."""
    declared = {parameter["Name"]: parameter for parameter in definition["Parameters"]}
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise DefinitionError(f"unknown pipeline parameters {unknown}; known: {', '.join(declared)}")
    values = {}
    for name, parameter in declared.items():
        value = overrides.get(name, parameter.get("DefaultValue"))
        values[name] = PARAMETER_TYPES[parameter["Type"]](value)
    return values


def check_supported(definition: Mapping[str, Any]) -> None:
    """Refuse, before anything runs, a definition with a step type, condition or expression the runner does not
    execute, or a reference to a parameter it does not declare or a step that has not run before it."""
    parameters = {parameter["Name"] for parameter in definition["Parameters"]}
    earlier: list[str] = []

    def check_steps(steps: list[Mapping[str, Any]]) -> None:
        for step in steps:
            if step["Type"] not in SUPPORTED_STEP_TYPES:
                raise DefinitionError(f"step {step['Name']}: the local runner does not run {step['Type']} steps")
            # A condition's branches are checked as the steps after it, where a branch step may refer to another.
            own = {key: value for key, value in step["Arguments"].items() if key not in ("IfSteps", "ElseSteps")}
            for reference in references(own):
                root, _, rest = reference.partition(".")
                known = {
                    "Parameters": rest in parameters,
                    "Execution": rest in EXECUTION_VARIABLES,
                    "Steps": rest.partition(".")[0] in earlier,
                }
                if not known.get(root, False):
                    raise DefinitionError(f"step {step['Name']}: cannot resolve {reference!r}")
            if step["Type"] == "Condition":
                for condition in step["Arguments"]["Conditions"]:
                    if condition["Type"] not in CONDITIONS:
                        raise DefinitionError(f"step {step['Name']}: unsupported condition {condition['Type']}")
            earlier.append(step["Name"])
            if step["Type"] == "Condition":
                check_steps(step["Arguments"].get("IfSteps", []) + step["Arguments"].get("ElseSteps", []))

    check_steps(definition["Steps"])


class LocalPipelineRun:
    def __init__(
        self,
        stage: LocalStage,
        definition: Mapping[str, Any],
        overrides: Mapping[str, Any],
        layout: LocalLayout,
        observer: RunObserver,
        seed: int = 0,
        data: list[Path] | None = None,
    ) -> None:
        """`data`: files to upload to the execution's own prefix under raw/, which its InputDataUri then names."""
        check_supported(definition)
        self.stage = stage
        self.definition = definition
        self.layout = layout
        self.observer = observer
        self.seed = seed
        self.data = data
        self.s3 = boto3.client("s3")
        self.sagemaker = boto3.client("sagemaker")
        execution_id = secrets.token_hex(6)
        arn = (
            f"arn:aws:sagemaker:{stage.region}:{LOCAL_ACCOUNT}:pipeline/{definition_name(stage)}/execution/"
            f"{execution_id}"
        )
        input_data_uri = None if data is None else stage.run_data_uri(execution_id)
        if input_data_uri is not None:
            overrides = {**overrides, spec.ParameterName.INPUT_DATA_URI: input_data_uri}
        self.result = RunResult(
            execution_id,
            arn,
            parameter_values(definition, overrides),
            layout.run_dir(execution_id),
            input_data_uri=input_data_uri,
        )
        self.properties: dict[str, dict[str, Any]] = {}
        self.property_files: dict[str, list[Mapping[str, Any]]] = {}
        self.scope = Scope(
            parameters=self.result.parameters,
            execution=dict(zip(EXECUTION_VARIABLES, (execution_id, arn), strict=True)),
            step_properties=self.properties,
            read_property_file=self.read_property_file,
        )

    def read_property_file(self, step: str, name: str) -> Any:
        for property_file in self.property_files.get(step, []):
            if property_file["PropertyFileName"] == name:
                output = self.properties[step]["ProcessingOutputConfig"]["Outputs"][property_file["OutputName"]]
                bucket, key = split_s3_uri(f"{output['S3Output']['S3Uri'].rstrip('/')}/{property_file['FilePath']}")
                document = json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
                self.result.reports[f"{step}.{name}"] = document
                return document
        raise DefinitionError(f"step {step} has no property file {name}")

    def run(self) -> RunResult:
        """Settle and prune earlier runs, upload the data, run the steps. A stop signal ends the running jobs, records
        the run as Stopped and goes on as RunStopped."""
        settle_abandoned_runs(self.layout)
        prune_runs(self.layout, self.s3, self.sagemaker)
        self.result.run_dir.mkdir(parents=True, exist_ok=True)
        with _run_lock(self.result.run_dir, blocking=True), jobs_stopped_by_signals():
            self.result.save()
            try:
                if self.data is not None:
                    self.stage.upload_data(self.s3, self.data, self.stage.run_data_uri(self.result.execution_id))
                self.run_steps(self.definition["Steps"])
            except StepFailed as failure:
                self.result.failure = failure
            except Exception as error:  # outside any step (the data upload): recorded, and reported by the caller
                self.result.failure = StepFailed(
                    self.result.current_step or BEFORE_FIRST_STEP, f"{type(error).__name__}: {error}"
                )
                raise
            except BaseException:
                self.result.stopped_in = self.result.current_step or BEFORE_FIRST_STEP
                self.result.stopped_jobs = stopped_jobs()
                raise
            finally:
                self.result.ended = _now()
                self.result.save()
        return self.result

    def run_steps(self, steps: list[Mapping[str, Any]]) -> None:
        for step in steps:
            self.result.current_step = step["Name"]
            self.result.save()
            self.observer.step_started(step["Name"], step["Type"])
            started = time.monotonic()
            try:
                detail = getattr(self, f"run_{step['Type'].lower()}")(step)
            except StepFailed:
                raise
            except (JobFailed, TuningFailed, DefinitionError, ClientError, FileNotFoundError) as error:
                log = error.log if isinstance(error, JobFailed) else None
                reason = error.reason if isinstance(error, JobFailed) else str(error)
                raise StepFailed(step["Name"], reason, log) from None
            except Exception as error:  # anything else is this step's failure too, named, not a traceback
                raise StepFailed(step["Name"], f"{type(error).__name__}: {error}") from error
            seconds = time.monotonic() - started
            self.result.steps.append({"name": step["Name"], "type": step["Type"], "seconds": round(seconds, 2)})
            self.observer.step_finished(step["Name"], seconds, detail)
            if step["Type"] == "Condition":
                # The chosen branch runs next, as its steps follow the condition in the execution's step list.
                holds = self.properties[step["Name"]]["Outcome"]
                self.run_steps(step["Arguments"]["IfSteps" if holds else "ElseSteps"])

    def job_root(self, job_name: str) -> ContainerRoot:
        return ContainerRoot(self.result.run_dir / job_name)

    def will_write(self, prefixes: Iterable[str]) -> None:
        """Record the S3 prefixes a step's jobs write before they write them: pruning finds them even when the run
        is killed in that step."""
        self.result.outputs.extend(prefix.rstrip("/") + "/" for prefix in prefixes)
        self.result.save()

    def run_processing(self, step: Mapping[str, Any]) -> str:
        arguments = self.scope.evaluate(step["Arguments"])
        job_name = f"{self.stage.config.resource_prefix}-{step['Name'].lower()}-{self.result.execution_id}"
        self.will_write(output["S3Output"]["S3Uri"] for output in arguments["ProcessingOutputConfig"]["Outputs"])
        run_processing_job(job_name, arguments, self.job_root(job_name), self.s3, cores=_cores())
        outputs = arguments["ProcessingOutputConfig"]["Outputs"]
        self.properties[step["Name"]] = {
            **arguments,
            "ProcessingJobName": job_name,
            "ProcessingJobStatus": "Completed",
            "ProcessingOutputConfig": {"Outputs": {output["OutputName"]: output for output in outputs}},
        }
        self.property_files[step["Name"]] = step.get("PropertyFiles", [])
        noun = "output" if len(outputs) == 1 else "outputs"
        return f"{len(outputs)} {noun} under {_common_prefix([o['S3Output']['S3Uri'] for o in outputs])}"

    def run_tuning(self, step: Mapping[str, Any]) -> str:
        arguments = self.scope.evaluate(step["Arguments"])
        tuning_job_name = f"{self.stage.config.resource_prefix}-tune-{self.result.execution_id}"
        objective = arguments["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"]["MetricName"]
        static = arguments["TrainingJobDefinition"]["StaticHyperParameters"]
        epochs = int(json_or_text(static.get("epochs", "0")))
        trials = plan_trials(tuning_job_name, arguments["HyperParameterTuningJobConfig"], self.seed)
        output_path = arguments["TrainingJobDefinition"]["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        self.will_write(f"{output_path}/{trial.name}" for trial in trials)
        self.observer.trials_planned(trials, epochs)
        results = run_tuning(
            tuning_job_name,
            arguments,
            self.job_root,
            self.s3,
            self.seed,
            on_trial_line=self.observer.trial_line,
            on_trial_done=self.observer.trial_finished,
        )
        ranked = summaries(results, objective)
        self.properties[step["Name"]] = {
            "HyperParameterTuningJobName": tuning_job_name,
            "TrainingJobSummaries": ranked,
            "BestTrainingJob": ranked[0],
        }
        best = ranked[0]
        self.result.best_trial = {
            "name": best["TrainingJobName"],
            "objective": best["FinalHyperParameterTuningJobObjectiveMetric"],
            "hyperparameters": {name: json_or_text(value) for name, value in best["TunedHyperParameters"].items()},
        }
        failed = sum(result.objective is None for result in results)
        value = best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
        return f"{len(results)} trials ({failed} failed), best {best['TrainingJobName']} {objective}={value:.4f}"

    def run_condition(self, step: Mapping[str, Any]) -> str:
        """All conditions must hold (SageMaker's semantics) for the if-branch to run."""
        details, holds = [], True
        for condition in step["Arguments"]["Conditions"]:
            left = self.scope.evaluate(condition["LeftValue"])
            right = self.scope.evaluate(condition["RightValue"])
            holds = CONDITIONS[condition["Type"]](left, right) and holds
            details.append(f"{left} {condition['Type']} {right}")
        self.properties[step["Name"]] = {"Outcome": holds}
        return f"{' and '.join(details)}: {holds}"

    def run_registermodel(self, step: Mapping[str, Any]) -> str:
        arguments = self.scope.evaluate(step["Arguments"])
        arguments["MetadataProperties"] = {"GeneratedBy": self.result.execution_arn}
        response = self.sagemaker.create_model_package(**arguments)
        arn = response["ModelPackageArn"]
        self.properties[step["Name"]] = {"ModelPackageArn": arn}
        self.result.model_package_arn = arn
        return f"{arn} ({arguments['ModelApprovalStatus']})"

    def run_fail(self, step: Mapping[str, Any]) -> str:
        raise StepFailed(step["Name"], str(self.scope.evaluate(step["Arguments"]["ErrorMessage"])))


def json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def definition_name(stage: LocalStage) -> str:
    return naming.pipeline_name(stage.config)


def _common_prefix(uris: list[str]) -> str:
    prefix = uris[0].rsplit("/", 1)[0]
    while not all(uri.startswith(prefix + "/") for uri in uris):
        prefix = prefix.rsplit("/", 1)[0]
    return prefix + "/"


def _cores() -> int:
    return os.cpu_count() or 1


def local_definition(stage: LocalStage, s3: Client, sagemaker: Client) -> dict[str, Any]:
    """Provision the stage's embedded resources and build its definition with their real names."""
    from pipelines.definition import pipeline_definition

    bundle_uri, runner_uri = stage.provision(s3, sagemaker)
    return pipeline_definition(stage.config, stage.targets(bundle_uri, runner_uri))


def sample_files(rows: int | None, directory: Path | None = None) -> list[Path]:
    """The bundled sample dataset (scikit-learn's digits, plus duplicate rows) as one CSV file, by default in the
    local directory's samples/ (no temporary directory to leave behind), one file per row count."""
    from pipelines.sample_data import write_digits_csv

    directory = directory or LocalLayout.from_environment().samples_dir
    target = directory / (f"digits-{rows}.csv" if rows else "digits.csv")
    try:
        # Written aside and moved in whole: a run that uploads the file meanwhile reads the complete one.
        partial = write_digits_csv(directory / f".{target.name}.{os.getpid()}.partial", rows=rows)
        os.replace(partial, target)
    except OSError as error:
        raise EmbeddedAwsError(f"cannot write the sample data to {directory}: {error.strerror}") from None
    return [target]


def expected_step_order(definition: Mapping[str, Any]) -> list[str]:
    """The step names on the success path, in execution order (a condition's if-branch after it)."""
    names = []
    for step in definition["Steps"]:
        names.append(step["Name"])
        if step["Type"] == "Condition":
            names.extend(branch["Name"] for branch in step["Arguments"].get("IfSteps", []))
    return names
