"""The delivery pipeline: its stages in order, what its synth runs, and what its CodeBuild roles may do."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from infra.config import DeliveryConfig, StageConfig
from infra.foundation.encryption import KEY_ADMINISTRATION_ACTIONS
from infra.promotion import PROMOTION_APPROVAL_STEP, SMOKE_TEST_STEP
from infra.promotion.stack import (
    ARTIFACT_KEY_USE_ACTIONS,
    NO_ENDPOINT,
    OTHER_ACCOUNT,
    PROMOTION_COMMENT,
    smoke_test_skip_reason,
)
from infra.promotion.steps import SMOKE_TEST_COMMANDS, SYNTH_COMMANDS, cdk_cli_version
from tests.conftest import DELIVERED_MODEL_PACKAGE, DELIVERY_REGION, PIPELINE_ACCOUNT, PROD_ACCOUNT
from tests.infra.promotion.conftest import as_list, of_type, policy_statements_of, project_of

STAGING_GROUP_ARN = (
    f"arn:aws:sagemaker:{DELIVERY_REGION}:{PIPELINE_ACCOUNT}:model-package-group/mlopskit-staging-models"
)
STAGING_VERSIONS_ARN = f"arn:aws:sagemaker:{DELIVERY_REGION}:{PIPELINE_ACCOUNT}:model-package/mlopskit-staging-models/*"


def names(actions: list[dict[str, Any]]) -> list[str]:
    return [action["Name"] for action in actions]


def provider(action: dict[str, Any]) -> str:
    return action["ActionTypeId"]["Provider"]


def buildspec(project: dict[str, Any]) -> dict[str, Any]:
    return yaml.safe_load(project["Properties"]["Source"]["BuildSpec"])


def sagemaker_statements(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in statements if any(a.startswith("sagemaker:") for a in as_list(s["Action"]))]


def test_the_delivery_stack_is_named_for_the_project_in_the_tooling_environment(delivery_stack):
    assert delivery_stack.stack_name == "mlopskit-delivery"
    assert delivery_stack.environment == f"aws://{PIPELINE_ACCOUNT}/{DELIVERY_REGION}"


def test_stages_run_source_build_self_mutation_assets_staging_then_prod(stages, pipeline_properties):
    assert list(stages) == ["Source", "Build", "UpdatePipeline", "Assets", "staging", "prod"]
    assert pipeline_properties["Name"] == "mlopskit-delivery"
    assert (names(stages["Source"]), provider(stages["Source"][0])) == (["mlopskit"], "CodeCommit")
    assert stages["Source"][0]["Configuration"]["BranchName"] == "main"
    assert names(stages["Build"]) == ["Synth"]
    assert names(stages["UpdatePipeline"]) == ["SelfMutate"]
    assert {provider(action) for action in stages["Assets"]} == {"CodeBuild"}


def deploy_actions(actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [action for action in actions if provider(action) == "CloudFormation"]


def test_staging_deploys_its_stacks_then_runs_the_smoke_test_last(stages, delivery_app):
    actions = stages["staging"]
    smoke_test = actions[-1]
    assert (smoke_test["Name"], provider(smoke_test)) == (SMOKE_TEST_STEP, "CodeBuild")
    assert names(actions).count(SMOKE_TEST_STEP) == 1
    assert all(action["RunOrder"] < smoke_test["RunOrder"] for action in actions[:-1])
    assert deploy_actions(actions) == actions[:-1]
    deployed = {action["Configuration"]["StackName"] for action in deploy_actions(actions)}
    staging_stacks = {s.stack_name for name, s in delivery_app.stacks.items() if name.startswith("Delivery/staging/")}
    assert (
        deployed
        == staging_stacks
        == {
            "mlopskit-staging-foundation",
            "mlopskit-staging-pipeline",
            "mlopskit-staging-serving",
        }
    )


def test_prod_waits_for_the_manual_promotion_before_any_deploy(stages, delivery_app):
    approval, *deploys = stages["prod"]
    assert approval["Name"] == PROMOTION_APPROVAL_STEP
    assert approval["ActionTypeId"] == {"Category": "Approval", "Owner": "AWS", "Provider": "Manual", "Version": "1"}
    assert approval["Configuration"] == {"CustomData": PROMOTION_COMMENT}
    assert all(action["RunOrder"] > approval["RunOrder"] for action in deploys)
    assert deploys == deploy_actions(deploys)
    deployed = {action["Configuration"]["StackName"] for action in deploys}
    assert deployed == {"mlopskit-prod-foundation", "mlopskit-prod-pipeline", "mlopskit-prod-serving"}


def test_prod_deploys_into_its_own_account_through_its_bootstrap_roles(stages):
    for action in deploy_actions(stages["prod"]):
        assert f":iam::{PROD_ACCOUNT}:role/cdk-hnb659fds-deploy-role-{PROD_ACCOUNT}-" in json.dumps(action["RoleArn"])


def test_the_synth_tests_then_synthesizes_the_committed_manifests_without_an_override(stages, delivery_template):
    """The assembly is a function of the commit: no step resolves a version or passes one with -c."""
    project = project_of(delivery_template, stages["Build"][0])
    spec = buildspec(project)
    assert spec["phases"]["install"]["commands"] == ["make setup"]
    commands = spec["phases"]["build"]["commands"]
    assert (
        commands
        == SYNTH_COMMANDS
        == [
            "make test",
            "npx --no-install cdk synth --quiet --no-notices --no-version-reporting",
        ]
    )
    assert spec["artifacts"]["base-directory"] == "cdk.out"


def test_the_synth_builds_the_serving_image_asset_in_a_privileged_python_and_node_build(stages, delivery_template):
    project = project_of(delivery_template, stages["Build"][0])
    environment = project["Properties"]["Environment"]
    assert environment["PrivilegedMode"] is True
    assert environment["Image"] == "aws/codebuild/standard:7.0"
    assert buildspec(project)["phases"]["install"]["runtime-versions"] == {"python": "3.11", "nodejs": "20"}


def test_the_synth_role_reads_no_registry(stages, delivery_template):
    """Synth calls no AWS: what the stages serve is in the commit."""
    statements = policy_statements_of(delivery_template, project_of(delivery_template, stages["Build"][0]))
    assert sagemaker_statements(statements) == []


def test_the_smoke_test_invokes_the_staging_endpoint_and_reads_only_what_it_needs(stages, delivery_template):
    project = project_of(delivery_template, stages["staging"][-1])
    spec = buildspec(project)
    assert (
        spec["phases"]["build"]["commands"]
        == SMOKE_TEST_COMMANDS
        == ['.venv/bin/mlops smoke-test --stage staging --model-package-arn "$MODEL_PACKAGE_ARN"']
    )
    statements = {s.get("Sid"): s for s in policy_statements_of(delivery_template, project)}
    endpoint = f"arn:aws:sagemaker:{DELIVERY_REGION}:{PIPELINE_ACCOUNT}:endpoint/mlopskit-staging-realtime"
    assert (statements["InvokeStagingEndpoint"]["Action"], statements["InvokeStagingEndpoint"]["Resource"]) == (
        "sagemaker:InvokeEndpoint",
        endpoint,
    )
    assert statements["DescribeStagingVersions"]["Resource"] == STAGING_VERSIONS_ARN
    bucket = f"mlopskit-staging-artifacts-{PIPELINE_ACCOUNT}-{DELIVERY_REGION}"
    assert statements["ReadModelArchives"]["Resource"] == f"arn:aws:s3:::{bucket}/models/*"
    decrypt = statements["DecryptModelArchives"]
    assert decrypt["Condition"] == {
        "StringEquals": {"kms:ViaService": f"s3.{DELIVERY_REGION}.amazonaws.com"},
        "ForAnyValue:StringEquals": {"kms:ResourceAliases": ["alias/mlopskit-staging"]},
    }
    assert {a for s in sagemaker_statements(list(statements.values())) for a in as_list(s["Action"])} == {
        "sagemaker:InvokeEndpoint",
        "sagemaker:DescribeModelPackage",
    }


def test_the_smoke_test_checks_the_version_staging_was_deployed_with(stages, delivery_template, delivery_app):
    """An output of the staging serving stack, read through its deploy action's namespace: the pipeline's own
    template does not change with each approved version (which would restart it through self-mutation)."""
    serving = delivery_app.stacks["Delivery/staging/Serving"]
    assert serving.template["Outputs"]["ServedModelPackageArn"]["Value"] == DELIVERED_MODEL_PACKAGE
    (deploy,) = [action for action in stages["staging"] if action["Name"] == "mlopskit-staging-serving.Deploy"]
    smoke_test = stages["staging"][-1]
    variables = json.loads(smoke_test["Configuration"]["EnvironmentVariables"])
    (served,) = [variable for variable in variables if variable["name"] == "MODEL_PACKAGE_ARN"]
    assert served["value"] == f"#{{{deploy['Namespace']}.ServedModelPackageArn}}"
    assert DELIVERED_MODEL_PACKAGE not in json.dumps(delivery_template)


def test_self_mutation_and_asset_publishing_use_the_pinned_cdk_cli(stages, delivery_template):
    spec = buildspec(project_of(delivery_template, stages["UpdatePipeline"][0]))
    assert spec["phases"]["install"]["commands"] == [f"npm install -g aws-cdk@{cdk_cli_version()}"]
    assert spec["phases"]["build"]["commands"] == ["cdk -a . deploy Delivery --require-approval=never --verbose"]


def test_artifacts_are_encrypted_with_a_rotating_key_that_the_stage_accounts_may_decrypt(delivery_template):
    (key,) = of_type(delivery_template, "AWS::KMS::Key").values()
    assert key["Properties"]["EnableKeyRotation"] is True
    root, *named = key["Properties"]["KeyPolicy"]["Statement"]
    assert root["Principal"] == {"AWS": f"arn:aws:iam::{PIPELINE_ACCOUNT}:root"}
    assert root["Action"] == sorted({*KEY_ADMINISTRATION_ACTIONS, *ARTIFACT_KEY_USE_ACTIONS}), "not kms:*"
    deploy_roles = json.dumps([statement["Principal"] for statement in named])
    for account in (PIPELINE_ACCOUNT, PROD_ACCOUNT):
        assert f":iam::{account}:role/cdk-hnb659fds-deploy-role-{account}-{DELIVERY_REGION}" in deploy_roles
    (bucket,) = of_type(delivery_template, "AWS::S3::Bucket").values()
    encryption = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"


@pytest.mark.parametrize("stage", ["staging", "prod"])
def test_delivered_stacks_keep_their_names_and_take_their_stage_environment(delivery_app, stage):
    account = PIPELINE_ACCOUNT if stage == "staging" else PROD_ACCOUNT
    stacks = {name: s for name, s in delivery_app.stacks.items() if name.startswith(f"Delivery/{stage}/")}
    assert {s.stack_name for s in stacks.values()} == {
        f"mlopskit-{stage}-{unit}" for unit in ("foundation", "pipeline", "serving")
    }
    assert {s.environment for s in stacks.values()} == {f"aws://{account}/{DELIVERY_REGION}"}
    assert {s.termination_protection for s in stacks.values()} == {stage == "prod"}


@pytest.mark.parametrize(
    ("account", "realtime", "serving", "reason"),
    [
        (PIPELINE_ACCOUNT, True, True, None),
        (None, True, True, None),
        (PROD_ACCOUNT, True, True, OTHER_ACCOUNT),
        (PIPELINE_ACCOUNT, False, True, NO_ENDPOINT),
        (PIPELINE_ACCOUNT, True, False, NO_ENDPOINT),
    ],
)
def test_the_smoke_test_runs_where_the_pipeline_can_reach_a_staging_endpoint(account, realtime, serving, reason):
    staging = StageConfig.model_validate(
        {
            "name": "staging",
            "project_name": "mlopskit",
            "account": account,
            "inference": {"realtime": {"enabled": realtime}},
        }
    )
    delivery = DeliveryConfig(account=PIPELINE_ACCOUNT, region=DELIVERY_REGION)
    assert smoke_test_skip_reason(staging, delivery, serving=serving) == reason
