"""The GitHub Actions alternative: test on every change; on main, staging then (reviewed) prod, through OIDC."""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest
import typer
import yaml

from infra.config import PROJECT_ROOT
from infra.promotion.steps import RESOLVE_COMMAND, SMOKE_TEST_COMMANDS, SYNTH_COMMANDS
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


def test_every_push_to_main_and_every_pull_request_runs_it(workflow):
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as True
    assert triggers["push"] == {"branches": ["main"]}
    assert "pull_request" in triggers
    assert workflow["permissions"] == {"contents": "read"}


def test_the_job_graph_is_test_then_staging_then_prod(jobs):
    assert list(jobs) == ["test", "deploy-staging", "deploy-prod"]
    assert "needs" not in jobs["test"]
    assert jobs["deploy-staging"]["needs"] == "test"
    assert jobs["deploy-prod"]["needs"] == "deploy-staging"


def test_the_test_job_sets_up_python_and_node_and_runs_make_test(jobs):
    test = jobs["test"]
    assert uses(test, "actions/setup-python")[0]["with"]["python-version"] == "3.11"
    assert uses(test, "actions/setup-node")
    assert runs(test) == ["make test"]


def test_only_a_push_to_main_deploys(jobs):
    condition = jobs["deploy-staging"]["if"]
    assert "github.event_name == 'push'" in condition
    assert "github.ref == 'refs/heads/main'" in condition
    assert "if" not in jobs["deploy-prod"], "prod runs only after staging, which already requires main"


@pytest.mark.parametrize(("job", "environment"), [("deploy-staging", "staging"), ("deploy-prod", "prod")])
def test_deploy_jobs_use_their_environment_and_oidc_credentials(jobs, job, environment):
    deploy = jobs[job]
    assert deploy["environment"] == environment
    assert deploy["permissions"] == {"id-token": "write", "contents": "read"}
    (credentials,) = uses(deploy, "aws-actions/configure-aws-credentials")
    assert credentials["uses"] == "aws-actions/configure-aws-credentials@v4"
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    assert credentials["with"]["aws-region"] == "${{ vars.AWS_REGION }}"
    assert not [key for key in credentials["with"] if "secret" in key or "access-key" in key], "no long-lived keys"


def test_staging_deploys_the_resolved_version_and_hands_it_to_prod(jobs):
    staging, prod = jobs["deploy-staging"], jobs["deploy-prod"]
    resolve = next(step for step in staging["steps"] if step.get("id") == "resolve")
    assert "ARN=$(.venv/bin/mlops models resolve --stage staging)" in resolve["run"]
    assert 'echo "model_package_arn=$ARN" >> "$GITHUB_OUTPUT"' in resolve["run"]
    assert staging["outputs"] == {"model_package_arn": "${{ steps.resolve.outputs.model_package_arn }}"}

    (deploy_staging,) = [step for step in staging["steps"] if "cdk deploy" in step.get("run", "")]
    assert deploy_staging["env"] == {"ARN": "${{ steps.resolve.outputs.model_package_arn }}"}
    assert shlex.split(deploy_staging["run"]) == [
        *("npx", "cdk", "deploy", "staging/*", "-c", "stage=staging"),
        *("-c", "staging.inference.model_package_arn=$ARN", "--require-approval", "never"),
    ]
    (deploy_prod,) = [step for step in prod["steps"] if "cdk deploy" in step.get("run", "")]
    assert deploy_prod["env"] == {"ARN": "${{ needs.deploy-staging.outputs.model_package_arn }}"}
    assert shlex.split(deploy_prod["run"]) == [
        *("npx", "cdk", "deploy", "prod/*", "-c", "stage=prod"),
        *("-c", "prod.inference.model_package_arn=$ARN", "--require-approval", "never"),
    ]


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


def test_every_mlops_command_the_workflow_and_pipeline_call_exists_with_a_stage_option(jobs):
    workflow_commands = [command for job in jobs.values() for command in runs(job)]
    pipeline_commands = [*SYNTH_COMMANDS, *SMOKE_TEST_COMMANDS]
    invocations = mlops_invocations(workflow_commands + pipeline_commands)
    assert ["models", "resolve"] in invocations
    assert ["smoke-test"] in invocations
    assert RESOLVE_COMMAND in SYNTH_COMMANDS
    for words in invocations:
        command = resolve_command(words)
        assert not is_group(command), f"mlops {' '.join(words)} is a group, not a command"
        options = {option for parameter in command.params for option in getattr(parameter, "opts", [])}
        assert "--stage" in options, words
