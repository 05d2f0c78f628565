"""The IAM gate both synthesized assemblies are held to: no Allow statement grants `*` or a whole service."""

from __future__ import annotations

from collections.abc import Iterable

from infra.cloud_assembly import SynthesizedStack

POLICY_DOCUMENT_KEYS = ("PolicyDocument", "KeyPolicy", "AssumeRolePolicyDocument")


def wildcard_action_grants(stacks: Iterable[SynthesizedStack]) -> list[tuple[str, str, str]]:
    """(stack, logical id, action) of every allowed action that is `*` or `<service>:*`."""
    found = []
    for stack in stacks:
        for logical_id, resource in stack.template["Resources"].items():
            for document_key in POLICY_DOCUMENT_KEYS:
                for statement in resource.get("Properties", {}).get(document_key, {}).get("Statement", []):
                    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                    if statement["Effect"] == "Allow":
                        found += [
                            (stack.display_name, logical_id, action)
                            for action in actions
                            if action == "*" or action.endswith(":*")
                        ]
    return found
