"""The AWS API requests our templates carry, with every deploy- and run-time value replaced by its stand-in.

Three families: the steps of each SageMaker Pipeline definition, the service-integration tasks of each Step Functions
state machine (on every route an execution takes, workflow.py), and CloudFormation resources whose properties are an
API request. Each yields Payloads (one request to validate) and `unmapped` lines: anything that could not be turned into
a request, and any state of a state machine that no execution input reaches, is reported, never dropped.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.infra.api import validator, workflow
from tests.infra.api.standins import (
    CAUGHT_ERROR,
    EXECUTION_NAMES,
    NAMES,
    OPERATOR_INPUT_KEY,
    UPLOADED_OBJECT,
    CfnResolver,
    Environment,
    PipelineExpressions,
    StackTemplate,
    StandInError,
    StatesEvaluator,
    context_object,
    environments,
    iter_steps,
    parameter_values,
)


@dataclass(frozen=True)
class Payload:
    """One API request: where it comes from (`source`), under which stand-ins (`variant`: one label per varied
    dimension, such as the region, the parameter values, the execution input and name), and its content."""

    source: str
    variant: tuple[str, ...]
    service: str
    operation: str
    request: dict[str, Any]
    not_required: frozenset[str] = frozenset()
    route: tuple[str, ...] = ()  # for a state machine's task: the states an execution went through to it

    def problems(self) -> list[str]:
        return validator.problems(self.service, self.operation, self.request, not_required=self.not_required)


@dataclass
class Found:
    payloads: list[Payload] = field(default_factory=list)
    unmapped: list[str] = field(default_factory=list)

    def extend(self, other: Found) -> None:
        self.payloads += other.payloads
        self.unmapped += other.unmapped

    def report(self) -> list[str]:
        """Every problem, each line once, followed by the variants it occurs in, dimension by dimension. A request
        that several variants send alike (a parameter value no step reads, say) is validated once."""
        variants: dict[str, list[tuple[str, ...]]] = {}
        validated: dict[str, list[str]] = {}
        for payload in self.payloads:
            key = json.dumps(
                [payload.service, payload.operation, sorted(payload.not_required), payload.request],
                sort_keys=True,
                default=repr,
            )
            if key not in validated:
                validated[key] = payload.problems()
            for problem in validated[key]:
                variants.setdefault(f"{payload.source} → {payload.operation}: {problem}", []).append(payload.variant)
        return list(dict.fromkeys(self.unmapped)) + [
            f"{line}  [{_dimensions(v)}]" if any(label for variant in v for label in variant) else line
            for line, v in variants.items()
        ]


# A dimension lists at most this many of its values in a problem line (168 instance types would drown the problem).
SHOWN_VALUES = 6


def _dimensions(variants: list[tuple[str, ...]]) -> str:
    columns = [list(dict.fromkeys(column)) for column in zip(*variants, strict=True)]
    return " × ".join(_listed(column) for column in columns if column != [""])


def _listed(values: list[str]) -> str:
    if len(values) <= SHOWN_VALUES:
        return ", ".join(values)
    return ", ".join(values[:SHOWN_VALUES]) + f" and {len(values) - SHOWN_VALUES} more"


def _env_label(environment: Environment, environments_checked: list[Environment]) -> str:
    return environment.region if len(environments_checked) > 1 else ""


# --- SageMaker Pipelines ----------------------------------------------------------------------------------------

# Step type → the API its Arguments are the request of. SageMaker Pipelines names each job itself (after the
# execution and the step), so the job-name member is never in Arguments: those members are not required here.
STEP_APIS: dict[str, tuple[str, str, frozenset[str]]] = {
    "Processing": ("sagemaker", "CreateProcessingJob", frozenset({"ProcessingJobName"})),
    "Training": ("sagemaker", "CreateTrainingJob", frozenset({"TrainingJobName"})),
    "Tuning": ("sagemaker", "CreateHyperParameterTuningJob", frozenset({"HyperParameterTuningJobName"})),
    "Transform": ("sagemaker", "CreateTransformJob", frozenset({"TransformJobName"})),
    "Model": ("sagemaker", "CreateModel", frozenset({"ModelName"})),
    "RegisterModel": ("sagemaker", "CreateModelPackage", frozenset()),
}
# Steps SageMaker Pipelines evaluates itself: no API request (their expressions are still evaluated).
STEPS_WITHOUT_API = {"Condition", "Fail"}


def pipeline_steps(stack: StackTemplate, stacks: Mapping[str, StackTemplate]) -> Found:
    found = Found()
    checked = environments(stack.environment)
    for environment in checked:
        resolver = CfnResolver(stack, environment, stacks)
        for logical_id, resource in stack.of_type("AWS::SageMaker::Pipeline").items():
            source = f"{stack.display_name} {logical_id}"
            try:
                properties = resolver.resolve(resource["Properties"])
                definition = json.loads(properties["PipelineDefinition"]["PipelineDefinitionBody"])
            except (StandInError, KeyError, ValueError) as error:
                found.unmapped.append(f"{source}: {error!r}")
                continue
            for label, values in parameter_values(definition.get("Parameters", [])):
                expressions = PipelineExpressions(definition, values, environment, properties["PipelineName"])
                found.extend(_step_payloads(expressions, source, (_env_label(environment, checked), label)))
    return found


def _step_payloads(expressions: PipelineExpressions, source: str, variant: tuple[str, ...]) -> Found:
    found = Found()
    for step in iter_steps(expressions.definition["Steps"]):
        where = f"{source} step {step['Name']} ({step['Type']})"
        try:
            if step["Type"] in STEPS_WITHOUT_API:
                expressions.evaluate({k: v for k, v in step["Arguments"].items() if k not in ("IfSteps", "ElseSteps")})
                continue
            if step["Type"] not in STEP_APIS:
                found.unmapped.append(f"{where}: no API mapped for this step type (add it to STEP_APIS)")
                continue
            request = expressions.request(step["Name"])
        except StandInError as error:
            found.unmapped.append(f"{where}: {error}  [{', '.join(filter(None, variant))}]")
            continue
        service, operation, not_required = STEP_APIS[step["Type"]]
        found.payloads.append(Payload(where, variant, service, operation, request, not_required))
    return found


# --- Step Functions ---------------------------------------------------------------------------------------------

_INTEGRATION = re.compile(
    r"arn:[a-z-]+:states:::(?:aws-sdk:)?(?P<service>[a-z0-9-]+):(?P<action>[A-Za-z0-9]+)"
    r"(?:\.(?:sync|sync:2|waitForTaskToken))?"
)
# Step Functions' name for a service → botocore's.
STATES_SERVICES = {"sagemaker": "sagemaker", "sns": "sns", "sqs": "sqs", "states": "stepfunctions"}
# Optimized integrations serialize a JSON object given for these string members.
SERIALIZED_MEMBERS = {("sns", "Publish"): ("Message",), ("sqs", "SendMessage"): ("MessageBody",)}


def state_machine_tasks(
    stack: StackTemplate,
    stacks: Mapping[str, StackTemplate],
    *,
    uploaded_object: str = UPLOADED_OBJECT,
    execution_names: Mapping[str, str] = EXECUTION_NAMES,
) -> Found:
    """Every service-integration task of every state machine in the stack, on every route an execution takes from
    its start (workflow.follow), for each execution input and name. A state that no input reaches is reported."""
    found = Found()
    checked = environments(stack.environment)
    for logical_id, resource in stack.of_type("AWS::StepFunctions::StateMachine").items():
        source = f"{stack.display_name} {logical_id}"
        reached: set[str] = set()
        every_state: set[str] = set()
        for environment in checked:
            resolver = CfnResolver(stack, environment, stacks)
            try:
                properties = resolver.resolve(resource["Properties"])
                if "DefinitionSubstitutions" in properties or "DefinitionString" not in properties:
                    raise StandInError("only a DefinitionString without substitutions is read here")
                definition = json.loads(properties["DefinitionString"])
                arn = resolver.ref(logical_id)
                inputs = execution_inputs(stack, resolver, logical_id, uploaded_object=uploaded_object)
            except (StandInError, ValueError) as error:
                found.unmapped.append(f"{source}: {error}")
                continue
            every_state |= set(definition.get("States", {}))
            for input_label, execution_input in inputs.items():
                for name_label, execution_name in execution_names.items():
                    variant = (_env_label(environment, checked), input_label, f"execution name {name_label}")
                    try:
                        run = workflow.follow(
                            definition,
                            execution_input,
                            lambda state, a=arn, n=execution_name, i=execution_input: context_object(a, n, i, state),
                            CAUGHT_ERROR,
                        )
                    except StandInError as error:
                        found.unmapped.append(f"{source}: {error}  [{', '.join(filter(None, variant))}]")
                        continue
                    reached |= run.reached
                    found.unmapped += [
                        f"{source}: {line}  [{', '.join(filter(None, variant))}]" for line in run.problems
                    ]
                    for task in run.tasks:
                        found.extend(_task_payload(f"{source} state {task.name}", variant, task))
        for state_name in sorted(every_state - reached):
            found.unmapped.append(
                f"{source} state {state_name}: reached by no execution input, so not checked (add an input to "
                "execution_inputs that reaches it)"
            )
    return found


def _task_payload(where: str, variant: tuple[str, ...], task: workflow.TaskVisit) -> Found:
    found = Found()
    match = _INTEGRATION.fullmatch(task.state.get("Resource", ""))
    if match is None or match["service"] not in STATES_SERVICES:
        found.unmapped.append(f"{where}: no API mapped for the task resource {task.state.get('Resource')!r}")
        return found
    service = STATES_SERVICES[match["service"]]
    operation = match["action"][0].upper() + match["action"][1:]
    route = f"route {' → '.join(task.route)}"
    try:
        if "Parameters" in task.state:
            request = task.evaluator.parameters(task.state["Parameters"])
        else:
            request = copy.deepcopy(task.evaluator.state_input)  # without Parameters, the task sends its input
    except StandInError as error:
        found.unmapped.append(f"{where}: {error}  [{', '.join(filter(None, (*variant, route)))}]")
        return found
    for member in SERIALIZED_MEMBERS.get((service, operation), ()):
        if isinstance(request.get(member), dict | list):
            request[member] = json.dumps(request[member], separators=(",", ":"))
    found.payloads.append(Payload(where, (*variant, route), service, operation, request, route=task.route))
    return found


def execution_inputs(
    stack: StackTemplate, resolver: CfnResolver, logical_id: str, *, uploaded_object: str = UPLOADED_OBJECT
) -> dict[str, Any]:
    """The inputs an execution starts with: what each EventBridge trigger in the stack sends, and an operator's."""
    arn = resolver.ref(logical_id)
    inputs: dict[str, Any] = {}
    for rule_id, rule in stack.of_type("AWS::Events::Rule").items():
        properties = resolver.resolve(rule["Properties"])
        for target in properties.get("Targets", []):
            if target["Arn"] != arn:
                continue
            if "InputTransformer" in target:
                event = event_from_pattern(properties.get("EventPattern", {}), resolver.env, uploaded_object)
                inputs[f"input from {rule_id}"] = _transform(target["InputTransformer"], event)
            elif "Input" in target:
                inputs[f"input from {rule_id}"] = json.loads(target["Input"])
            else:
                inputs[f"input from {rule_id}"] = event_from_pattern(
                    properties.get("EventPattern", {}), resolver.env, uploaded_object
                )
    bucket = _data_bucket(stack, resolver)
    inputs["an operator's input"] = {"input_uri": f"s3://{bucket}/{OPERATOR_INPUT_KEY}"}
    # An operator's mistakes: the object without its prefix, and a misspelt field.
    inputs["an operator's input outside the input prefix"] = {"input_uri": f"s3://{bucket}/{UPLOADED_OBJECT}"}
    inputs["an operator's input without input_uri"] = {"inputUri": f"s3://{bucket}/{OPERATOR_INPUT_KEY}"}
    return inputs


