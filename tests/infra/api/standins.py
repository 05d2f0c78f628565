"""Typed stand-ins for everything a template leaves to deploy or run time, so that its API payloads can be validated.

Three languages meet in our templates, each replaced here by realistic values of the right type and format:
- CloudFormation intrinsics and pseudo parameters (CfnResolver): what CloudFormation would put there at deploy time;
- SageMaker Pipelines expressions, `{"Get": …}`, `{"Std:Join": …}` (PipelineExpressions): what the pipeline would
  pass to the job's API at run time;
- Step Functions paths and intrinsic functions in `….$` fields (StatesEvaluator): what the state would send.

Where a value varies at deploy or run time, the stand-in is the MOST DEMANDING value its source allows (the longest
name, the longest region), so that limits are tested for real rather than for a convenient example. Every construct
that has no stand-in raises StandInError: nothing is silently left out or passed through.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import string
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

# --- deploy time: accounts, regions, generated names ------------------------------------------------------------

ACCOUNT = "123456789012"
# A common region, and one of the longest region names (14 characters), for stacks synthesized without a region:
# names and URIs that embed the region are longest there.
REGIONS = ("eu-west-1", "ap-southeast-2")
PARTITION = "aws"
URL_SUFFIX = "amazonaws.com"
UNKNOWN_ENVIRONMENT = "aws://unknown-account/unknown-region"


class StandInError(Exception):
    """A value in a template or definition that has no stand-in: extend the rules here, do not skip it."""


@dataclass(frozen=True)
class Environment:
    account: str
    region: str
    partition: str = PARTITION
    url_suffix: str = URL_SUFFIX

    def __str__(self) -> str:
        return f"{self.account}/{self.region}"


def environments(stack_environment: str) -> list[Environment]:
    """The environments a stack is checked in: its own, or every stand-in region when synthesized without one."""
    account, _, region = stack_environment.removeprefix("aws://").partition("/")
    if account == "unknown-account" or region == "unknown-region":
        return [
            Environment(
                ACCOUNT if account == "unknown-account" else account, r if region == "unknown-region" else region
            )
            for r in REGIONS
        ]
    return [Environment(account, region)]


@dataclass(frozen=True)
class StackTemplate:
    """One stack as CloudFormation deploys it: the name other stacks refer to it by, its template, its environment."""

    display_name: str
    stack_name: str
    template: dict[str, Any]
    environment: str = UNKNOWN_ENVIRONMENT

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.template.get("Resources", {})

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {logical_id: r for logical_id, r in self.resources.items() if r["Type"] == resource_type}


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\0".join(parts).encode()).digest()


def generated_suffix(*parts: str, length: int = 12) -> str:
    """The random suffix CloudFormation appends to names it generates; derived from `parts` so runs repeat."""
    alphabet = string.ascii_uppercase + string.digits
    return "".join(alphabet[byte % len(alphabet)] for byte in _digest(*parts)[:length])


def generated_name(stack_name: str, logical_id: str, limit: int, *, with_stack: bool, lowercase: bool = False) -> str:
    """A physical name CloudFormation generates for a resource without one: `<stack>-<logical id>-<random>` (or
    `<logical id>-<random>` for types that leave the stack name out), its parts cut short to stay within the type's
    name limit, as CloudFormation does. The stand-in uses the whole limit where the parts are long enough."""
    suffix = generated_suffix(stack_name, logical_id)
    room = limit - len(suffix) - 1
    if with_stack:
        stack_room = max(room // 2 - 1, room - 1 - len(logical_id))
        stack_part = stack_name[:stack_room]
        stem = f"{stack_part}-{logical_id[: room - len(stack_part) - 1]}"
    else:
        stem = logical_id[:room]
    name = f"{stem}-{suffix}"
    return name.lower() if lowercase else name


@dataclass(frozen=True)
class NamePolicy:
    """How a resource type is named: its name property, and how CloudFormation generates a name when it has none."""

    prop: str
    limit: int
    with_stack: bool = True
    lowercase: bool = False


# Name limits are the services' own (CloudFormation generates names within them).
NAMES: dict[str, NamePolicy] = {
    "AWS::IAM::Role": NamePolicy("RoleName", 64),
    "AWS::S3::Bucket": NamePolicy("BucketName", 63, lowercase=True),
    "AWS::SNS::Topic": NamePolicy("TopicName", 256),
    "AWS::KMS::Alias": NamePolicy("AliasName", 256),
    "AWS::Logs::LogGroup": NamePolicy("LogGroupName", 512),
    "AWS::Lambda::Function": NamePolicy("FunctionName", 64),
    "AWS::CloudWatch::Alarm": NamePolicy("AlarmName", 255),
    "AWS::CloudWatch::CompositeAlarm": NamePolicy("AlarmName", 255),
    "AWS::CloudWatch::Dashboard": NamePolicy("DashboardName", 255),
    "AWS::Events::Rule": NamePolicy("Name", 64),
    "AWS::ECR::Repository": NamePolicy("RepositoryName", 256, lowercase=True),
    "AWS::CodePipeline::Pipeline": NamePolicy("Name", 100),
    "AWS::CodeBuild::Project": NamePolicy("Name", 255, with_stack=False),
    "AWS::StepFunctions::StateMachine": NamePolicy("StateMachineName", 80, with_stack=False),
    "AWS::SageMaker::Model": NamePolicy("ModelName", 63, with_stack=False),
    "AWS::SageMaker::EndpointConfig": NamePolicy("EndpointConfigName", 63, with_stack=False),
    "AWS::SageMaker::Endpoint": NamePolicy("EndpointName", 63, with_stack=False),
    "AWS::SageMaker::ModelPackageGroup": NamePolicy("ModelPackageGroupName", 63, with_stack=False),
    "AWS::SageMaker::Pipeline": NamePolicy("PipelineName", 256, with_stack=False),
    "AWS::ApplicationAutoScaling::ScalingPolicy": NamePolicy("PolicyName", 256),
}

_NO_VALUE = object()  # AWS::NoValue: the property is removed


class CfnResolver:
    """Resolves CloudFormation intrinsics in one stack, as deployed in one environment.

    stacks: every stack of the assembly by stack name, for Fn::GetStackOutput and Fn::ImportValue.
    """

    def __init__(self, stack: StackTemplate, environment: Environment, stacks: Mapping[str, StackTemplate]) -> None:
        self.stack = stack
        self.env = environment
        self.stacks = stacks
        self._names: dict[str, str] = {}

    # values

    def resolve(self, value: Any) -> Any:
        resolved = self._resolve(value)
        if resolved is _NO_VALUE:
            raise StandInError("AWS::NoValue at the top of a value")
        return resolved

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (self._resolve(v) for v in value) if item is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, argument), *_ = value.items()
            if key == "Ref":
                return self.ref(argument)
            if key.startswith("Fn::"):
                handler = self._INTRINSICS.get(key)
                if handler is None:
                    raise StandInError(f"{self.stack.display_name}: no stand-in for {key}")
                return handler(self, argument)
        return {k: v for k, v in ((k, self._resolve(v)) for k, v in value.items()) if v is not _NO_VALUE}

    def _text(self, value: Any) -> str:
        resolved = self.resolve(value)
        if isinstance(resolved, bool):
            return "true" if resolved else "false"
        if isinstance(resolved, int | float):
            return str(resolved)
        if not isinstance(resolved, str):
            raise StandInError(f"{self.stack.display_name}: {value!r} is not a string ({resolved!r})")
        return resolved

    def _join(self, argument: list[Any]) -> str:
        separator, parts = argument
        return separator.join(self._text(part) for part in self.resolve(parts))

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        values = {name: self._text(v) for name, v in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            name = match[1]
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in values:
                return values[name]
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return self._text(self.get_att(logical_id, attribute))
            return self._text(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", substitute, text)

    def _find_in_map(self, argument: list[Any]) -> Any:
        name, top, second, *default = (self.resolve(a) if i < 3 else a for i, a in enumerate(argument))
        mapping = self.stack.template.get("Mappings", {}).get(name)
        if mapping is None:
            raise StandInError(f"{self.stack.display_name}: no mapping {name}")
        try:
            return mapping[top][second]
        except KeyError:
            if default:
                return self.resolve(default[0]["DefaultValue"])
            raise StandInError(f"{self.stack.display_name}: mapping {name} has no {top}/{second}") from None

    def _select(self, argument: list[Any]) -> Any:
        index, items = self.resolve(argument)
        return items[int(index)]

    def _split(self, argument: list[Any]) -> list[str]:
        separator, text = argument
        return self._text(text).split(separator)

    def _get_stack_output(self, argument: dict[str, Any]) -> Any:
        reference = self.resolve(argument)
        if reference.get("Region", self.env.region) != self.env.region:
            raise StandInError(f"{self.stack.display_name}: an output of another region: {reference}")
        return self.output(self._stack_named(reference["StackName"]), reference["OutputName"])

    def _import_value(self, argument: Any) -> Any:
        name = self._text(argument)
        for stack in self.stacks.values():
            other = self._resolver_for(stack)
            for output_name, output in stack.template.get("Outputs", {}).items():
                if "Export" in output and other._text(output["Export"]["Name"]) == name:
                    return self.output(stack, output_name)
        raise StandInError(f"{self.stack.display_name}: no stack exports {name!r}")

    def _stack_named(self, stack_name: str) -> StackTemplate:
        if stack_name not in self.stacks:
            raise StandInError(f"{self.stack.display_name}: no stack named {stack_name!r} in the assembly")
        return self.stacks[stack_name]

    def _resolver_for(self, stack: StackTemplate) -> CfnResolver:
        if stack.stack_name == self.stack.stack_name:
            return self
        own = [e for e in environments(stack.environment) if e.region == self.env.region]
        return CfnResolver(stack, own[0] if own else self.env, self.stacks)

    def output(self, stack: StackTemplate, output_name: str) -> Any:
        outputs = stack.template.get("Outputs", {})
        if output_name not in outputs:
            raise StandInError(f"{self.stack.display_name}: stack {stack.stack_name} has no output {output_name}")
        return self._resolver_for(stack).resolve(outputs[output_name]["Value"])

    def _if(self, argument: list[Any]) -> Any:
        condition, when_true, when_false = argument
        return self._resolve(when_true if self._condition(condition) else when_false)

    def _condition(self, name: str) -> bool:
        conditions = self.stack.template.get("Conditions", {})
        if name not in conditions:
            raise StandInError(f"{self.stack.display_name}: no condition {name}")
        return bool(self._evaluate_condition(conditions[name]))

    def _evaluate_condition(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            (key, argument), *_ = value.items()
            if key == "Condition":
                return self._condition(argument)
            if key == "Fn::Equals":
                left, right = (self._evaluate_condition(a) for a in argument)
                return left == right
            if key == "Fn::Not":
                return not self._evaluate_condition(argument[0])
            if key == "Fn::And":
                return all(self._evaluate_condition(a) for a in argument)
            if key == "Fn::Or":
                return any(self._evaluate_condition(a) for a in argument)
        return self.resolve(value)

    def _base64(self, argument: Any) -> str:
        return base64.b64encode(self._text(argument).encode()).decode()

    def _get_azs(self, argument: Any) -> list[str]:
        region = self._text(argument) or self.env.region
        return [f"{region}{zone}" for zone in "abc"]

    _INTRINSICS: dict[str, Callable[[CfnResolver, Any], Any]] = {
        "Fn::Join": _join,
        "Fn::Sub": _sub,
        "Fn::FindInMap": _find_in_map,
        "Fn::Select": _select,
        "Fn::Split": _split,
        "Fn::GetStackOutput": _get_stack_output,
        "Fn::ImportValue": _import_value,
        "Fn::If": _if,
        "Fn::Base64": _base64,
        "Fn::GetAZs": _get_azs,
        "Fn::GetAtt": lambda self, argument: self.get_att(
            *(argument if isinstance(argument, list) else argument.split(".", 1))
        ),
    }

    # references

    def pseudo(self, name: str) -> Any:
        values = {
            "AWS::AccountId": self.env.account,
            "AWS::Region": self.env.region,
            "AWS::Partition": self.env.partition,
            "AWS::URLSuffix": self.env.url_suffix,
            "AWS::StackName": self.stack.stack_name,
            "AWS::StackId": f"arn:{self.env.partition}:cloudformation:{self.env.region}:{self.env.account}:stack/"
            f"{self.stack.stack_name}/{uuid.UUID(bytes=_digest(self.stack.stack_name)[:16], version=4)}",
            "AWS::NotificationARNs": [],
            "AWS::NoValue": _NO_VALUE,
        }
        if name not in values:
            raise StandInError(f"no stand-in for the pseudo parameter {name}")
        return values[name]

    def ref(self, name: str) -> Any:
        if name.startswith("AWS::"):
            return self.pseudo(name)
        parameters = self.stack.template.get("Parameters", {})
        if name in parameters:
            if "Default" not in parameters[name]:
                raise StandInError(f"{self.stack.display_name}: parameter {name} has no default")
            return parameters[name]["Default"]
        resource_type = self._type(name)
        refs = _REFS.get(resource_type)
        if refs is None:
            raise StandInError(f"{self.stack.display_name}: no stand-in for Ref of {resource_type} ({name})")
        return refs(self, name)

    def get_att(self, logical_id: str, attribute: str) -> Any:
        resource_type = self._type(logical_id)
        attributes = _ATTRIBUTES.get(resource_type, {})
        if attribute not in attributes:
            raise StandInError(
                f"{self.stack.display_name}: no stand-in for Fn::GetAtt {resource_type}.{attribute} ({logical_id})"
            )
        return attributes[attribute](self, logical_id)

    def _type(self, logical_id: str) -> str:
        if logical_id not in self.stack.resources:
            raise StandInError(f"{self.stack.display_name}: no resource {logical_id}")
        return self.stack.resources[logical_id]["Type"]

    def name(self, logical_id: str) -> str:
        """The resource's physical name: its name property, or the one CloudFormation generates."""
        if logical_id not in self._names:
            resource = self.stack.resources[logical_id]
            policy = NAMES.get(resource["Type"])
            if policy is None:
                raise StandInError(f"{self.stack.display_name}: no naming rule for {resource['Type']} ({logical_id})")
            given = resource.get("Properties", {}).get(policy.prop)
            self._names[logical_id] = (
                self._text(given)
                if given is not None
                else generated_name(
                    self.stack.stack_name,
                    logical_id,
                    policy.limit,
                    with_stack=policy.with_stack,
                    lowercase=policy.lowercase,
                )
            )
        return self._names[logical_id]

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return (
            f"arn:{self.env.partition}:{service}:{self.env.region if region else ''}:"
            f"{self.env.account if account else ''}:{resource}"
        )

    def key_id(self, logical_id: str) -> str:
        return str(uuid.UUID(bytes=_digest(self.stack.stack_name, logical_id, self.env.region)[:16], version=4))

    def role_arn(self, logical_id: str) -> str:
        path = self._text(self.stack.resources[logical_id].get("Properties", {}).get("Path", "/"))
        return self.arn("iam", f"role{path}{self.name(logical_id)}", region=False)

    def scalable_target_id(self, logical_id: str) -> str:
        """What Ref returns for a scalable target: `<resource id>|<scalable dimension>|<service namespace>`."""
        properties = self.resolve(self.stack.resources[logical_id]["Properties"])
        return "|".join(properties[p] for p in ("ResourceId", "ScalableDimension", "ServiceNamespace"))


