"""Runs a stage's SageMaker Pipeline definition on this machine, step by step, against the embedded AWS.

The runner executes the definition that `cdk deploy` deploys (built by pipelines/definition.py from
pipelines/spec.py), not a copy of it: the same steps in the same order, the same parameters and defaults, the same
step scripts and code bundle, the same container paths and S3 locations. Only where a job runs differs: a local
process stands in for each processing and training container (see pipelines/local/jobs.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from infra import naming
from infra.config import StageConfig
from infra.foundation.layout import DataPrefix
from infra.naming import BucketPurpose
from pipelines.bundle import BUILD_DIR, BUNDLE_NAME, STEP_RUNNER, build_bundle
from pipelines.definition import PipelineTargets, pipeline_definition
from pipelines.local.aws import LOCAL_ACCOUNT
from pipelines.local.expressions import DefinitionError, Scope, references
from pipelines.local.jobs import ContainerRoot, JobFailed, run_processing_job
from pipelines.local.layout import LocalLayout
from pipelines.local.tuning import Trial, TrialResult, TuningFailed, plan_trials, run_tuning, summaries
from pipelines.registry import split_s3_uri

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
EXECUTION_VARIABLES = ("PipelineExecutionId", "PipelineExecutionArn")


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

    def replace_raw_data(self, s3: Client, files: list[Path]) -> str:
        """Make the data bucket's raw/ prefix hold exactly these files (`aws s3 sync --delete`); returns its URI."""
        bucket = self.bucket(BucketPurpose.DATA)
        stale = [
            {"Key": item["Key"]}
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=DataPrefix.RAW)
            for item in page.get("Contents", [])
        ]
        if stale:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": stale})
        for path in files:
            s3.upload_file(str(path), bucket, f"{DataPrefix.RAW}{path.name}")
        return f"s3://{bucket}/{DataPrefix.RAW}"


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
    # The step that was running when the run was stopped (Ctrl-C, SIGTERM), if it was.
    stopped_in: str | None = None
    # Property files the run read, by "<step>.<file name>" (the evaluation report among them).
    reports: dict[str, Any] = field(default_factory=dict)

    @property
    def registered_version(self) -> str:
        """The registered version's number, as `mlops models` commands take it."""
        assert self.model_package_arn is not None, "the run registered no version"
        return self.model_package_arn.rsplit("/", 1)[-1]

    def record(self) -> dict[str, Any]:
        return {
            "execution_id": self.execution_id,
            "execution_arn": self.execution_arn,
            "status": "Failed" if self.failure else "Stopped" if self.stopped_in else "Succeeded",
            "failure": {"step": self.failure.step, "reason": self.failure.reason} if self.failure else None,
            "stopped_in": self.stopped_in,
            "parameters": self.parameters,
            "steps": self.steps,
            "best_trial": self.best_trial,
            "reports": self.reports,
            "model_package_arn": self.model_package_arn,
        }


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
            for reference in references(step["Arguments"]):
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
    ) -> None:
        check_supported(definition)
        self.stage = stage
        self.definition = definition
        self.observer = observer
        self.seed = seed
        self.s3 = boto3.client("s3")
        self.sagemaker = boto3.client("sagemaker")
        execution_id = secrets.token_hex(6)
        arn = (
            f"arn:aws:sagemaker:{stage.region}:{LOCAL_ACCOUNT}:pipeline/{definition_name(stage)}/execution/"
            f"{execution_id}"
        )
        self.result = RunResult(
            execution_id, arn, parameter_values(definition, overrides), layout.run_dir(execution_id)
        )
        self.properties: dict[str, dict[str, Any]] = {}
        self.current_step: str | None = None
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
        self.result.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.run_steps(self.definition["Steps"])
        except StepFailed as failure:
            self.result.failure = failure
        except BaseException:
            self.result.stopped_in = self.current_step or "(before the first step)"
            raise
        finally:
            (self.result.run_dir / RUN_RECORD).write_text(json.dumps(self.result.record(), indent=1, default=str))
        return self.result

    def run_steps(self, steps: list[Mapping[str, Any]]) -> None:
        for step in steps:
            self.current_step = step["Name"]
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

    def run_processing(self, step: Mapping[str, Any]) -> str:
        arguments = self.scope.evaluate(step["Arguments"])
        job_name = f"{self.stage.config.resource_prefix}-{step['Name'].lower()}-{self.result.execution_id}"
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
        self.observer.trials_planned(
            plan_trials(tuning_job_name, arguments["HyperParameterTuningJobConfig"], self.seed), epochs
        )
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
    bundle_uri, runner_uri = stage.provision(s3, sagemaker)
    return pipeline_definition(stage.config, stage.targets(bundle_uri, runner_uri))


def sample_files(rows: int | None, directory: Path | None = None) -> list[Path]:
    """The bundled sample dataset (scikit-learn's digits, plus duplicate rows) as one CSV file."""
    from pipelines.sample_data import write_digits_csv

    directory = directory or Path(tempfile.mkdtemp(prefix="mlops-sample-"))
    return [write_digits_csv(directory / "digits.csv", rows=rows)]


def expected_step_order(definition: Mapping[str, Any]) -> list[str]:
    """The step names on the success path, in execution order (a condition's if-branch after it)."""
    names = []
    for step in definition["Steps"]:
        names.append(step["Name"])
        if step["Type"] == "Condition":
            names.extend(branch["Name"] for branch in step["Arguments"].get("IfSteps", []))
    return names