def _data_bucket(stack: StackTemplate, resolver: CfnResolver) -> str:
    """The stage's data bucket, from the DataBucketName output of the foundation stack this stack refers to."""
    referenced = set(re.findall(r'"StackName": "([^"]+)"', json.dumps(stack.template)))
    for stack_name in sorted(referenced):
        other = resolver.stacks.get(stack_name)
        if other and "DataBucketName" in other.template.get("Outputs", {}):
            return resolver.output(other, "DataBucketName")
    raise StandInError(f"{stack.display_name}: no referenced stack has a DataBucketName output")


def event_from_pattern(
    pattern: dict[str, Any], environment: Environment, uploaded_object: str = UPLOADED_OBJECT
) -> dict[str, Any]:
    """An event the pattern matches: each field's first allowed value; a prefix gets an object name after it."""

    def value(allowed: Any) -> Any:
        if isinstance(allowed, dict):
            return {key: value(item) for key, item in allowed.items()}
        first = allowed[0]
        if isinstance(first, dict):
            if "prefix" in first:
                return first["prefix"] + uploaded_object
            if "numeric" in first:
                return numeric_value(first["numeric"])
            raise StandInError(f"no stand-in for the event pattern filter {first}")
        return first

    event = {
        "version": "0",
        "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
        "account": environment.account,
        "time": "2024-06-01T04:00:00Z",
        "region": environment.region,
        "resources": [],
        "detail": {},
    }
    return {**event, **{key: value(item) for key, item in pattern.items()}}


