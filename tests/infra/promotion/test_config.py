"""The `delivery` section: cdk.json defaults, -c overrides, and one clear line per invalid key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from infra.config import (
    PROJECT_ROOT,
    DeliveryConfig,
    StageConfigError,
    delivered_stage_problems,
    load_delivery_config,
    load_stage_configs,
)

CONNECTION_ARN = "arn:aws:codeconnections:eu-west-1:111111111111:connection/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
ENABLED = {
    "delivery.enabled": "true",
    "delivery.region": "eu-west-1",
    "delivery.source.repository": "mlopskit",
}


def delivery(context: dict[str, Any], **overrides: Any) -> DeliveryConfig:
    return load_delivery_config({**context, **overrides})


def error_for(context: dict[str, Any], **overrides: Any) -> str:
    with pytest.raises(StageConfigError) as raised:
        load_delivery_config({**context, **overrides})
    return str(raised.value)


def test_cdk_json_keeps_delivery_off_until_a_repository_is_configured(cdk_context):
    config = delivery(cdk_context)
    assert config.enabled is False
    assert (config.account, config.region) == (None, None)
    assert (config.source.kind, config.source.repository, config.source.branch) == ("codecommit", None, "main")
    assert config.source.connection_arn is None


def test_command_line_values_enable_a_codecommit_source(cdk_context):
    config = delivery(cdk_context, **ENABLED, **{"delivery.account": "111111111111"})
    assert config.enabled is True
    assert (config.account, config.region) == ("111111111111", "eu-west-1")
    assert config.source.description == "CodeCommit mlopskit@main"
    assert cdk_context["delivery"]["enabled"] is False, "cdk.json is not mutated"


def test_a_connection_source_names_owner_repository_and_connection(cdk_context):
    config = delivery(
        cdk_context,
        **{
            **ENABLED,
            "delivery.source.kind": "connection",
            "delivery.source.repository": "acme/mlopskit",
            "delivery.source.branch": "release/2.0",
            "delivery.source.connection_arn": CONNECTION_ARN,
        },
    )
    assert config.source.connection_arn == CONNECTION_ARN
    assert config.source.description == "connection acme/mlopskit@release/2.0"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"delivery.source.kind": "connection", "delivery.source.repository": "acme/mlopskit"},
            "delivery.source.connection_arn: required when source.kind is 'connection'",
        ),
        (
            {"delivery.region": None},
            "delivery.region: required when delivery is enabled (the pipeline stack needs an explicit one)",
        ),
        (
            {"delivery.source.kind": "github"},
            "delivery.source.kind = 'github': Input should be 'codecommit' or 'connection'",
        ),
        (
            {"delivery.source.repository": None},
            "delivery.source.repository: required when delivery is enabled",
        ),
        (
            {"delivery.source.connection_arn": CONNECTION_ARN},
            "delivery.source.connection_arn: only for source.kind 'connection'; this source is CodeCommit",
        ),
        (
            {"delivery.source.kind": "connection", "delivery.source.connection_arn": "arn:aws:iam::1:role/x"},
            "delivery.source.connection_arn = 'arn:aws:iam::1:role/x': not a CodeConnections connection ARN; "
            "expected arn:<partition>:codeconnections:<region>:<account>:connection/<uuid> (or codestar-connections)",
        ),
        (
            {"delivery.source.kind": "connection", "delivery.source.connection_arn": CONNECTION_ARN},
            "delivery.source.repository = 'mlopskit': expected owner/repository",
        ),
        (
            {"delivery.source.repository": "acme/mlopskit"},
            "delivery.source.repository = 'acme/mlopskit': expected a CodeCommit repository name",
        ),
        (
            {"delivery.account": "1234"},
            "delivery.account = '1234': not an AWS account id; expected exactly 12 digits, e.g. 123456789012",
        ),
        (
            {"delivery.enabled": "sometimes"},
            "delivery.enabled = 'sometimes': Input should be a valid boolean, unable to interpret input",
        ),
        (
            {"delivery.source.branch": "-main"},
            "delivery.source.branch = '-main': not a git branch name, e.g. main or release/1.2",
        ),
        (
            {"delivery.pipeline_name": "x"},
            "delivery.pipeline_name: unknown key; allowed keys: enabled, account, region, source",
        ),
        (
            {"delivery.source.owner": "acme"},
            "delivery.source.owner: unknown key; allowed keys: kind, repository, branch, connection_arn",
        ),
    ],
)
def test_invalid_value_is_one_line_naming_the_key(cdk_context, overrides, expected):
    assert error_for(cdk_context, **{**ENABLED, **overrides}) == expected


def test_a_codestar_connection_arn_is_accepted_too(cdk_context):
    arn = CONNECTION_ARN.replace("codeconnections", "codestar-connections")
    config = delivery(
        cdk_context,
        **{
            **ENABLED,
            "delivery.source.kind": "connection",
            "delivery.source.repository": "acme/mlopskit",
            "delivery.source.connection_arn": arn,
        },
    )
    assert config.source.connection_arn == arn


def test_a_disabled_section_is_still_checked_where_values_are_given(cdk_context):
    assert error_for(cdk_context, **{"delivery.source.kind": "connection"}) == (
        "delivery.source.connection_arn: required when source.kind is 'connection'"
    )


def test_a_delivery_section_that_is_not_an_object_is_named(cdk_context):
    assert error_for({**cdk_context, "delivery": "on"}) == "delivery = 'on': expected an object of settings"


def test_every_problem_is_reported_at_once(cdk_context):
    message = error_for(cdk_context, **{"delivery.enabled": "true"})
    assert message.splitlines() == [
        "delivery.source.repository: required when delivery is enabled",
        "delivery.region: required when delivery is enabled (the pipeline stack needs an explicit one)",
    ]


def stage_problems(context: dict[str, Any], **overrides: Any) -> list[str]:
    merged = {**context, **ENABLED, **overrides}
    return delivered_stage_problems(load_delivery_config(merged), load_stage_configs(merged))


def test_with_delivery_enabled_staging_and_prod_are_selected_together_or_not_at_all(cdk_context):
    assert stage_problems(cdk_context) == []
    assert stage_problems(cdk_context, stage="dev") == []
    assert stage_problems(cdk_context, stage="dev,staging,prod") == []
    assert stage_problems(cdk_context, stage="prod") == [
        "context 'stage': with delivery.enabled the delivery pipeline deploys staging and prod together; "
        "select both or neither (selected: prod)"
    ]


def test_a_cross_account_stage_needs_the_pipeline_account(cdk_context):
    assert stage_problems(cdk_context, **{"prod.account": "222222222222"}) == [
        "delivery.account: required when a delivered stage names its own account (prod); "
        "cross-account deployment needs the pipeline's account"
    ]
    assert stage_problems(cdk_context, **{"prod.account": "222222222222", "delivery.account": "111111111111"}) == []


def test_app_exits_with_one_line_per_delivery_problem(cdk_context, tmp_path):
    """The checks run before any construct is built: app.py fails fast, naming the keys of both sections."""
    context = {**cdk_context, "delivery.source.kind": "svn", "prod.account": "1"}
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "invalid stage config: stages.prod.account = '1': not an AWS account id; expected exactly 12 digits, "
        "e.g. 123456789012",
        "invalid stage config: delivery.source.kind = 'svn': Input should be 'codecommit' or 'connection'",
    ]


def test_delivery_without_any_account_synthesizes(cdk_context, tmp_path):
    """Every stack environment-agnostic: the self-mutation acknowledgement names the template's own account, as
    cdk-nag renders it, instead of a token that could not be a metadata key (a jsii traceback before)."""
    from infra.cloud_assembly import security_findings, synthesized_stacks
    from tests.conftest import NO_BUNDLING, synthesize

    context = {**cdk_context, **NO_BUNDLING, **ENABLED, "stage": "staging,prod"}
    for key in ("staging.inference.model_package_arn", "prod.inference.model_package_arn"):
        context.pop(key, None)
    assembly = synthesize(context, tmp_path)

    assert security_findings(assembly) == []
    (pipeline,) = [stack for stack in synthesized_stacks(assembly) if stack.display_name == "Delivery"]
    assert pipeline.environment == "aws://unknown-account/eu-west-1"
    assert any(
        rule == "AwsSolutions-IAM5[Resource::arn:*:iam::<AWS::AccountId>:role/*]"
        for _, rule, _ in pipeline.acknowledgements()
    )
