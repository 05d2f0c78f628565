"""Evaluates the expressions of a SageMaker Pipeline definition, as the service does when it starts each step:
`{"Get": "Parameters.X"}`, `{"Get": "Execution.PipelineExecutionId"}`, `{"Get": "Steps.S.<property path>"}`,
`{"Std:Join": ...}` and `{"Std:JsonGet": ...}`. Anything else is refused by name, so a definition that uses a
construct the local runner does not know fails loudly instead of running differently."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# A property path: names, ['quoted keys'] and [indices], e.g. ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri
_PATH_PART = re.compile(r"\.?(?P<name>[A-Za-z_][A-Za-z0-9_]*)|\['(?P<key>[^']*)'\]|\[(?P<index>\d+)\]")


class DefinitionError(Exception):
    """The definition uses something the local runner cannot evaluate."""


def path_parts(path: str) -> list[str | int]:
    parts: list[str | int] = []
    position = 0
    while position < len(path):
        match = _PATH_PART.match(path, position)
        if not match or match.end() == position:
            raise DefinitionError(f"cannot parse the property path {path!r} at {path[position:]!r}")
        parts.append(int(match["index"]) if match["index"] is not None else match["name"] or match["key"])
        position = match.end()
    return parts


def _lookup(document: Any, path: str, owner: str) -> Any:
    """The value at a property path; `owner` names the document in the error when the path leads nowhere."""
    value = document
    for part in path_parts(path):
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            raise DefinitionError(f"{owner} has no {path}") from None
    return value


@dataclass
class Scope:
    """What expressions can see: parameter values, execution variables, and each finished step's properties.

    `read_property_file(step, name)` returns the parsed JSON of a step's property file (read from S3)."""

    parameters: Mapping[str, Any]
    execution: Mapping[str, Any]
    step_properties: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    read_property_file: Callable[[str, str], Any] | None = None

    def get(self, reference: str) -> Any:
        root, _, rest = reference.partition(".")
        if root == "Parameters":
            if rest not in self.parameters:
                raise DefinitionError(f"unknown parameter {rest!r}")
            return self.parameters[rest]
        if root == "Execution":
            if rest not in self.execution:
                raise DefinitionError(f"unknown execution variable {rest!r}")
            return self.execution[rest]
        if root == "Steps":
            step, _, path = rest.partition(".")
            if step not in self.step_properties:
                raise DefinitionError(f"{reference} refers to step {step!r}, which has not run")
            return _lookup(self.step_properties[step], path, f"step {step}")
        raise DefinitionError(f"unknown reference {reference!r}")

    def evaluate(self, value: Any) -> Any:
        """The value with every expression in it replaced by what it evaluates to."""
        if isinstance(value, list):
            return [self.evaluate(item) for item in value]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Get"}:
            return self.get(value["Get"])
        if set(value) == {"Std:Join"}:
            join = value["Std:Join"]
            return join["On"].join(_text(self.evaluate(item)) for item in join["Values"])
        if set(value) == {"Std:JsonGet"}:
            json_get = value["Std:JsonGet"]
            reference = json_get["PropertyFile"]["Get"]
            root, step, kind, name = (reference.split(".", 3) + ["", "", ""])[:4]
            if (root, kind) != ("Steps", "PropertyFiles") or self.read_property_file is None:
                raise DefinitionError(f"Std:JsonGet of {reference!r} is not a step's property file")
            return _lookup(self.read_property_file(step, name), json_get["Path"], "the property file")
        if any(key.startswith("Std:") or key == "Get" for key in value):
            raise DefinitionError(f"unsupported expression {sorted(value)}")
        return {key: self.evaluate(item) for key, item in value.items()}


def references(value: Any) -> list[str]:
    """Every `Get` reference in a value (property files included), refusing expressions `Scope` cannot evaluate."""
    if isinstance(value, list):
        return [reference for item in value for reference in references(item)]
    if not isinstance(value, dict):
        return []
    if set(value) == {"Get"}:
        path_parts(value["Get"].split(".", 2)[-1])
        return [value["Get"]]
    unsupported = [key for key in value if (key.startswith("Std:") or key == "Get") and key not in SUPPORTED]
    if unsupported or (any(key in SUPPORTED for key in value) and len(value) != 1):
        raise DefinitionError(f"unsupported expression {sorted(value)}")
    return [reference for item in value.values() for reference in references(item)]


SUPPORTED = ("Get", "Std:Join", "Std:JsonGet")


def _text(value: Any) -> str:
    """How the service renders a value inside a Join: numbers and booleans as JSON, strings as they are."""
    return value if isinstance(value, str) else json.dumps(value)


def hyperparameter_value(encoded: str) -> Any:
    """A hyperparameter as the training toolkit hands it to the script: JSON-decoded where it is JSON."""
    try:
        return json.loads(encoded)
    except ValueError:
        return encoded