_NUMERIC = {
    "=": lambda a, b: a == b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def numeric_value(conditions: list[Any]) -> int | float:
    """A number that an EventBridge `numeric` filter (`[">", 0, "<=", 5]`) matches: the smallest of 0, its bounds and
    the numbers one either side of them that matches every condition."""
    pairs = list(zip(conditions[::2], conditions[1::2], strict=True))
    unknown = [operator for operator, _ in pairs if operator not in _NUMERIC]
    if unknown:
        raise StandInError(f"no stand-in for the numeric filter operators {unknown}")
    candidates = sorted({bound + step for _, bound in pairs for step in (-1, 0, 1)} | {0})
    for candidate in candidates:
        if all(_NUMERIC[operator](candidate, bound) for operator, bound in pairs):
            return candidate
    raise StandInError(f"no number matches the numeric filter {conditions}")


def _transform(transformer: dict[str, Any], event: dict[str, Any]) -> Any:
    evaluator = StatesEvaluator(event, {})
    values = {name: evaluator.path(path) for name, path in transformer.get("InputPathsMap", {}).items()}
    text = re.sub(r"<([A-Za-z0-9_.-]+)>", lambda m: str(values[m[1]]), transformer["InputTemplate"])
    return json.loads(text)


# --- CloudFormation resources -----------------------------------------------------------------------------------


def _tag_map(tags: list[dict[str, str]]) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in tags}


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _camel(value: Any) -> Any:
    """CloudFormation's PascalCase property names as the camelCase members of APIs that use them."""
    if isinstance(value, list):
        return [_camel(item) for item in value]
    if isinstance(value, dict):
        return {key[0].lower() + key[1:]: _camel(item) for key, item in value.items()}
    return value


