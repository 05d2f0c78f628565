"""Reads a synthesized cloud assembly (cdk.out) as plain JSON, without starting the CDK's Node runtime."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

STACK_ARTIFACT = "aws:cloudformation:stack"
NESTED_ASSEMBLY_ARTIFACT = "cdk:cloud-assembly"
# aws_cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY, spelled out so that reading cdk.out needs no Node runtime.
ACKNOWLEDGED_RULES_METADATA = "aws:cdk:acknowledged-rules"


@dataclass(frozen=True)
class SynthesizedStack:
    display_name: str
    stack_name: str
    environment: str
    termination_protection: bool
    template_path: Path
    metadata: dict[str, list[dict[str, Any]]]

    @cached_property
    def template(self) -> dict[str, Any]:
        return json.loads(self.template_path.read_text())

    def acknowledgements(self) -> list[tuple[str, str, str]]:
        """(construct path, rule, reason) of every cdk-nag acknowledgement in this stack."""
        return [
            (path, rule.removeprefix("Annotation::"), reason)
            for path, entries in self.metadata.items()
            for entry in entries
            if entry["type"] == ACKNOWLEDGED_RULES_METADATA
            for rule, reason in entry["data"].items()
        ]


def synthesized_stacks(assembly_dir: Path) -> Iterator[SynthesizedStack]:
    """Every stack in the assembly and its nested (per-stage) assemblies, in manifest order."""
    manifest = json.loads((assembly_dir / "manifest.json").read_text())
    for artifact in manifest.get("artifacts", {}).values():
        properties = artifact.get("properties", {})
        if artifact["type"] == NESTED_ASSEMBLY_ARTIFACT:
            yield from synthesized_stacks(assembly_dir / properties["directoryName"])
        elif artifact["type"] == STACK_ARTIFACT:
            metadata_file = artifact.get("additionalMetadataFile")
            yield SynthesizedStack(
                display_name=artifact["displayName"],
                stack_name=properties["stackName"],
                environment=artifact["environment"],
                termination_protection=properties.get("terminationProtection", False),
                template_path=assembly_dir / properties["templateFile"],
                metadata={
                    **artifact.get("metadata", {}),
                    **(json.loads((assembly_dir / metadata_file).read_text()) if metadata_file else {}),
                },
            )


def security_findings(assembly_dir: Path) -> list[dict[str, Any]]:
    """Unacknowledged policy-validation violations (cdk-nag) recorded in the assembly's report."""
    report_path = assembly_dir / "validation-report.json"
    if not report_path.exists():
        raise FileNotFoundError(f"{report_path}: no policy-validation report; was the app synthesized with cdk-nag?")
    report = json.loads(report_path.read_text())
    return [violation for plugin in report["pluginReports"] for violation in plugin["violations"]]
