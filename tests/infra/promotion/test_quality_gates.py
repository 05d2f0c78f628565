"""The delivery-enabled assembly passes the same gates as the default one: offline synth, cdk-nag (at synth),
cfn-lint, and acknowledgements that are few, deliberate and explained."""

from __future__ import annotations

import pytest

from infra.assembly import DELIVERY_CONSTRUCT_ID
from infra.cloud_assembly import security_findings
from infra.security import MINIMUM_REASON_LENGTH
from tests.conftest import DELIVERY_REGION, MODEL_PACKAGES, PIPELINE_ACCOUNT, PROD_ACCOUNT
from tests.infra.grants import wildcard_action_grants

GENERATED_ACTION_GROUPS = {
    f"AwsSolutions-IAM5[Action::{action}]"
    for action in (
        "s3:GetObject*",
        "s3:GetBucket*",
        "s3:List*",
        "s3:DeleteObject*",
        "s3:Abort*",
        "kms:ReEncrypt*",
        "kms:GenerateDataKey*",
    )
}


def test_the_delivery_synth_opens_no_connection_and_needs_no_credentials(delivery_app):
    assert delivery_app.connection_attempts == []


def test_no_unacknowledged_cdk_nag_findings(delivery_app):
    assert (delivery_app.assembly_dir / "validation-report.json").exists()
    assert security_findings(delivery_app.assembly_dir) == []


def test_cfn_lint_reports_no_error_on_any_template(delivery_app, lint_once):
    findings = lint_once([stack.template_path for stack in delivery_app.stacks.values()])
    errors = [
        f"{name}: {finding}"
        for name, stack in delivery_app.stacks.items()
        for finding in findings[stack.template_path]
        if finding.severity == "error"
    ]
    assert errors == []


def test_the_pipeline_acknowledges_only_what_cdk_pipelines_and_codebuild_generate(delivery_stack):
    """The pipeline's generated roles, and the promotion build's CodeBuild-generated log, report and key grants."""
    for path, rule, reason in delivery_stack.acknowledgements():
        assert len(reason) >= MINIMUM_REASON_LENGTH
        assert path.startswith((f"/{DELIVERY_CONSTRUCT_ID}/Pipeline", f"/{DELIVERY_CONSTRUCT_ID}/PromotionCommit/")), (
            path,
            rule,
        )
        if rule == "AwsSolutions-S1":
            assert path == f"/{DELIVERY_CONSTRUCT_ID}/Pipeline/Pipeline/ArtifactsBucket"
        elif rule.startswith("AwsSolutions-IAM5[Action::"):
            assert rule in GENERATED_ACTION_GROUPS
        else:
            assert rule.startswith("AwsSolutions-IAM5[Resource::"), (path, rule)


def env_agnostic(rule: str, account: str) -> str:
    """A finding id as an env-agnostic stack renders it: the delivered stages have concrete environments."""
    rule = rule.replace("arn:aws:", "arn:<AWS::Partition>:").replace(f":{DELIVERY_REGION}:", ":<AWS::Region>:")
    return rule.replace(f":{account}:", ":<AWS::AccountId>:")


@pytest.mark.parametrize("stage", ["staging", "prod"])
def test_delivered_stages_carry_the_acknowledgements_they_carry_at_the_app_level(delivery_app, synthesized_app, stage):
    """The same findings and reasons. Where prod's name the account of the staging version it serves (its archive,
    key and image are there), each app names its own: the session's app serves one of account 123456789012."""
    account = PROD_ACCOUNT if stage == "prod" else PIPELINE_ACCOUNT

    def acknowledged(app, prefix: str, source_account: str) -> set[tuple[str, str, str]]:
        def normalized(rule: str) -> str:
            return env_agnostic(rule.replace(source_account, "<source>") if stage == "prod" else rule, account)

        return {
            (path.removeprefix(f"/{prefix}"), normalized(rule), reason)
            for name, stack in app.stacks.items()
            if name.startswith(prefix)
            for path, rule, reason in stack.acknowledgements()
        }

    delivered = acknowledged(delivery_app, f"{DELIVERY_CONSTRUCT_ID}/{stage}/", PIPELINE_ACCOUNT)
    assert delivered == acknowledged(synthesized_app, f"{stage}/", MODEL_PACKAGES.split(":")[4])


def test_each_finding_is_acknowledged_once_per_construct(delivery_app):
    for stack in delivery_app.stacks.values():
        keys = [(path, rule) for path, rule, _ in stack.acknowledgements()]
        assert len(keys) == len(set(keys)), stack.display_name


def test_no_allow_statement_grants_every_action_or_a_whole_service(delivery_app):
    assert wildcard_action_grants(delivery_app.stacks.values()) == []