def _renamed(member: str, convert: Callable[[Any], Any] = lambda v: v) -> Callable[[Any], dict[str, Any]]:
    return lambda value: {member: convert(value)}


def _scaling_target(value: str) -> dict[str, str]:
    """ScalingTargetId is the Ref of a scalable target: `<resource id>|<scalable dimension>|<service namespace>`."""
    resource_id, dimension, namespace = value.split("|")
    return {"ResourceId": resource_id, "ScalableDimension": dimension, "ServiceNamespace": namespace}


def _pipeline_definition(value: dict[str, Any]) -> dict[str, Any]:
    if "PipelineDefinitionBody" in value:
        return {"PipelineDefinition": value["PipelineDefinitionBody"]}
    location = value["PipelineDefinitionS3Location"]
    return {
        "PipelineDefinitionS3Location": {
            "Bucket": location["Bucket"],
            "ObjectKey": location["Key"],
            **({"VersionId": location["Version"]} if "Version" in location else {}),
        }
    }


def _inline_policy(value: dict[str, Any]) -> dict[str, Any]:
    return {"PolicyName": value.get("PolicyName"), "PolicyDocument": _json_text(value.get("PolicyDocument"))}


def _lifecycle_policy(value: dict[str, Any]) -> dict[str, Any]:
    return {"lifecyclePolicyText": value["LifecyclePolicyText"], **_renamed("registryId")(value.get("RegistryId"))}


