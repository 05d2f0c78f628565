"""Loading the stage configs from the CDK context: cdk.json's `project_name` and `stages`, with `-c` overrides, and
the deployment manifest's served version; every problem reported as one line naming the key."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from infra import manifest
from infra.config.sections import StageConfig
from infra.config.stages import STAGE_NAMES

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CDK_JSON = PROJECT_ROOT / "cdk.json"

PROJECT_NAME_CONTEXT_KEY = "project_name"
STAGES_CONTEXT_KEY = "stages"
STAGE_SELECTION_CONTEXT_KEY = "stage"


class StageConfigError(ValueError):
    """An invalid stage configuration; the message is one line per problem, each naming the key."""


def cdk_json_context(path: Path = CDK_JSON) -> dict[str, Any]:
    """The context that `npx cdk` passes to app.py, for tools and tests that read the config without the CLI."""
    return json.loads(path.read_text())["context"]


def load_stage_configs(context: Mapping[str, Any]) -> list[StageConfig]:
    """The selected stages' configs from a CDK context mapping, in STAGE_NAMES order."""
    problems: list[str] = []
    stages_context = context.get(STAGES_CONTEXT_KEY)
    if not isinstance(stages_context, Mapping):
        raise StageConfigError(
            f"context key '{STAGES_CONTEXT_KEY}' is missing or not an object; it must map "
            f"{', '.join(STAGE_NAMES)} to their settings (see cdk.json)"
        )
    problems += [
        f"{STAGES_CONTEXT_KEY}.{name}: unknown stage; allowed: {', '.join(STAGE_NAMES)}"
        for name in stages_context
        if name not in STAGE_NAMES
    ]
    selected = _selected_stages(context.get(STAGE_SELECTION_CONTEXT_KEY), problems)

    configs = []
    for name in selected:
        section = stages_context.get(name) or {}
        if not isinstance(section, Mapping):
            problems.append(f"{STAGES_CONTEXT_KEY}.{name} = {section!r}: expected an object of settings")
            continue
        settings = with_overrides(name, section, context, f"{STAGES_CONTEXT_KEY}.")
        problems += _served_version_from_manifest(name, settings)
        problems += [
            f"{STAGES_CONTEXT_KEY}.{name}.{key}: not settable per stage; the stage name is its key under "
            f"'{STAGES_CONTEXT_KEY}' and the project name is the top-level '{PROJECT_NAME_CONTEXT_KEY}'"
            for key in _DERIVED_KEYS
            if key in settings
        ]
        settings.update(name=name, project_name=context.get(PROJECT_NAME_CONTEXT_KEY))
        try:
            configs.append(StageConfig.model_validate(settings))
        except ValidationError as error:
            problems += [_describe(name, detail) for detail in error.errors()]
    if problems:
        raise StageConfigError("\n".join(dict.fromkeys(problems)))
    return configs


_DERIVED_KEYS = ("name", "project_name")


def _served_version_from_manifest(stage: str, settings: dict[str, Any]) -> list[str]:
    """The stage's manifest is the one truth of what it serves, for every path that synthesizes (workstation, CDK
    Pipelines, GitHub Actions): a context value (`-c <stage>.inference.model_package_arn=...`) may name a version
    only for a stage that has none promoted yet (a first deploy), and must agree with the manifest otherwise."""
    inference = settings.setdefault("inference", {})
    if not isinstance(inference, dict):
        return []
    try:
        current = manifest.load(stage).current
    except manifest.ManifestError as error:
        return [f"deployment manifest of {stage}: {error}"]
    if current is None:
        return []
    deployed = current.model_package_arn
    named = inference.get("model_package_arn")
    problems = []
    if named is not None and named != deployed:
        problems.append(
            f"{STAGES_CONTEXT_KEY}.{stage}.inference.model_package_arn: names {named}, but the manifest "
            f"{manifest.manifest_path(stage)} serves {deployed}; what a stage serves changes with "
            f"`mlops promote --to {stage}` (a reviewed commit), never with -c"
        )
    if "baseline" in inference:
        problems.append(
            f"{STAGES_CONTEXT_KEY}.{stage}.inference.baseline: the manifest {manifest.manifest_path(stage)} records "
            "the served version's baseline with it; it is never set with -c"
        )
    # The rest of the config is checked against what the manifest says, whatever the context named.
    inference["model_package_arn"] = deployed
    inference["baseline"] = current.baseline.document() if current.baseline is not None else None
    return problems


