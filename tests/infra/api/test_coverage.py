"""The stack lists the API tests are parametrized by (conftest) are the stacks the assemblies hold."""

from __future__ import annotations

from tests.infra.api.conftest import (
    API_RESOURCE_STACKS,
    APP_STACKS,
    DELIVERY_STACKS,
    PIPELINE_STACKS,
    SERVING_STACKS,
)
from tests.infra.api.payloads import RESOURCE_APIS


def test_every_stack_is_listed(app_assembly, delivery_assembly):
    assert set(app_assembly.stacks) == set(APP_STACKS)
    assert set(delivery_assembly.stacks) == set(DELIVERY_STACKS)


def test_every_stack_with_payloads_is_in_its_familys_list(app_assembly, delivery_assembly, variant_assembly):
    listed = {
        "AWS::SageMaker::Pipeline": set(PIPELINE_STACKS),
        "AWS::StepFunctions::StateMachine": set(SERVING_STACKS),
        **{resource_type: set(API_RESOURCE_STACKS) for resource_type in RESOURCE_APIS},
    }
    missing = set()
    for assembly_name, assembly in (
        ("app", app_assembly),
        ("delivery", delivery_assembly),
        ("variant", variant_assembly),
    ):
        for name, stack in assembly.stacks.items():
            if name == "Foundation" and assembly_name == "variant":
                continue  # dev/Foundation, standing in for the variant's own
            for resource_type, stacks in listed.items():
                if stack.of_type(resource_type) and (assembly_name, name) not in stacks:
                    missing.add((assembly_name, name, resource_type))
    assert not missing
