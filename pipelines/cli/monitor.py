"""`mlops monitor`: the drift monitoring of a stage's real-time endpoint: the latest executions of its data-quality
schedule, and the violations per feature that the latest completed one found."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from infra import manifest, naming
from infra.config.loading import STAGES_CONTEXT_KEY
from pipelines.cli.common import (
    AsJson,
    CommandError,
    ManifestDir,
    Stage,
    folding_table,
    is_local,
    manifest_directory,
    one_line_errors,
    print_table,
    stage_config,
    suggested,
    within,
)
from pipelines.cli.promotion import PROMOTION_TARGETS
from pipelines.monitoring import (
    MAX_EXECUTIONS,
    Execution,
    ExecutionReport,
    Monitoring,
    MonitoringError,
    NoSchedule,
)
from pipelines.registry import utc_timestamp

app = typer.Typer(no_args_is_help=True, help="Drift monitoring of a stage's real-time endpoint.")

DEFAULT_LIMIT = 5
Limit = Annotated[
    int, typer.Option("--limit", "-n", callback=within(1, MAX_EXECUTIONS), help="how many executions to list")
]


def why_no_schedule(ctx: typer.Context, stage: str, served: manifest.Deployment | None) -> str:
    """Why a stage whose config turns monitoring on has no schedule, and what creates it: the serving stack
    schedules monitoring only for a served version with a recorded baseline."""
    if served is None:
        promote = f" ({suggested(ctx, 'promote', '--to', stage)})" if stage in PROMOTION_TARGETS else ""
        return f"{stage} serves no version yet; promote one registered with a drift baseline{promote} and deploy"
    if served.baseline is None:
        return (
            f"the served version {served.version} has no recorded drift baseline; promote a version registered with "
            "one and deploy"
        )
    return (
        f"monitoring.enabled is on and the served version {served.version} has a baseline: deploy the stage, or "
        "check that the region and account are the stage's"
    )


def execution_document(execution: Execution) -> dict[str, Any]:
    return {
        "scheduled": utc_timestamp(execution.scheduled),
        "status": execution.status,
        "failure_reason": execution.failure_reason,
        "processing_job_arn": execution.processing_job_arn,
    }


def report_document(report: ExecutionReport | None) -> dict[str, Any] | None:
    if report is None:
        return None
    return {
        **execution_document(report.execution),
        "report": report.uri,
        "violations": [
            {
                "feature": violation.feature,
                "column": violation.column,
                "check": violation.check,
                "description": violation.description,
            }
            for violation in report.violations
        ],
    }


def minutes(timestamp: str) -> str:
    """`2026-05-01T10:00:00Z` -> `2026-05-01 10:00`, as `mlops models list` shows times."""
    return timestamp.replace("T", " ")[: len("2026-01-01 00:00")]


def violations_table(title: str) -> Table:
    table = folding_table(title, "feature", "column", "check")
    # Descriptions quote distances and offending values: wrapped, never cut.
    table.add_column("description", overflow="fold")
    return table


def print_status(document: dict[str, Any], limit: int, cadence: str) -> None:
    schedule = document["schedule"]
    failure = f": {schedule['failure_reason']}" if schedule["failure_reason"] else ""
    endpoint = f" of endpoint {schedule['endpoint']}" if schedule["endpoint"] else ""
    typer.echo(
        f"{document['stage']}: monitoring schedule {schedule['name']}{endpoint} is {schedule['status']}{failure}"
    )
    executions = document["executions"]
    if not executions:
        typer.echo(f"no executions yet; it runs {cadence}")
        return
    table = folding_table("latest executions", "scheduled (UTC)", "status", "reason")
    for execution in executions:
        table.add_row(minutes(execution["scheduled"]), execution["status"], execution["failure_reason"] or "")
    print_table(table)
    latest = document["latest_completed"]
    if latest is None:
        further = f"; --limit {MAX_EXECUTIONS} looks further back" if len(executions) == limit < MAX_EXECUTIONS else ""
        typer.echo(f"no completed execution among the latest {len(executions)}{further}")
        return
    scheduled = minutes(latest["scheduled"])
    if not latest["violations"]:
        typer.echo(f"the execution scheduled {scheduled} found no violations")
        return
    table = violations_table(f"violations found by the execution scheduled {scheduled}")
    for violation in latest["violations"]:
        table.add_row(violation["feature"], violation["column"], violation["check"], violation["description"])
    print_table(table)
    typer.echo(f"report: {latest['report']}")


@app.command("status")
@one_line_errors
def status(
    ctx: typer.Context,
    stage: Stage,
    limit: Limit = DEFAULT_LIMIT,
    as_json: AsJson = False,
    manifest_dir: ManifestDir = None,
) -> None:
    """The latest executions of the stage's data-quality monitoring schedule, and the violations per feature that the
    latest completed one found (features named per the served version's baseline in the deployment manifest)."""
    config = stage_config(stage)
    schedule_name = naming.data_quality_schedule_name(config)
    if is_local(ctx):
        raise CommandError(
            f"--local has no monitoring schedule {schedule_name}: the embedded AWS runs no Model Monitor; "
            "python -m pipelines.steps.data_quality analyze compares captured requests with a baseline locally"
        )
    if not config.monitoring.enabled:
        raise CommandError(
            f"{stage} has no monitoring schedule {schedule_name}: monitoring is off in its stage config; set "
            f"{STAGES_CONTEXT_KEY}.{stage}.monitoring.enabled to true in cdk.json and deploy the stage"
        )
    served = manifest.load(stage, manifest_directory(ctx, manifest_dir)).current
    features = served.baseline.features if served is not None and served.baseline is not None else ()
    monitoring = Monitoring()
    try:
        schedule = monitoring.schedule(schedule_name)
        executions = monitoring.executions(schedule_name, limit)
        latest = next((execution for execution in executions if execution.completed), None)
        report = monitoring.report(latest, features) if latest is not None else None
    except NoSchedule:
        raise CommandError(
            f"{stage} has no monitoring schedule {schedule_name}: {why_no_schedule(ctx, stage, served)}"
        ) from None
    except MonitoringError as error:
        raise CommandError(str(error)) from None
    document = {
        "stage": stage,
        "schedule": {
            "name": schedule.name,
            "status": schedule.status,
            "endpoint": schedule.endpoint,
            "failure_reason": schedule.failure_reason,
        },
        "executions": [execution_document(execution) for execution in executions],
        "latest_completed": report_document(report),
    }
    if as_json:
        typer.echo(json.dumps(document, indent=1))
    else:
        print_status(document, limit, config.monitoring.schedule)