def cross_stage_problems(every_stage: Mapping[str, StageConfig]) -> list[str]:
    """A stage serving another stage's version must name it where that stage deploys (its account and region)."""
    problems = []
    for config in every_stage.values():
        inference = config.inference
        source = every_stage.get(config.serving_source_stage)
        if source is None or source is config or inference.model_package_group != f"{source.resource_prefix}-models":
            continue
        for part, expected in (("account", source.account), ("region", source.region)):
            named = getattr(inference, f"model_package_{part}")
            if expected and named != expected:
                problems.append(
                    f"{STAGES_CONTEXT_KEY}.{config.name}.inference.model_package_arn: a version of "
                    f"{source.name}'s group in {part} {named}, but {source.name} deploys to {part} {expected}"
                )
    return problems


def _selected_stages(selection: Any, problems: list[str]) -> list[str]:
    if selection is None:
        return list(STAGE_NAMES)
    requested = [part.strip() for part in str(selection).split(",") if part.strip()]
    unknown = [name for name in requested if name not in STAGE_NAMES]
    if unknown or not requested:
        problems.append(
            f"context '{STAGE_SELECTION_CONTEXT_KEY}' = {selection!r}: unknown stage "
            f"{', '.join(map(repr, unknown)) or '(none given)'}; allowed: {', '.join(STAGE_NAMES)}"
        )
        return []
    return [name for name in STAGE_NAMES if name in requested]


def with_overrides(
    prefix: str, settings: Mapping[str, Any], context: Mapping[str, Any], location: str = ""
) -> dict[str, Any]:
    """Apply `-c <prefix>.<dotted.key>=<value>` overrides onto a deep copy of the settings; errors name the key
    under `location` (the context section that holds these settings)."""
    merged = copy.deepcopy(dict(settings))
    for key in sorted(context):
        if not key.startswith(f"{prefix}."):
            continue
        *parents, leaf = key.split(".")[1:]
        target = merged
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise StageConfigError(f"{location}{key}: '{part}' is a value, not a section")
        target[leaf] = copy.deepcopy(context[key])  # an object value must not be changed by the next key
    return merged


def _describe(stage: str, detail: Mapping[str, Any]) -> str:
    path = tuple(str(part) for part in detail["loc"])
    if path[:1] == (PROJECT_NAME_CONTEXT_KEY,):
        location = PROJECT_NAME_CONTEXT_KEY
    else:
        location = ".".join((STAGES_CONTEXT_KEY, stage, *path))
    return describe_problem(location, detail, lambda: _fields_at(path[:-1]))


def describe_problem(location: str, detail: Mapping[str, Any], allowed_keys: Callable[[], Iterable[str]]) -> str:
    """One line for one of pydantic's errors about the setting at `location`; `allowed_keys` lists the keys of the
    section an unknown key was found in."""
    if detail["type"] == "extra_forbidden":
        return f"{location}: unknown key; allowed keys: {', '.join(allowed_keys())}"
    if detail["type"] == "missing":
        return f"{location}: required"
    message = detail["msg"].removeprefix("Value error, ")
    if isinstance(detail["input"], Mapping):
        return f"{location}: {message}"
    return f"{location} = {detail['input']!r}: {message}"


def _fields_at(path: tuple[str, ...]) -> list[str]:
    model: type[BaseModel] = StageConfig
    for part in path:
        annotation = model.model_fields[part].annotation
        # An optional section (`vpc: VpcSettings | None`) names its model among the union's members.
        members = [member for member in (annotation, *getattr(annotation, "__args__", ())) if isinstance(member, type)]
        sections = [member for member in members if issubclass(member, BaseModel)]
        if not sections:
            return []
        model = sections[0]
    return [name for name in model.model_fields if name not in _DERIVED_KEYS]