def _sagemaker_arn(kind: str) -> Callable[[CfnResolver, str], str]:
    # SageMaker ARNs carry the name in lower case.
    return lambda r, i: r.arn("sagemaker", f"{kind}/{r.name(i).lower()}")


_REFS: dict[str, Callable[[CfnResolver, str], Any]] = {
    "AWS::IAM::Role": CfnResolver.name,
    "AWS::S3::Bucket": CfnResolver.name,
    "AWS::KMS::Key": CfnResolver.key_id,
    "AWS::KMS::Alias": CfnResolver.name,
    "AWS::SNS::Topic": lambda r, i: r.arn("sns", r.name(i)),
    "AWS::Logs::LogGroup": CfnResolver.name,
    "AWS::Lambda::Function": CfnResolver.name,
    "AWS::CloudWatch::Alarm": CfnResolver.name,
    "AWS::CloudWatch::CompositeAlarm": CfnResolver.name,
    "AWS::CloudWatch::Dashboard": CfnResolver.name,
    "AWS::Events::Rule": CfnResolver.name,
    "AWS::ECR::Repository": CfnResolver.name,
    "AWS::CodePipeline::Pipeline": CfnResolver.name,
    "AWS::CodeBuild::Project": CfnResolver.name,
    "AWS::StepFunctions::StateMachine": lambda r, i: r.arn("states", f"stateMachine:{r.name(i)}"),
    "AWS::SageMaker::Model": _sagemaker_arn("model"),
    "AWS::SageMaker::EndpointConfig": _sagemaker_arn("endpoint-config"),
    "AWS::SageMaker::Endpoint": _sagemaker_arn("endpoint"),
    "AWS::SageMaker::ModelPackageGroup": _sagemaker_arn("model-package-group"),
    "AWS::SageMaker::Pipeline": CfnResolver.name,
    "AWS::ApplicationAutoScaling::ScalableTarget": CfnResolver.scalable_target_id,
    "AWS::ApplicationAutoScaling::ScalingPolicy": lambda r, i: r.arn(
        "autoscaling", f"scalingPolicy:{r.key_id(i)}:resource/sagemaker/{r.name(i)}"
    ),
}