@dataclass(frozen=True)
class Call:
    """One API call CloudFormation makes for a resource. A property goes to every call whose input has a member of
    the same name, unless `renamed` maps it (to one or more members). `only_with`: the call is made only when that
    property is set. `each`: one call per item of that list property (its `renamed` rule maps one item)."""

    service: str
    operation: str
    renamed: Mapping[str, Callable[[Any], dict[str, Any]]] = field(default_factory=dict)
    only_with: str | None = None
    each: str | None = None


@dataclass(frozen=True)
class ResourceApi:
    calls: tuple[Call, ...]
    # Properties CloudFormation acts on itself, with no API member: each with the reason.
    cloudformation_only: Mapping[str, str] = field(default_factory=dict)


# Where CloudFormation property names differ from the API's, the mapping is spelled out here. A property that reaches
# no call is reported (test_resources), never dropped.
RESOURCE_APIS: dict[str, ResourceApi] = {
    "AWS::SageMaker::Model": ResourceApi((Call("sagemaker", "CreateModel"),)),
    "AWS::SageMaker::EndpointConfig": ResourceApi((Call("sagemaker", "CreateEndpointConfig"),)),
    # Created by CreateEndpoint; on update, UpdateEndpoint gets the Retain*/Exclude* members.
    "AWS::SageMaker::Endpoint": ResourceApi((Call("sagemaker", "CreateEndpoint"), Call("sagemaker", "UpdateEndpoint"))),
    "AWS::SageMaker::ModelPackageGroup": ResourceApi(
        (
            Call("sagemaker", "CreateModelPackageGroup"),
            Call(
                "sagemaker",
                "PutModelPackageGroupPolicy",
                renamed={"ModelPackageGroupPolicy": _renamed("ResourcePolicy", _json_text)},
                only_with="ModelPackageGroupPolicy",
            ),
        )
    ),
    # The definition body is the API's PipelineDefinition string; its S3 location names its members differently.
    "AWS::SageMaker::Pipeline": ResourceApi(
        (Call("sagemaker", "CreatePipeline", renamed={"PipelineDefinition": _pipeline_definition}),)
    ),
    # The API takes tags as a map; CloudFormation as a list of Key/Value.
    "AWS::ApplicationAutoScaling::ScalableTarget": ResourceApi(
        (Call("application-autoscaling", "RegisterScalableTarget", renamed={"Tags": _renamed("Tags", _tag_map)}),)
    ),
    # ScalingTargetId stands for the ServiceNamespace, ResourceId and ScalableDimension of its target.
    "AWS::ApplicationAutoScaling::ScalingPolicy": ResourceApi(
        (Call("application-autoscaling", "PutScalingPolicy", renamed={"ScalingTargetId": _scaling_target}),)
    ),
    "AWS::CloudWatch::Alarm": ResourceApi((Call("cloudwatch", "PutMetricAlarm"),)),
    "AWS::CloudWatch::CompositeAlarm": ResourceApi((Call("cloudwatch", "PutCompositeAlarm"),)),
    "AWS::SageMaker::DataQualityJobDefinition": ResourceApi(
        (Call("sagemaker", "CreateDataQualityJobDefinition"),),
        cloudformation_only={"EndpointName": "the endpoint the resource waits for; the job input names it"},
    ),
    "AWS::SageMaker::ModelQualityJobDefinition": ResourceApi(
        (Call("sagemaker", "CreateModelQualityJobDefinition"),),
        cloudformation_only={"EndpointName": "the endpoint the resource waits for; the job input names it"},
    ),
    "AWS::SageMaker::MonitoringSchedule": ResourceApi(
        (Call("sagemaker", "CreateMonitoringSchedule"),),
        cloudformation_only={"EndpointName": "the endpoint the resource waits for; the job definition names it"},
    ),
    # The API takes the event pattern as JSON text; the rule's targets go to PutTargets.
    "AWS::Events::Rule": ResourceApi(
        (
            Call("events", "PutRule", renamed={"EventPattern": _renamed("EventPattern", _json_text)}),
            Call("events", "PutTargets", renamed={"Name": _renamed("Rule")}, only_with="Targets"),
        )
    ),
    # Step Functions' API is camelCase; the definition is JSON text.
    "AWS::StepFunctions::StateMachine": ResourceApi(
        (
            Call(
                "stepfunctions",
                "CreateStateMachine",
                renamed={
                    "StateMachineName": _renamed("name"),
                    "DefinitionString": _renamed("definition"),
                    "Definition": _renamed("definition", _json_text),
                    "RoleArn": _renamed("roleArn"),
                    "StateMachineType": _renamed("type"),
                    "LoggingConfiguration": _renamed("loggingConfiguration", _camel),
                    "TracingConfiguration": _renamed("tracingConfiguration", _camel),
                    "EncryptionConfiguration": _renamed("encryptionConfiguration", _camel),
                    "Tags": _renamed("tags", _camel),
                },
            ),
        )
    ),
    # CloudWatch Logs' API is camelCase and takes tags as a map; the retention is its own call.
    "AWS::Logs::LogGroup": ResourceApi(
        (
            Call(
                "logs",
                "CreateLogGroup",
                renamed={
                    "LogGroupName": _renamed("logGroupName"),
                    "KmsKeyId": _renamed("kmsKeyId"),
                    "LogGroupClass": _renamed("logGroupClass"),
                    "DeletionProtectionEnabled": _renamed("deletionProtectionEnabled"),
                    "Tags": _renamed("tags", _tag_map),
                },
            ),
            Call(
                "logs",
                "PutRetentionPolicy",
                renamed={"LogGroupName": _renamed("logGroupName"), "RetentionInDays": _renamed("retentionInDays")},
                only_with="RetentionInDays",
            ),
        )
    ),
    # ECR's API is camelCase, except its tags' Key and Value; policies are JSON text, each set by its own call.
    "AWS::ECR::Repository": ResourceApi(
        (
            Call(
                "ecr",
                "CreateRepository",
                renamed={
                    "RepositoryName": _renamed("repositoryName"),
                    "Tags": _renamed("tags"),
                    "ImageTagMutability": _renamed("imageTagMutability"),
                    "ImageTagMutabilityExclusionFilters": _renamed("imageTagMutabilityExclusionFilters", _camel),
                    "ImageScanningConfiguration": _renamed("imageScanningConfiguration", _camel),
                    "EncryptionConfiguration": _renamed("encryptionConfiguration", _camel),
                },
            ),
            Call(
                "ecr",
                "SetRepositoryPolicy",
                renamed={
                    "RepositoryName": _renamed("repositoryName"),
                    "RepositoryPolicyText": _renamed("policyText", _json_text),
                },
                only_with="RepositoryPolicyText",
            ),
            Call(
                "ecr",
                "PutLifecyclePolicy",
                renamed={"RepositoryName": _renamed("repositoryName"), "LifecyclePolicy": _lifecycle_policy},
                only_with="LifecyclePolicy",
            ),
        ),
        cloudformation_only={"EmptyOnDelete": "CloudFormation deletes the images itself before DeleteRepository"},
    ),
    # IAM: CreateRole, then one call per inline policy and one per managed policy. Policy documents are JSON text here
    # (tests/infra/access reads what they allow).
    "AWS::IAM::Role": ResourceApi(
        (
            Call(
                "iam",
                "CreateRole",
                renamed={"AssumeRolePolicyDocument": _renamed("AssumeRolePolicyDocument", _json_text)},
            ),
            Call("iam", "PutRolePolicy", renamed={"Policies": _inline_policy}, each="Policies"),
            Call(
                "iam",
                "AttachRolePolicy",
                renamed={"ManagedPolicyArns": _renamed("PolicyArn")},
                each="ManagedPolicyArns",
            ),
        )
    ),
}

