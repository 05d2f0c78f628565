"""The GitHub Actions alternative: test on every change; on main, staging then (reviewed) prod, through OIDC; each
stage deploys what its committed manifest names, and an approval reaches staging as a commit of its manifest."""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest
import typer
import yaml

from infra.config import PROJECT_ROOT
from infra.manifest import manifest_path
from infra.promotion.promotion_commit import PROMOTE_COMMANDS
from infra.promotion.steps import SMOKE_TEST_COMMANDS, SYNTH_COMMANDS
from pipelines.cli import app as mlops_app

WORKFLOW = PROJECT_ROOT / ".github" / "workflows" / "deploy.yml"
MLOPS = re.compile(r"(?:\.venv/bin/)?mlops ((?:[a-z][a-z-]*\s*)+)")


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


@pytest.fixture(scope="module")
def jobs(workflow) -> dict[str, dict[str, Any]]:
    return workflow["jobs"]


def runs(job: dict[str, Any]) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def uses(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in job["steps"] if step.get("uses", "").startswith(f"{action}@")]


def test_pushes_pull_requests_a_schedule_and_a_manual_start_run_it(workflow):
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as True
    assert triggers["push"] == {"branches": ["main"]}
    assert "pull_request" in triggers and "workflow_dispatch" in triggers
    assert triggers["schedule"] == [{"cron": "*/15 * * * *"}]
    assert workflow["permissions"] == {"contents": "read"}


def test_the_job_graph_promotes_or_tests_then_deploys_staging_then_prod(jobs):
    assert list(jobs) == ["test", "promote-staging", "deploy-staging", "deploy-prod"]
    assert "needs" not in jobs["test"] and "needs" not in jobs["promote-staging"]
    assert jobs["deploy-staging"]["needs"] == ["test", "promote-staging"]
    assert jobs["deploy-prod"]["needs"] == "deploy-staging"
    assert jobs["test"]["if"] == "github.event_name == 'push' || github.event_name == 'pull_request'"
    assert jobs["promote-staging"]["if"] == (
        "github.event_name == 'schedule' || github.event_name == 'workflow_dispatch'"
    )


def test_the_test_job_sets_up_python_and_node_and_runs_make_test(jobs):
    test = jobs["test"]
    assert uses(test, "actions/setup-python")[0]["with"]["python-version"] == "3.11"
    assert uses(test, "actions/setup-node")
    assert runs(test) == ["make test"]


def test_only_a_tested_push_to_main_or_a_promotion_commit_deploys(jobs):
    condition = " ".join(jobs["deploy-staging"]["if"].split())
    assert "github.event_name == 'push' && github.ref == 'refs/heads/main' && needs.test.result == 'success'" in (
        condition
    )
    assert "needs.promote-staging.outputs.revision != ''" in condition
    assert "if" not in jobs["deploy-prod"], "prod runs only after staging"


@pytest.mark.parametrize(
    ("job", "environment", "contents"),
    [("promote-staging", "staging", "write"), ("deploy-staging", "staging", "read"), ("deploy-prod", "prod", "read")],
)
def test_aws_jobs_use_their_environment_and_oidc_credentials(jobs, job, environment, contents):
    deploy = jobs[job]
    assert deploy["environment"] == environment
    assert deploy["permissions"] == {"id-token": "write", "contents": contents}
    (credentials,) = uses(deploy, "aws-actions/configure-aws-credentials")
    assert credentials["uses"] == "aws-actions/configure-aws-credentials@v4"
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    assert credentials["with"]["aws-region"] == "${{ vars.AWS_REGION }}"
    assert not [key for key in credentials["with"] if "secret" in key or "access-key" in key], "no long-lived keys"


def every_command(jobs) -> list[str]:
    return [command for job in jobs.values() for command in runs(job)]


def test_no_path_overrides_the_manifests(jobs):
    """The one truth: no deploy or synth in the workflow or the delivery pipeline names a version with -c."""
    commands = [*every_command(jobs), *SYNTH_COMMANDS, *PROMOTE_COMMANDS]
    assert not [command for command in commands if "model_package_arn" in command]
    assert not [command for command in commands if "models resolve" in command]


