"""The delivery pipeline's settings: the CDK Pipelines pipeline that deploys staging and prod (top-level context key
`delivery`), its environment (the tooling account) and source."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ValidationError

from infra.config.fields import AccountId, Region
from infra.config.loading import STAGE_SELECTION_CONTEXT_KEY, StageConfigError, describe_problem, with_overrides
from infra.config.sections import Section, StageConfig

DELIVERY_CONTEXT_KEY = "delivery"
# The stages the delivery pipeline deploys, in order, when delivery is enabled.
DELIVERED_STAGES: tuple[str, ...] = ("staging", "prod")

_CONNECTION_ARN = re.compile(
    r"^arn:aws(?:-[a-z]+)*:(?:codestar-connections|codeconnections):[a-z0-9-]+:[0-9]{12}:"
    r"connection/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
)
# CodeCommit: 1-100 letters, digits, '.', '_', '-'. A connection: `owner/repo` as GitHub, GitLab or Bitbucket spell it.
_CODECOMMIT_REPOSITORY = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_CONNECTION_REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_BRANCH = re.compile(r"^[A-Za-z0-9._/-]+$")


def _connection_arn(value: str) -> str:
    if not _CONNECTION_ARN.match(value):
        raise ValueError(
            "not a CodeConnections connection ARN; expected "
            "arn:<partition>:codeconnections:<region>:<account>:connection/<uuid> (or codestar-connections)"
        )
    return value


def _branch(value: str) -> str:
    if not _BRANCH.match(value) or value.startswith(("/", "-")) or value.endswith(("/", ".lock")) or ".." in value:
        raise ValueError("not a git branch name, e.g. main or release/1.2")
    return value


class DeliverySource(Section):
    """Where the pipeline gets the code: a CodeCommit repository, or one behind a CodeConnections connection."""

    kind: Literal["codecommit", "connection"] = "codecommit"
    repository: str | None = None
    branch: Annotated[str, AfterValidator(_branch)] = "main"
    connection_arn: Annotated[str, AfterValidator(_connection_arn)] | None = None

    @property
    def description(self) -> str:
        via = "CodeCommit" if self.kind == "codecommit" else "connection"
        return f"{via} {self.repository}@{self.branch}"


class DeliveryConfig(Section):
    """The delivery pipeline's own environment (the tooling account) and source; stages keep their own env."""

    enabled: bool = False
    account: AccountId | None = None
    region: Region | None = None
    source: DeliverySource = DeliverySource()


def load_delivery_config(context: Mapping[str, Any]) -> DeliveryConfig:
    """The `delivery` section with its `-c delivery.<dotted.key>=<value>` overrides, or one line per problem."""
    section = context.get(DELIVERY_CONTEXT_KEY) or {}
    if not isinstance(section, Mapping):
        raise StageConfigError(f"{DELIVERY_CONTEXT_KEY} = {section!r}: expected an object of settings")
    settings = with_overrides(DELIVERY_CONTEXT_KEY, section, context)
    try:
        config = DeliveryConfig.model_validate(settings)
    except ValidationError as error:
        raise StageConfigError("\n".join(dict.fromkeys(map(_describe_delivery, error.errors())))) from None
    problems = _delivery_requirements(config)
    if problems:
        raise StageConfigError("\n".join(problems))
    return config


def _delivery_requirements(config: DeliveryConfig) -> list[str]:
    """What the settings need of each other; checked whether or not delivery is enabled, where they are given."""
    key = DELIVERY_CONTEXT_KEY
    source = config.source
    problems = []
    if source.kind == "connection" and not source.connection_arn:
        problems.append(f"{key}.source.connection_arn: required when source.kind is 'connection'")
    if source.kind == "codecommit" and source.connection_arn:
        problems.append(f"{key}.source.connection_arn: only for source.kind 'connection'; this source is CodeCommit")
    repository_format = _CODECOMMIT_REPOSITORY if source.kind == "codecommit" else _CONNECTION_REPOSITORY
    if source.repository is not None and not repository_format.match(source.repository):
        expected = "a CodeCommit repository name" if source.kind == "codecommit" else "owner/repository"
        problems.append(f"{key}.source.repository = {source.repository!r}: expected {expected}")
    if config.enabled and source.repository is None:
        problems.append(f"{key}.source.repository: required when delivery is enabled")
    if config.enabled and config.region is None:
        problems.append(f"{key}.region: required when delivery is enabled (the pipeline stack needs an explicit one)")
    return problems


def delivered_stage_problems(delivery: DeliveryConfig, configs: list[StageConfig]) -> list[str]:
    """With delivery enabled, the pipeline deploys staging and prod together, each to its own account and region."""
    if not delivery.enabled:
        return []
    selected = [config.name for config in configs if config.name in DELIVERED_STAGES]
    problems = []
    if selected and len(selected) != len(DELIVERED_STAGES):
        problems.append(
            f"context '{STAGE_SELECTION_CONTEXT_KEY}': with {DELIVERY_CONTEXT_KEY}.enabled the delivery pipeline "
            f"deploys {' and '.join(DELIVERED_STAGES)} together; select both or neither (selected: {selected[0]})"
        )
    own_accounts = [
        config.name
        for config in configs
        if config.name in DELIVERED_STAGES and config.account and config.account != delivery.account
    ]
    if delivery.account is None and own_accounts:
        problems.append(
            f"{DELIVERY_CONTEXT_KEY}.account: required when a delivered stage names its own account "
            f"({', '.join(own_accounts)}); cross-account deployment needs the pipeline's account"
        )
    return problems


def _describe_delivery(detail: Mapping[str, Any]) -> str:
    location = ".".join((DELIVERY_CONTEXT_KEY, *(str(part) for part in detail["loc"])))
    model: type[BaseModel] = DeliverySource if len(detail["loc"]) > 1 else DeliveryConfig
    return describe_problem(location, detail, lambda: model.model_fields)