# Resource types in our templates whose properties are not one API request, and why.
NOT_AN_API_REQUEST = {
    "AWS::Events::EventBusPolicy": "CloudFormation merges the statement into the bus's policy; the statement is IAM's",
    "AWS::KMS::Key": "CreateKey, EnableKeyRotation… on a key id only known after creation; the policy is IAM's",
    "AWS::KMS::Alias": "a name and a key id",
    "AWS::S3::Bucket": "a dozen calls (encryption, versioning, logging, lifecycle…), none a CloudFormation shape",
    "AWS::S3::BucketPolicy": "an IAM policy document",
    "AWS::IAM::Policy": "an IAM policy document",
    "AWS::SNS::Topic": "CreateTopic takes its settings as a map of string attributes",
    "AWS::SNS::TopicPolicy": "an IAM policy document",
    "AWS::Lambda::Function": "CDK's own handler (auto-delete of objects in dev)",
    "Custom::S3AutoDeleteObjects": "a custom resource: its properties go to our Lambda function, not to AWS",
    "AWS::CloudWatch::Dashboard": "the dashboard body is CloudWatch's own JSON, not an API shape",
    "AWS::CodePipeline::Pipeline": "CDK Pipelines' own delivery pipeline",
    "AWS::CodeBuild::Project": "CDK Pipelines' own build projects",
}


