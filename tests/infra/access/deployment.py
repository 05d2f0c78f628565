"""A deployment: synthesized stacks, each bound to an account, region and partition, with every CloudFormation
intrinsic resolved to the concrete value it would have once deployed there.

Physical names are the template's own (`BucketName`, `RoleName`, ...) where it sets them; otherwise a deterministic
stand-in for the name CloudFormation would generate, from the environment, stack name and logical id. Anything this
cannot resolve (an unknown intrinsic, resource type, attribute or reference) raises TemplateError rather than guessing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

from tests.infra.access.resource_kinds import RESOURCE_KINDS, ResourceKind

# `AWS::NoValue`: the property or list item is left out.
NO_VALUE = object()
AGNOSTIC = "unknown-account"
# CDK suffixes logical ids with 8 hex digits of the construct path's hash.
CDK_LOGICAL_ID_HASH = re.compile(r"[0-9A-F]{8}")
SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class TemplateError(Exception):
    """A template uses something that cannot be resolved here."""


@dataclass(frozen=True)
class Environment:
    account: str
    region: str
    partition: str = "aws"

    @property
    def url_suffix(self) -> str:
        return "amazonaws.com.cn" if self.partition == "aws-cn" else "amazonaws.com"


class StackSource(Protocol):
    """What a deployment needs of a stack: infra.cloud_assembly.SynthesizedStack and TemplateStack both are one."""

    @property
    def display_name(self) -> str: ...

    @property
    def stack_name(self) -> str: ...

    @property
    def environment(self) -> str: ...

    @property
    def template(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class TemplateStack:
    """A hand-written template, for tests of the engine itself."""

    display_name: str
    template: Mapping[str, Any]
    stack_name: str = ""
    environment: str = "aws://unknown-account/unknown-region"

    def __post_init__(self) -> None:
        if not self.stack_name:
            object.__setattr__(self, "stack_name", self.display_name)


def manifest_environment(source: StackSource, partition: str) -> Environment | None:
    """The environment the stack was synthesized for, or None for an environment-agnostic stack."""
    account, region = source.environment.removeprefix("aws://").split("/")
    if account == AGNOSTIC or region == "unknown-region":
        return None
    return Environment(account, region, partition)


class DeployedStack:
    def __init__(
        self,
        deployment: Deployment,
        source: StackSource,
        environment: Environment,
        parameters: Mapping[str, Any],
    ) -> None:
        self.deployment = deployment
        self.display_name = source.display_name
        self.stack_name = source.stack_name
        self.environment = environment
        self.template = source.template
        self._parameters = dict(parameters)
        self._conditions: dict[str, bool] = {}

    def __repr__(self) -> str:
        env = self.environment
        return f"<{self.display_name} ({self.stack_name}) in {env.account}/{env.region}>"

    # Reading the template

    @cached_property
    def resources(self) -> dict[str, dict[str, Any]]:
        """The resources that exist once deployed: those whose `Condition` holds."""
        return {
            logical_id: resource
            for logical_id, resource in self.template.get("Resources", {}).items()
            if "Condition" not in resource or self.condition(resource["Condition"])
        }

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {logical_id: r for logical_id, r in self.resources.items() if r["Type"] == resource_type}

    def logical_id(self, construct_id: str, resource_type: str | None = None) -> str:
        """The logical id CDK gave the construct: `construct_id` itself or followed by its 8-digit hash."""
        found = [
            logical_id
            for logical_id, resource in self.resources.items()
            if (resource_type is None or resource["Type"] == resource_type)
            and (
                logical_id == construct_id
                or (
                    logical_id.startswith(construct_id)
                    and CDK_LOGICAL_ID_HASH.fullmatch(logical_id[len(construct_id) :]) is not None
                )
            )
        ]
        if len(found) != 1:
            raise KeyError(f"{self.display_name}: {len(found)} resources for {construct_id!r} ({found})")
        return found[0]

    def properties(self, logical_id: str) -> dict[str, Any]:
        return self._resource(logical_id).get("Properties", {})

    # Concrete values

    def ref(self, logical_id: str) -> Any:
        kind = self._kind(logical_id)
        if kind.ref == "name":
            return self.physical_name(logical_id)
        if kind.ref == "arn":
            return self.arn(logical_id)
        if kind.ref == "id":
            return f"{self.stack_name}-{logical_id}-{self._digest(logical_id)[:12].upper()}"
        return self.attribute(logical_id, kind.ref)

    def attribute(self, logical_id: str, attribute: str) -> Any:
        kind = self._kind(logical_id)
        if attribute == "Arn" and kind.arn:
            return self.arn(logical_id)
        if attribute not in kind.attributes:
            resource_type = self._resource(logical_id)["Type"]
            raise TemplateError(
                f"{self.display_name}: Fn::GetAtt {logical_id}.{attribute}: unknown for {resource_type}"
            )
        return self._format(logical_id, kind.attributes[attribute])

    def arn(self, logical_id: str) -> str:
        kind = self._kind(logical_id)
        if not kind.arn:
            raise TemplateError(f"{self.display_name}: {logical_id} ({self._resource(logical_id)['Type']}) has no ARN")
        return self._format(logical_id, kind.arn)

    def physical_name(self, logical_id: str) -> str:
        kind = self._kind(logical_id)
        properties = self.properties(logical_id)
        if kind.name_property and kind.name_property in properties:
            return str(self.resolve(properties[kind.name_property]))
        digest = self._digest(logical_id)
        if kind.generated == "key-id":
            return str(uuid.UUID(digest[:32]))
        # Like CloudFormation's `<stack>-<logical id>-<random>`, each part cut short to fit the type's limit.
        suffix = digest[:12].upper()
        name = f"{self.stack_name[:20]}-{logical_id}"[: kind.max_name_length - len(suffix) - 1] + f"-{suffix}"
        return name.lower() if kind.generated == "lower" else name

    def output(self, name: str) -> Any:
        outputs = self.template.get("Outputs", {})
        if name not in outputs:
            raise TemplateError(f"{self.display_name}: no output {name!r}")
        return self.resolve(outputs[name]["Value"])

    def exports(self) -> dict[str, Any]:
        """{export name: value} of the outputs this stack exports."""
        return {
            self.resolve(output["Export"]["Name"]): self.resolve(output["Value"])
            for output in self.template.get("Outputs", {}).values()
            if "Export" in output
        }

    # Intrinsics

    def resolve(self, value: Any) -> Any:
        """`value` with every intrinsic function replaced by its concrete result."""
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self._resolve_ref(argument)
            if key.startswith("Fn::"):
                return self._function(key, argument)
        return {k: item for k, item in ((k, self.resolve(v)) for k, v in value.items()) if item is not NO_VALUE}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            conditions = self.template.get("Conditions", {})
            if name not in conditions:
                raise TemplateError(f"{self.display_name}: no condition {name!r}")
            self._conditions[name] = self._truth(conditions[name])
        return self._conditions[name]

    def _function(self, name: str, argument: Any) -> Any:
        if name == "Fn::GetAtt":
            logical_id, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
            return self.attribute(logical_id, self.resolve(attribute))
        if name == "Fn::Join":
            separator, parts = argument
            return self.resolve(separator).join(str(part) for part in self._resolve_list(parts))
        if name == "Fn::Sub":
            return self._sub(argument)
        if name == "Fn::Select":
            index, items = argument
            return self._resolve_list(items)[int(self.resolve(index))]
        if name == "Fn::Split":
            separator, text = argument
            return self.resolve(text).split(self.resolve(separator))
        if name == "Fn::FindInMap":
            return self._find_in_map(argument)
        if name == "Fn::ImportValue":
            return self.deployment.export(self.resolve(argument), self.environment)
        if name == "Fn::GetStackOutput":
            return self._stack_output(self.resolve(argument))
        if name == "Fn::If":
            condition, if_true, if_false = argument
            return self.resolve(if_true if self.condition(condition) else if_false)
        if name == "Fn::ToJsonString":
            return json.dumps(self.resolve(argument), separators=(",", ":"))
        if name == "Fn::Base64":
            return base64.b64encode(str(self.resolve(argument)).encode()).decode()
        raise TemplateError(f"{self.display_name}: {name} is not supported")

    def _resolve_list(self, value: Any) -> list[Any]:
        resolved = self.resolve(value)
        if not isinstance(resolved, list):
            raise TemplateError(f"{self.display_name}: expected a list, got {resolved!r}")
        return resolved

    def _resolve_ref(self, name: str) -> Any:
        env = self.environment
        pseudo = {
            "AWS::AccountId": env.account,
            "AWS::Region": env.region,
            "AWS::Partition": env.partition,
            "AWS::URLSuffix": env.url_suffix,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": f"arn:{env.partition}:cloudformation:{env.region}:{env.account}:stack/{self.stack_name}/"
            + str(uuid.UUID(self._digest("AWS::StackId")[:32])),
            "AWS::NotificationARNs": [],
        }
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in pseudo:
            return pseudo[name]
        if name in self.template.get("Parameters", {}):
            return self._parameter(name)
        return self.ref(name)

    def _parameter(self, name: str) -> Any:
        if name in self._parameters:
            return self._parameters[name]
        declaration = self.template["Parameters"][name]
        if declaration["Type"].startswith("AWS::SSM::Parameter::Value") or "Default" not in declaration:
            raise TemplateError(f"{self.display_name}: parameter {name} has no value here; pass it in `parameters`")
        default = declaration["Default"]
        return default.split(",") if declaration["Type"] == "CommaDelimitedList" else default

    def _sub(self, argument: str | list[Any]) -> str:
        template, variables = (argument, {}) if isinstance(argument, str) else argument
        values = {name: self.resolve(value) for name, value in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):  # `${!Literal}` stands for the text `${Literal}`
                return "${" + name[1:] + "}"
            if name in values:
                return str(values[name])
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return str(self.attribute(logical_id, attribute))
            return str(self._resolve_ref(name))

        return SUB_VARIABLE.sub(replace, template)

    def _find_in_map(self, argument: list[Any]) -> Any:
        map_name, top_key, second_key, *options = (self.resolve(a) for a in argument)
        try:
            return self.template["Mappings"][map_name][top_key][second_key]
        except KeyError:
            if options and "DefaultValue" in options[0]:
                return options[0]["DefaultValue"]
            raise TemplateError(f"{self.display_name}: Fn::FindInMap {map_name}/{top_key}/{second_key}") from None

    def _stack_output(self, reference: Mapping[str, str]) -> Any:
        """Fn::GetStackOutput reads an output of another stack, in another account when it names a role there."""
        account = self.environment.account
        if "RoleArn" in reference:
            account = reference["RoleArn"].split(":")[4]
        producer = self.deployment.stack_named(
            reference["StackName"], account, reference.get("Region", self.environment.region)
        )
        return producer.output(reference["OutputName"])

    def _truth(self, expression: Any) -> bool:
        """A condition expression: Fn::Equals, Fn::And, Fn::Or, Fn::Not, or {"Condition": name}."""
        ((name, argument),) = expression.items()
        if name == "Condition":
            return self.condition(argument)
        if name == "Fn::Equals":
            left, right = (self.resolve(a) for a in argument)
            return str(left) == str(right)
        if name == "Fn::And":
            return all(self._truth(a) for a in argument)
        if name == "Fn::Or":
            return any(self._truth(a) for a in argument)
        if name == "Fn::Not":
            return not self._truth(argument[0])
        raise TemplateError(f"{self.display_name}: {name} in a condition is not supported")

    # Helpers

    def _resource(self, logical_id: str) -> dict[str, Any]:
        if logical_id not in self.resources:
            raise TemplateError(f"{self.display_name}: no resource {logical_id!r} (or its condition is false)")
        return self.resources[logical_id]

    def _kind(self, logical_id: str) -> ResourceKind:
        resource_type = self._resource(logical_id)["Type"]
        if resource_type not in RESOURCE_KINDS:
            raise TemplateError(
                f"{self.display_name}: {logical_id} is a {resource_type}, whose Ref and attributes are unknown here "
                "(add it to tests/infra/access/resource_kinds.py)"
            )
        return RESOURCE_KINDS[resource_type]

    def _format(self, logical_id: str, text: str) -> str:
        env = self.environment
        kind = self._kind(logical_id)
        name = self.physical_name(logical_id) if "{name}" in text or "{lower_name}" in text else ""
        values = {
            "partition": env.partition,
            "region": env.region,
            "account": env.account,
            "url_suffix": env.url_suffix,
            "name": name,
            "lower_name": name.lower(),
            "path": self.resolve(self.properties(logical_id).get("Path", "/")),
            "unique_id": "AROA" + self._digest(logical_id)[:17].upper(),
        }
        if "{arn}" in text:
            values["arn"] = self._format(logical_id, kind.arn or "")
        return text.format(**values)

    def _digest(self, logical_id: str) -> str:
        env = self.environment
        key = f"{env.partition}/{env.account}/{env.region}/{self.stack_name}/{logical_id}"
        return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class OwnedResource:
    """A resource of the deployment that has an ARN, and where it lives."""

    stack: DeployedStack
    logical_id: str
    resource_type: str
    arn: str

    @property
    def account(self) -> str:
        return self.stack.environment.account


class Deployment:
    """Stacks bound to environments. No two stacks may share a name in one account and region."""

    def __init__(
        self,
        placements: Iterable[tuple[StackSource, Environment]],
        parameters: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        parameters = parameters or {}
        self.stacks: tuple[DeployedStack, ...] = tuple(
            DeployedStack(self, source, environment, parameters.get(source.display_name, {}))
            for source, environment in placements
        )
        seen: dict[tuple[str, str, str], str] = {}
        for stack in self.stacks:
            key = (stack.environment.account, stack.environment.region, stack.stack_name)
            if key in seen:
                raise ValueError(f"{stack.display_name} and {seen[key]} are both {stack.stack_name} in {key[:2]}")
            seen[key] = stack.display_name

    @classmethod
    def of(
        cls,
        stacks: Iterable[StackSource],
        *,
        default: Environment | None = None,
        environments: Mapping[str, Environment] | None = None,
        partition: str = "aws",
        parameters: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Deployment:
        """Each stack in `environments[display name]`, else the environment it was synthesized for, else `default`
        (environment-agnostic stacks need one)."""
        environments = environments or {}
        placements = []
        for source in stacks:
            environment = environments.get(source.display_name) or manifest_environment(source, partition) or default
            if environment is None:
                raise ValueError(f"{source.display_name} is environment-agnostic: give it an environment")
            placements.append((source, environment))
        return cls(placements, parameters)

    def stack(self, display_name: str) -> DeployedStack:
        for stack in self.stacks:
            if stack.display_name == display_name:
                return stack
        raise KeyError(f"no stack {display_name!r} in {[s.display_name for s in self.stacks]}")

    def arn(self, stack: str, construct_id: str, resource_type: str | None = None) -> str:
        """The ARN of a resource by stack display name and construct id (see DeployedStack.logical_id)."""
        deployed = self.stack(stack)
        return deployed.arn(deployed.logical_id(construct_id, resource_type))

    def name(self, stack: str, construct_id: str, resource_type: str | None = None) -> str:
        """The physical name of a resource by stack display name and construct id."""
        deployed = self.stack(stack)
        return deployed.physical_name(deployed.logical_id(construct_id, resource_type))

    def stack_named(self, stack_name: str, account: str, region: str) -> DeployedStack:
        for stack in self.stacks:
            env = stack.environment
            if (stack.stack_name, env.account, env.region) == (stack_name, account, region):
                return stack
        raise TemplateError(f"no stack {stack_name} in {account}/{region} in this deployment")

    def export(self, name: str, environment: Environment) -> Any:
        for stack in self.stacks:
            if (stack.environment.account, stack.environment.region) == (environment.account, environment.region):
                exports = stack.exports()
                if name in exports:
                    return exports[name]
        raise TemplateError(f"no export {name!r} in {environment.account}/{environment.region}")

    @cached_property
    def owned_resources(self) -> dict[str, OwnedResource]:
        """{ARN: resource} of every resource whose type has an ARN."""
        found = {}
        for stack in self.stacks:
            for logical_id, resource in stack.resources.items():
                kind = RESOURCE_KINDS.get(resource["Type"])
                if kind and kind.arn:
                    arn = stack.arn(logical_id)
                    found[arn] = OwnedResource(stack, logical_id, resource["Type"], arn)
        return found

    @cached_property
    def key_aliases(self) -> dict[str, tuple[str, ...]]:
        """{key ARN: its alias names (alias/...)}, from every AWS::KMS::Alias."""
        aliases: dict[str, list[str]] = {}
        for alias_arn, key_arn in self._aliases():
            aliases.setdefault(key_arn, []).append(alias_arn.split(":", 5)[5])
        return {key: tuple(sorted(names)) for key, names in aliases.items()}

    @cached_property
    def alias_targets(self) -> dict[str, str]:
        """{alias ARN: the key ARN it points to}."""
        return dict(self._aliases())

    def _aliases(self) -> Iterable[tuple[str, str]]:
        """(alias ARN, key ARN) of every alias; TargetKeyId may be the key's id or its ARN."""
        for stack in self.stacks:
            env = stack.environment
            for logical_id, alias in stack.of_type("AWS::KMS::Alias").items():
                target = str(stack.resolve(alias["Properties"]["TargetKeyId"]))
                if not target.startswith("arn:"):
                    target = f"arn:{env.partition}:kms:{env.region}:{env.account}:key/{target}"
                yield stack.arn(logical_id), target
