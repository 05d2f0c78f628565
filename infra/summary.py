"""`make run`'s report on a synthesized assembly: stacks, resource counts per type, cdk-nag and cfn-lint status,
what each stage serves, and what the delivery pipeline does."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from infra.cloud_assembly import SynthesizedStack, security_findings, synthesized_stacks
from infra.lint import lint_templates
from infra.promotion import DELIVERY_SUMMARY_METADATA
from infra.serving import SERVING_SUMMARY_METADATA

app = typer.Typer(add_completion=False)


@app.command()
def summarize(
    assembly_dir: Annotated[
        Path, typer.Argument(exists=True, file_okay=False, help="A synthesized cloud assembly")
    ] = Path("cdk.out"),
) -> None:
    """Summarize a synthesized cloud assembly; exit non-zero on any cdk-nag finding or cfn-lint error."""
    console = Console(width=120)
    stacks = list(synthesized_stacks(assembly_dir))
    if not stacks:
        console.print(f"[red]no stacks in {assembly_dir}[/red]")
        raise typer.Exit(1)

    resources = Table(title=f"Resources per stack in {assembly_dir}")
    status = Table(title="Quality gates per stack")
    for column in ("stack", "resource type", "count"):
        resources.add_column(column)
    for column in ("stack", "CloudFormation name", "resources", "nag acknowledgements", "lint errors", "lint warnings"):
        status.add_column(column)

    lint_errors = 0
    findings_by_template = lint_templates([stack.template_path for stack in stacks])
    for stack in stacks:
        counts = Counter(resource["Type"] for resource in stack.template["Resources"].values())
        for row, (resource_type, count) in enumerate(sorted(counts.items())):
            resources.add_row(stack.display_name if row == 0 else "", resource_type, str(count))
        resources.add_section()
        findings = findings_by_template[stack.template_path]
        errors = sum(finding.severity == "error" for finding in findings)
        lint_errors += errors
        status.add_row(
            stack.display_name,
            stack.stack_name,
            str(counts.total()),
            str(len(stack.acknowledgements())),
            str(errors),
            str(len(findings) - errors),
        )
        for finding in findings:
            console.print(
                f"cfn-lint {stack.display_name}: {finding}", style="red" if finding.severity == "error" else "yellow"
            )
    serving = Table(title="Serving per stage")
    for column in ("stage", "serving"):
        serving.add_column(column)
    for stage, description in serving_by_stage(stacks).items():
        serving.add_row(stage, description)
    console.print(resources, status, serving)
    for line in delivery_summary(stacks) or ["not recorded in this assembly"]:
        console.print(f"Delivery: {line}")

    try:
        unacknowledged = security_findings(assembly_dir)
    except FileNotFoundError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None
    acknowledged = sum(len(stack.acknowledgements()) for stack in stacks)
    console.print(
        f"cdk-nag AwsSolutions: {len(unacknowledged)} unacknowledged findings, {acknowledged} acknowledged with reasons"
    )
    console.print(f"cfn-lint over {len(stacks)} templates: {lint_errors} errors")
    if unacknowledged or lint_errors:
        raise typer.Exit(1)


def serving_by_stage(stacks: list[SynthesizedStack]) -> dict[str, str]:
    """{stage: its endpoints and batch transform, or why it serves nothing}, as the stage recorded it at synth."""
    served: dict[str, list[str]] = {}
    for stack in stacks:
        served.setdefault(stage_of(stack), []).extend(_entries(stack, SERVING_SUMMARY_METADATA))
    return {stage: "; ".join(descriptions) for stage, descriptions in served.items() if descriptions}


def delivery_summary(stacks: list[SynthesizedStack]) -> list[str]:
    """What the delivery pipeline does, in order (or why there is none), as the app recorded it at synth."""
    return list(dict.fromkeys(line for stack in stacks for line in _entries(stack, DELIVERY_SUMMARY_METADATA)))


def stage_of(stack: SynthesizedStack) -> str:
    """`dev/Foundation` → dev; a stage the delivery pipeline owns is nested: `Delivery/staging/Serving` → staging."""
    parts = stack.display_name.split("/")
    return parts[-2] if len(parts) > 1 else parts[0]


def _entries(stack: SynthesizedStack, metadata_type: str) -> list[str]:
    return [entry["data"] for entries in stack.metadata.values() for entry in entries if entry["type"] == metadata_type]


if __name__ == "__main__":
    app()
