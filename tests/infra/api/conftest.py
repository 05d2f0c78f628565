"""The synthesized assemblies as the API tests read them: stacks by display name, and by the name CloudFormation
knows them by (for Fn::GetStackOutput and Fn::ImportValue).

The stacks are listed here, per family of payloads, so that each test is parametrized by stack and names it when it
fails; test_coverage checks the lists against what the assemblies hold, so a new stack cannot go unchecked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.conftest import SynthesizedApp
from tests.infra.api.standins import StackTemplate

# The serving variant (VPC, a GPU type with local storage, serverless without provisioned concurrency), reused.
from tests.infra.serving.conftest import variant_config, variant_context, variant_template  # noqa: F401

APP_STACKS = (
    "dev/Foundation",
    "dev/Pipeline",
    "staging/Foundation",
    "staging/Pipeline",
    "staging/Serving",
    "prod/Foundation",
    "prod/Pipeline",
    "prod/Serving",
)
DELIVERY_STACKS = (
    "dev/Foundation",
    "dev/Pipeline",
    "Delivery/staging/Foundation",
    "Delivery/staging/Pipeline",
    "Delivery/staging/Serving",
    "Delivery/prod/Foundation",
    "Delivery/prod/Pipeline",
    "Delivery/prod/Serving",
    "Delivery",
)
VARIANT_STACKS = ("Serving",)
ALL_STACKS = (
    [("app", name) for name in APP_STACKS]
    + [("delivery", name) for name in DELIVERY_STACKS]
    + [("variant", name) for name in VARIANT_STACKS]
)
PIPELINE_STACKS = [(a, n) for a, n in ALL_STACKS if n.endswith("/Pipeline")]
SERVING_STACKS = [(a, n) for a, n in ALL_STACKS if n.endswith("Serving")]
# Stacks with resources whose properties are API requests (RESOURCE_APIS): every stack has some (roles at least).
API_RESOURCE_STACKS = list(ALL_STACKS)


def stack_id(entry: tuple[str, str]) -> str:
    return f"{entry[0]}:{entry[1]}"


@dataclass(frozen=True)
class Assembly:
    stacks: dict[str, StackTemplate]  # by display name

    @property
    def by_stack_name(self) -> dict[str, StackTemplate]:
        return {stack.stack_name: stack for stack in self.stacks.values()}


def _assembly(app: SynthesizedApp) -> Assembly:
    return Assembly(
        {
            name: StackTemplate(name, stack.stack_name, stack.template, stack.environment)
            for name, stack in app.stacks.items()
        }
    )


@pytest.fixture(scope="session")
def app_assembly(synthesized_app: SynthesizedApp) -> Assembly:
    return _assembly(synthesized_app)


@pytest.fixture(scope="session")
def delivery_assembly(delivery_app: SynthesizedApp) -> Assembly:
    return _assembly(delivery_app)


@pytest.fixture(scope="session")
def variant_assembly(variant_template: dict[str, Any], synthesized_app: SynthesizedApp) -> Assembly:  # noqa: F811
    """The variant's serving stack refers to its foundation stack, named "Foundation", for role, key and bucket. The
    fixture builds that foundation without keeping its template; dev/Foundation of the app is the same stage's
    foundation (its names and outputs come from the stage config alone), so it stands in for it."""
    foundation = synthesized_app.stack("dev", "Foundation")
    return Assembly(
        {
            "Serving": StackTemplate("variant/Serving", "Serving", variant_template),
            "Foundation": StackTemplate("variant/Foundation (dev/Foundation)", "Foundation", foundation.template),
        }
    )


@pytest.fixture
def stack_of(request: pytest.FixtureRequest) -> Callable[[tuple[str, str]], tuple[StackTemplate, Assembly]]:
    """stack_of(("app", "staging/Serving")) -> (that stack, its assembly); builds only the assemblies asked for."""

    def select(entry: tuple[str, str]) -> tuple[StackTemplate, Assembly]:
        assembly_name, display_name = entry
        assembly: Assembly = request.getfixturevalue(f"{assembly_name}_assembly")
        return assembly.stacks[display_name], assembly

    return select