_ATTRIBUTES: dict[str, dict[str, Callable[[CfnResolver, str], Any]]] = {
    "AWS::IAM::Role": {
        "Arn": CfnResolver.role_arn,
        "RoleId": lambda r, i: "AROA" + generated_suffix(r.stack.stack_name, i, length=17),
    },
    "AWS::S3::Bucket": {
        "Arn": lambda r, i: r.arn("s3", r.name(i), region=False, account=False),
        "DomainName": lambda r, i: f"{r.name(i)}.s3.{r.env.url_suffix}",
        "RegionalDomainName": lambda r, i: f"{r.name(i)}.s3.{r.env.region}.{r.env.url_suffix}",
    },
    "AWS::KMS::Key": {
        "Arn": lambda r, i: r.arn("kms", f"key/{r.key_id(i)}"),
        "KeyId": CfnResolver.key_id,
    },
    "AWS::SNS::Topic": {
        "TopicArn": lambda r, i: r.arn("sns", r.name(i)),
        "TopicName": CfnResolver.name,
    },
    "AWS::Logs::LogGroup": {"Arn": lambda r, i: r.arn("logs", f"log-group:{r.name(i)}:*")},
    "AWS::Lambda::Function": {"Arn": lambda r, i: r.arn("lambda", f"function:{r.name(i)}")},
    "AWS::CloudWatch::Alarm": {"Arn": lambda r, i: r.arn("cloudwatch", f"alarm:{r.name(i)}")},
    "AWS::CloudWatch::CompositeAlarm": {"Arn": lambda r, i: r.arn("cloudwatch", f"alarm:{r.name(i)}")},
    "AWS::Events::Rule": {"Arn": lambda r, i: r.arn("events", f"rule/{r.name(i)}")},
    "AWS::ECR::Repository": {
        "Arn": lambda r, i: r.arn("ecr", f"repository/{r.name(i)}"),
        "RepositoryUri": lambda r, i: f"{r.env.account}.dkr.ecr.{r.env.region}.{r.env.url_suffix}/{r.name(i)}",
    },
    "AWS::CodeBuild::Project": {"Arn": lambda r, i: r.arn("codebuild", f"project/{r.name(i)}")},
    "AWS::StepFunctions::StateMachine": {
        "Arn": lambda r, i: r.arn("states", f"stateMachine:{r.name(i)}"),
        "Name": CfnResolver.name,
    },
    "AWS::SageMaker::Model": {"ModelName": CfnResolver.name, "ModelArn": _sagemaker_arn("model")},
    "AWS::SageMaker::EndpointConfig": {
        "EndpointConfigName": CfnResolver.name,
        "EndpointConfigArn": _sagemaker_arn("endpoint-config"),
    },
    "AWS::SageMaker::Endpoint": {"EndpointName": CfnResolver.name, "EndpointArn": _sagemaker_arn("endpoint")},
    "AWS::SageMaker::ModelPackageGroup": {"ModelPackageGroupArn": _sagemaker_arn("model-package-group")},
    "AWS::SageMaker::Pipeline": {"PipelineArn": _sagemaker_arn("pipeline")},
}