def test_each_stage_deploys_its_manifest_from_the_revision_staging_was_deployed_from(jobs):
    staging, prod = jobs["deploy-staging"], jobs["deploy-prod"]
    (deploy_staging,) = [command for command in runs(staging) if "cdk deploy" in command]
    (deploy_prod,) = [command for command in runs(prod) if "cdk deploy" in command]
    assert shlex.split(deploy_staging) == ["npx", "cdk", "deploy", "staging/*", "-c", "stage=staging",
                                           "--require-approval", "never"]  # fmt: skip
    assert shlex.split(deploy_prod) == ["npx", "cdk", "deploy", "prod/*", "-c", "stage=prod",
                                        "--require-approval", "never"]  # fmt: skip
    assert runs(staging).index(deploy_staging) < runs(staging).index(".venv/bin/mlops smoke-test --stage staging")
    revision = "${{ needs.promote-staging.outputs.revision || github.sha }}"
    assert uses(staging, "actions/checkout")[0]["with"]["ref"] == revision
    assert staging["outputs"] == {"revision": revision}
    assert uses(prod, "actions/checkout")[0]["with"]["ref"] == "${{ needs.deploy-staging.outputs.revision }}"


def test_an_approval_reaches_staging_as_a_commit_of_its_manifest_alone(jobs):
    promote = jobs["promote-staging"]
    (promotion,) = [command for command in runs(promote) if "mlops promote" in command]
    assert shlex.split(promotion)[:4] == [".venv/bin/mlops", "promote", "--to", "staging"]
    assert "--version" not in promotion, "the latest Approved version"
    (commit,) = [step for step in promote["steps"] if step.get("id") == "commit"]
    staging_manifest = manifest_path("staging").relative_to(PROJECT_ROOT).as_posix()
    lines = commit["run"].splitlines()
    assert lines[0] == f"git add {staging_manifest}"
    assert lines[1] == "if git diff --cached --quiet; then exit 0; fi", "an unchanged manifest commits nothing"
    assert "git push origin HEAD:main" in lines
    assert lines[-1] == 'echo "revision=$(git rev-parse HEAD)" >> "$GITHUB_OUTPUT"'
    assert promote["outputs"] == {"revision": "${{ steps.commit.outputs.revision }}"}
    assert uses(promote, "actions/checkout")[0]["with"]["ref"] == "main"


def test_the_deployed_stack_patterns_name_the_stages_stacks(synthesized_app):
    """With delivery disabled (the GitHub way), `staging/*` and `prod/*` select each stage's stacks."""
    for stage in ("staging", "prod"):
        assert {name for name in synthesized_app.stacks if name.startswith(f"{stage}/")} == {
            f"{stage}/Foundation",
            f"{stage}/Pipeline",
            f"{stage}/Serving",
        }


def mlops_invocations(commands: list[str]) -> list[list[str]]:
    return [match.group(1).split() for command in commands for match in MLOPS.finditer(command)]


def resolve_command(words: list[str]) -> Any:
    """The `mlops` (click) command that these words name: subcommands, then arguments."""
    command = typer.main.get_command(mlops_app)
    for word in words:
        if not is_group(command):
            break
        assert word in command.commands, f"mlops has no command {' '.join(words)!r}"
        command = command.commands[word]
    return command


def is_group(command: Any) -> bool:
    return hasattr(command, "commands")


def test_every_mlops_command_the_workflow_and_pipeline_call_exists_and_names_its_stage(jobs):
    workflow_commands = every_command(jobs)
    pipeline_commands = [*SYNTH_COMMANDS, *SMOKE_TEST_COMMANDS, *PROMOTE_COMMANDS]
    invocations = mlops_invocations(workflow_commands + pipeline_commands)
    assert ["promote"] in invocations
    assert ["smoke-test"] in invocations
    for words in invocations:
        command = resolve_command(words)
        assert not is_group(command), f"mlops {' '.join(words)} is a group, not a command"
        options = {option for parameter in command.params for option in getattr(parameter, "opts", [])}
        assert {"--stage", "--to"} & options, words