def resources(stack: StackTemplate, stacks: Mapping[str, StackTemplate]) -> Found:
    found = Found()
    checked = environments(stack.environment)
    for environment in checked:
        resolver = CfnResolver(stack, environment, stacks)
        variant = (_env_label(environment, checked),)
        for logical_id, resource in stack.resources.items():
            api = RESOURCE_APIS.get(resource["Type"])
            if api is None:
                if resource["Type"] not in NOT_AN_API_REQUEST:
                    found.unmapped.append(
                        f"{stack.display_name} {logical_id}: {resource['Type']} is neither in RESOURCE_APIS nor in "
                        "NOT_AN_API_REQUEST"
                    )
                continue
            found.extend(resource_requests(f"{stack.display_name} {logical_id}", variant, resolver, logical_id, api))
    return found


def resource_requests(
    source: str, variant: tuple[str, ...], resolver: CfnResolver, logical_id: str, api: ResourceApi
) -> Found:
    found = Found()
    resource = resolver.stack.resources[logical_id]
    try:
        properties = resolver.resolve(resource.get("Properties", {}))
        name_property = _name_property(resource["Type"])
        if name_property and name_property not in properties:
            properties[name_property] = resolver.name(logical_id)  # the name CloudFormation generates
    except StandInError as error:
        found.unmapped.append(f"{source}: {error}")
        return found
    reached = set(api.cloudformation_only)
    for call in api.calls:
        if call.only_with and call.only_with not in properties:
            continue
        members = validator.operation_model(call.service, call.operation).input_shape.members
        items = properties.get(call.each, []) if call.each else [None]
        if call.each in properties:
            reached.add(call.each)  # an empty list makes no call, and is no defect
        for index, item in enumerate(items):
            request: dict[str, Any] = {}
            for prop, value in properties.items():
                if prop == call.each:
                    value = item
                if prop in call.renamed:
                    request.update({k: v for k, v in call.renamed[prop](value).items() if v is not None})
                elif prop in members:
                    request[prop] = value
                else:
                    continue
                reached.add(prop)
            where = f"{source} {call.each}[{index}]" if call.each else source
            found.payloads.append(Payload(where, variant, call.service, call.operation, request))
    for prop in properties:
        if prop not in reached:
            found.unmapped.append(
                f"{source}: property {prop} of {resource['Type']} reaches no API member (map it in RESOURCE_APIS)"
            )
    return found


def _name_property(resource_type: str) -> str | None:
    policy = NAMES.get(resource_type)
    return policy.prop if policy else None