# --- run time: SageMaker Pipelines -------------------------------------------------------------------------------

# An execution id as SageMaker generates it: 12 lowercase letters and digits.
PIPELINE_EXECUTION_ID = "0d8wqf2ykmx3"
# Job names SageMaker Pipelines generates for its steps, at each API's maximum length.
PROCESSING_JOB_NAME = "pipelines-" + "0d8wqf2ykmx3-Preprocess-" + "a" * 29  # 63, CreateProcessingJob's maximum
TRAINING_JOB_NAME = "pipelines-" + "0d8wqf2ykmx3-Train-" + "b" * 34  # 63
TUNING_JOB_NAME = "0d8wqf2ykmx3-Tune-" + "c" * 14  # 32, CreateHyperParameterTuningJob's maximum
# A tuning job names its trials `<tuning job name>-<3-digit trial>-<8 hex>`.
TRIAL_JOB_NAME = f"{TUNING_JOB_NAME}-008-3f2a9c1e"
# The value a pipeline reads from a property file (JsonGet): our reports hold metrics, numbers.
PROPERTY_FILE_VALUE = 0.9412


def parameter_values(parameters: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(label, {name: value}) for every run worth checking: the defaults, then each EnumValues entry of each
    parameter that has them (the others at their defaults)."""
    types = {"String": str, "Integer": int, "Float": float, "Boolean": bool}
    defaults: dict[str, Any] = {}
    for parameter in parameters:
        if "DefaultValue" not in parameter:
            raise StandInError(f"pipeline parameter {parameter['Name']} has no default to stand in for")
        kind = types.get(parameter["Type"])
        if kind is None:
            raise StandInError(f"pipeline parameter {parameter['Name']} has the unknown type {parameter['Type']}")
        value = parameter["DefaultValue"]
        defaults[parameter["Name"]] = float(value) if kind is float else value
    yield "defaults", defaults
    for parameter in parameters:
        for value in parameter.get("EnumValues", []):
            if value != parameter["DefaultValue"]:
                yield f"{parameter['Name']}={value}", {**defaults, parameter["Name"]: value}


_PROPERTY_TOKEN = re.compile(r"\.?([A-Za-z0-9_]+)|\[(\d+)\]|\['([^']*)'\]")

# Step properties that do not echo the step's request: they come from the job's description once it ran.
# Keyed by step type and property path (list positions and names dropped).
STEP_RESULTS: dict[tuple[str, str], Callable[[PipelineExpressions, str], Any]] = {
    ("Processing", "ProcessingJobName"): lambda p, step: PROCESSING_JOB_NAME,
    ("Processing", "ProcessingJobArn"): lambda p, step: p.arn(f"processing-job/{PROCESSING_JOB_NAME.lower()}"),
    ("Training", "TrainingJobName"): lambda p, step: TRAINING_JOB_NAME,
    ("Training", "TrainingJobArn"): lambda p, step: p.arn(f"training-job/{TRAINING_JOB_NAME.lower()}"),
    ("Training", "ModelArtifacts.S3ModelArtifacts"): lambda p, step: (
        p.request(step)["OutputDataConfig"]["S3OutputPath"].rstrip("/") + f"/{TRAINING_JOB_NAME}/output/model.tar.gz"
    ),
    ("Tuning", "HyperParameterTuningJobName"): lambda p, step: TUNING_JOB_NAME,
    ("Tuning", "HyperParameterTuningJobArn"): lambda p, step: p.arn(f"hyper-parameter-tuning-job/{TUNING_JOB_NAME}"),
    ("Tuning", "TrainingJobSummaries.TrainingJobName"): lambda p, step: TRIAL_JOB_NAME,
    ("Tuning", "BestTrainingJob.TrainingJobName"): lambda p, step: TRIAL_JOB_NAME,
    ("RegisterModel", "ModelPackageArn"): lambda p, step: p.arn(
        f"model-package/{p.request(step)['ModelPackageGroupName'].lower()}/1000000"
    ),
}


class PipelineExpressions:
    """Evaluates a pipeline definition's expressions for one run: its parameter values and a generated execution."""

    def __init__(
        self, definition: dict[str, Any], parameters: Mapping[str, Any], environment: Environment, pipeline_name: str
    ) -> None:
        self.definition = definition
        self.parameters = parameters
        self.env = environment
        self.pipeline_name = pipeline_name
        self.steps = {step["Name"]: step for step in iter_steps(definition["Steps"])}
        self._requests: dict[str, dict[str, Any]] = {}

    def arn(self, resource: str) -> str:
        return f"arn:{self.env.partition}:sagemaker:{self.env.region}:{self.env.account}:{resource}"

    def request(self, step_name: str) -> dict[str, Any]:
        """The step's Arguments with every expression evaluated: the API request SageMaker sends."""
        if step_name not in self._requests:
            if step_name not in self.steps:
                raise StandInError(f"no step {step_name!r} in the pipeline")
            self._requests[step_name] = self.evaluate(self.steps[step_name]["Arguments"])
        return self._requests[step_name]

    def evaluate(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.evaluate(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, argument), *_ = value.items()
            if key == "Get":
                return self._get(argument)
            if key == "Std:Join":
                return argument["On"].join(_pipeline_text(self.evaluate(v)) for v in argument["Values"])
            if key == "Std:JsonGet":
                self.evaluate(argument["PropertyFile"])
                return PROPERTY_FILE_VALUE
            if key.startswith("Std:"):
                raise StandInError(f"no stand-in for the pipeline function {key}")
        return {k: self.evaluate(v) for k, v in value.items()}

    def _get(self, path: str) -> Any:
        head, _, rest = path.partition(".")
        if head == "Parameters":
            if rest not in self.parameters:
                raise StandInError(f"{path}: the pipeline has no parameter {rest}")
            return self.parameters[rest]
        if head == "Execution":
            execution = {
                "PipelineExecutionId": PIPELINE_EXECUTION_ID,
                "PipelineExecutionArn": self.arn(
                    f"pipeline/{self.pipeline_name.lower()}/execution/{PIPELINE_EXECUTION_ID}"
                ),
                "PipelineName": self.pipeline_name,
                "PipelineArn": self.arn(f"pipeline/{self.pipeline_name.lower()}"),
                "StartDateTime": "2024-06-01T04:00:00.000Z",
                "CurrentDateTime": "2024-06-01T04:12:34.567Z",
            }
            if rest not in execution:
                raise StandInError(f"no stand-in for {path}")
            return execution[rest]
        if head == "Steps":
            step_name, _, property_path = rest.partition(".")
            return self._step_property(step_name, property_path)
        raise StandInError(f"no stand-in for {path}")

    def _step_property(self, step_name: str, property_path: str) -> Any:
        if step_name not in self.steps:
            raise StandInError(f"Steps.{step_name}: no such step")
        step_type = self.steps[step_name]["Type"]
        tokens = [(m[1], m[2], m[3]) for m in _PROPERTY_TOKEN.finditer(property_path)]
        if property_path.startswith("PropertyFiles."):
            return {"PropertyFile": property_path.split(".", 1)[1]}
        # Most properties echo the request (its output locations, its channels): read them there.
        current: Any = self.request(step_name)
        try:
            for name, index, key in tokens:
                if name:
                    current = current[name]
                elif index:
                    current = current[int(index)]
                else:
                    current = _named_item(current, key)
            return current
        except (KeyError, IndexError, TypeError):
            pass
        normalized = ".".join(name for name, _, _ in tokens if name)
        result = STEP_RESULTS.get((step_type, normalized))
        if result is None:
            raise StandInError(f"Steps.{step_name}.{property_path}: no stand-in for this {step_type} step property")
        return result(self, step_name)


def iter_steps(steps: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every step, those inside Condition steps included."""
    for step in steps:
        yield step
        if step["Type"] == "Condition":
            yield from iter_steps(step["Arguments"].get("IfSteps", []))
            yield from iter_steps(step["Arguments"].get("ElseSteps", []))


def _named_item(items: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """`Outputs['train']`: the item whose name (OutputName, ChannelName …) is `key`."""
    for item in items:
        if any(k.endswith("Name") and v == key for k, v in item.items()):
            return item
    raise KeyError(key)


def _pipeline_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise StandInError(f"Std:Join of {value!r}")


# --- run time: Step Functions ------------------------------------------------------------------------------------

# Names Step Functions gives an execution, by who starts it. StartExecution allows up to 80 characters, any but
# whitespace, brackets, wildcards and " # % \ ^ | ~ ` $ & , ; : /, so `_` and `.` are allowed.
EXECUTION_NAMES = {
    "started by EventBridge (a UUID)": "6f1c2b9e-4d3a-4f7e-9a51-0c8d2e7b3f64",
    "80 characters (StartExecution's maximum)": "manual-rerun-2024-06-01-" + "0123456789abcdef" * 3 + "retry-01",
    "with '_' and '.', which StartExecution allows": "nightly_2024.06.01",
}
# The error a Catch hands on: Step Functions caps a cause at 32768 characters.
CAUGHT_ERROR = {"Error": "States.TaskFailed", "Cause": json.dumps({"FailureReason": "x" * 32747})}
assert len(CAUGHT_ERROR["Cause"]) == 32768
assert max(len(name) for name in EXECUTION_NAMES.values()) == 80


# An object uploaded under the batch input prefix, and what an operator would start an execution with by hand.
UPLOADED_OBJECT = "2024/06/01/records-00001.csv"
OPERATOR_INPUT_KEY = f"batch-transform/input/{UPLOADED_OBJECT}"


def context_object(state_machine_arn: str, execution_name: str, execution_input: Any, state: str) -> dict[str, Any]:
    """The Step Functions context object (`$$`) of a standard workflow's execution."""
    _, _, rest = state_machine_arn.partition(":stateMachine:")
    execution_arn = state_machine_arn.replace(":stateMachine:", ":execution:") + f":{execution_name}"
    return {
        "Execution": {
            "Id": execution_arn,
            "Name": execution_name,
            "Input": execution_input,
            "StartTime": "2024-06-01T04:00:00.000Z",
            "RoleArn": "",
            "RedriveCount": 0,
        },
        "StateMachine": {"Id": state_machine_arn, "Name": rest},
        "State": {"Name": state, "EnteredTime": "2024-06-01T04:00:00.123Z", "RetryCount": 0},
        "Task": {"Token": "AQCEAAAAKgAAAAMAAAAA" + "A" * 600},
    }


@dataclass
class StatesEvaluator:
    """Evaluates a state's Parameters: fields ending in `.$` hold a path or an intrinsic function."""

    state_input: Any
    context: dict[str, Any]
    _uuids: Iterator[int] = field(default_factory=lambda: iter(range(1, 1_000_000)))

    def parameters(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.parameters(item) for item in value]
        if not isinstance(value, dict):
            return value
        evaluated = {}
        for key, item in value.items():
            if key.endswith(".$"):
                evaluated[key[:-2]] = self.expression(item)
            else:
                evaluated[key] = self.parameters(item)
        return evaluated

    def expression(self, text: str) -> Any:
        parser = _IntrinsicParser(text, self)
        value = parser.value()
        parser.end()
        return value

    def path(self, path: str) -> Any:
        root, rest = (self.context, path[2:]) if path.startswith("$$") else (self.state_input, path[1:])
        current = root
        for name, index, key in (m.groups() for m in re.finditer(r"\.([A-Za-z0-9_\-]+)|\[(\d+)\]|\['([^']*)'\]", rest)):
            try:
                current = current[int(index)] if index else current[name or key]
            except (KeyError, IndexError, TypeError):
                raise StandInError(f"{path}: not in the state's input or context (stand-in {root!r:.200})") from None
        return current

    def uuid(self) -> str:
        return str(uuid.UUID(int=next(self._uuids), version=4))


class _IntrinsicParser:
    """A recursive-descent parser of Step Functions intrinsic functions (`States.Format('{}', $.x)`)."""

    def __init__(self, text: str, evaluator: StatesEvaluator) -> None:
        self.text = text.strip()
        self.position = 0
        self.evaluator = evaluator

    def end(self) -> None:
        self._space()
        if self.position != len(self.text):
            raise StandInError(f"{self.text!r}: unexpected {self.text[self.position :]!r}")

    def _space(self) -> None:
        while self.position < len(self.text) and self.text[self.position] == " ":
            self.position += 1

    def value(self) -> Any:
        self._space()
        rest = self.text[self.position :]
        if rest.startswith("$"):
            match = re.match(r"\$\$?(?:\.[A-Za-z0-9_\-]+|\[\d+\]|\['[^']*'\])*", rest)
            self.position += match.end()
            return self.evaluator.path(match[0])
        if rest.startswith("'"):
            return self._string()
        number = re.match(r"-?\d+(?:\.\d+)?", rest)
        if number:
            self.position += number.end()
            return float(number[0]) if "." in number[0] else int(number[0])
        for literal, result in (("null", None), ("true", True), ("false", False)):
            if rest.startswith(literal):
                self.position += len(literal)
                return result
        call = re.match(r"States\.([A-Za-z0-9]+)\(", rest)
        if call is None:
            raise StandInError(f"{self.text!r}: cannot read {rest!r}")
        self.position += call.end()
        arguments = []
        self._space()
        if self.text[self.position] != ")":
            while True:
                arguments.append(self.value())
                self._space()
                if self.text[self.position] == ",":
                    self.position += 1
                    continue
                break
        if self.text[self.position] != ")":
            raise StandInError(f"{self.text!r}: expected ')' at {self.position}")
        self.position += 1
        function = INTRINSIC_FUNCTIONS.get(call[1])
        if function is None:
            raise StandInError(f"no stand-in for States.{call[1]}")
        return function(self.evaluator, *arguments)

    def _string(self) -> _Literal:
        """A quoted string; `\\'`, `\\{`, `\\}` and `\\\\` are escapes (kept marked for States.Format)."""
        self.position += 1
        chars: list[str] = []
        escaped: set[int] = set()
        while True:
            if self.position >= len(self.text):
                raise StandInError(f"{self.text!r}: unterminated string")
            char = self.text[self.position]
            if char == "\\":
                escaped.add(len(chars))
                chars.append(self.text[self.position + 1])
                self.position += 2
                continue
            self.position += 1
            if char == "'":
                return _Literal("".join(chars), frozenset(escaped))
            chars.append(char)


class _Literal(str):
    """A string literal that remembers which of its braces were escaped."""

    escaped: frozenset[int]

    def __new__(cls, text: str, escaped: frozenset[int]) -> _Literal:
        literal = super().__new__(cls, text)
        literal.escaped = escaped
        return literal


def _json_text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _format(_: StatesEvaluator, template: str, *arguments: Any) -> str:
    escaped = getattr(template, "escaped", frozenset())
    out: list[str] = []
    remaining = list(arguments)
    position = 0
    while position < len(template):
        if template.startswith("{}", position) and position not in escaped:
            if not remaining:
                raise StandInError(f"States.Format({template!r}): more {{}} than arguments")
            argument = remaining.pop(0)
            out.append(argument if isinstance(argument, str) else _json_text(argument))
            position += 2
            continue
        out.append(template[position])
        position += 1
    if remaining:
        raise StandInError(f"States.Format({template!r}): more arguments than {{}}")
    return "".join(out)


def _hash(_: StatesEvaluator, data: Any, algorithm: str) -> str:
    algorithms = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}
    text = data if isinstance(data, str) else _json_text(data)
    return hashlib.new(algorithms[algorithm], text.encode()).hexdigest()


def _split(_: StatesEvaluator, text: str, delimiters: str) -> list[str]:
    return [part for part in re.split("[" + re.escape(delimiters) + "]", text) if part]


INTRINSIC_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "Format": _format,
    "StringToJson": lambda _, text: json.loads(text),
    "JsonToString": lambda _, value: _json_text(value),
    "Array": lambda _, *items: list(items),
    "ArrayPartition": lambda _, items, size: [items[i : i + size] for i in range(0, len(items), size)],
    "ArrayContains": lambda _, items, value: value in items,
    "ArrayRange": lambda _, start, end, step: list(range(start, end + (1 if step > 0 else -1), step)),
    "ArrayGetItem": lambda _, items, index: items[index],
    "ArrayLength": lambda _, items: len(items),
    "ArrayUnique": lambda _, items: [v for i, v in enumerate(items) if v not in items[:i]],
    "Base64Encode": lambda _, text: base64.b64encode(text.encode()).decode(),
    "Base64Decode": lambda _, text: base64.b64decode(text).decode(),
    "Hash": _hash,
    "JsonMerge": lambda _, left, right, deep: {**left, **right},
    # The largest value the range allows (the end is exclusive): the longest when formatted.
    "MathRandom": lambda _, start, end, *seed: end - 1,
    "MathAdd": lambda _, left, right: left + right,
    "StringSplit": _split,
    "UUID": lambda evaluator: evaluator.uuid(),
}
