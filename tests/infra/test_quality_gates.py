"""The gates every stack of every stage passes: cdk-nag, cfn-lint, offline synth without credentials, determinism."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_s3 as s3

from infra.cloud_assembly import security_findings, synthesized_stacks
from infra.config import STAGE_NAMES
from infra.lint import lint_templates
from infra.security import MINIMUM_REASON_LENGTH, acknowledge, enable_security_checks
from tests.conftest import NO_BUNDLING
from tests.infra.grants import wildcard_action_grants
from tests.offline import offline_without_credentials


def test_synth_opens_no_connection_and_needs_no_credentials(synthesized_app):
    """The session's synth ran inside the guard: any connection attempt would be recorded here (and raise there)."""
    assert synthesized_app.connection_attempts == []
    assert {name.split("/")[0] for name in synthesized_app.stacks} == set(STAGE_NAMES)


def test_the_offline_guard_really_blocks_connections_and_hides_credentials():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    try:
        with offline_without_credentials() as attempts:
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=1)
            assert "AWS_ACCESS_KEY_ID" not in os.environ
            assert os.environ["AWS_SHARED_CREDENTIALS_FILE"] == os.devnull
        assert attempts == [("127.0.0.1", port)]
    finally:
        listener.close()


def test_no_unacknowledged_cdk_nag_findings(synthesized_app):
    assert (synthesized_app.assembly_dir / "validation-report.json").exists()
    assert security_findings(synthesized_app.assembly_dir) == []


def test_cdk_nag_fails_synth_on_an_unacknowledged_finding(tmp_path):
    app = App(outdir=str(tmp_path), context=NO_BUNDLING)
    stack = Stack(app, "Probe")
    s3.Bucket(stack, "PlainBucket")
    enable_security_checks(app)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    rules = {violation["ruleName"] for violation in security_findings(tmp_path)}
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= rules


def test_an_acknowledgement_must_say_why():
    stack = Stack(App(), "Probe")
    with pytest.raises(ValueError, match="the reason must say why"):
        acknowledge(stack, "AwsSolutions-S1", "not needed")


def test_acknowledgements_are_few_kinds_each_with_a_reason(synthesized_app):
    """A new kind of suppression must be a deliberate change here, reviewed with its reason."""
    for stack in synthesized_app.stacks.values():
        for path, rule, reason in stack.acknowledgements():
            assert len(reason) >= MINIMUM_REASON_LENGTH
            unit_path = path.strip("/").split("/", 2)[2]
            if rule == "AwsSolutions-S1":
                assert unit_path == "Storage/AccessLogs"
            else:
                assert rule.startswith("AwsSolutions-IAM5[Resource::"), (path, rule)
                assert unit_path in {
                    "Roles/SageMakerExecution",
                    "Roles/PipelineExecution",
                    "ServingRole/Policy",
                    "BatchTransform/StateMachinePolicy",
                }


def test_no_allow_statement_anywhere_grants_every_action_or_a_whole_service(synthesized_app):
    assert wildcard_action_grants(synthesized_app.stacks.values()) == []


def test_no_sagemaker_full_access_managed_policy(synthesized_app):
    for stack in synthesized_app.stacks.values():
        assert "AmazonSageMakerFullAccess" not in stack.template_path.read_text(), stack.display_name


def test_cfn_lint_reports_no_error_on_any_template(synthesized_app, lint_once):
    findings = lint_once([stack.template_path for stack in synthesized_app.stacks.values()])
    errors = [
        f"{name}: {finding}"
        for name, stack in synthesized_app.stacks.items()
        for finding in findings[stack.template_path]
        if finding.severity == "error"
    ]
    assert errors == []


def test_lint_gate_catches_a_broken_template(synthesized_app, tmp_path):
    template = synthesized_app.stack("prod", "Foundation").template
    broken = json.loads(json.dumps(template))
    key_id = next(i for i, r in broken["Resources"].items() if r["Type"] == "AWS::KMS::Key")
    broken["Resources"][key_id]["Properties"]["RotationPeriodInDays"] = "yearly"
    path = tmp_path / "broken.template.json"
    path.write_text(json.dumps(broken))
    # Linted with a clean template in one run: each finding is its own template's.
    clean = synthesized_app.stack("prod", "Foundation").template_path
    findings = lint_templates([clean, path])
    assert [(f.template, f.rule) for f in findings[path] if f.severity == "error"] == [(path.name, "E3012")]
    assert [f.rule for f in findings[clean] if f.severity == "error"] == []


def test_a_second_synth_in_another_process_writes_byte_identical_templates(
    synthesized_app, synthesized_on_a_deploy_machine
):
    """The second synth runs app.py as the CDK CLI does, with another hash seed, so set ordering cannot hide, and
    with CDK's built-in template validation on: it reports nothing either, not even a warning."""
    second_synth = synthesized_on_a_deploy_machine
    assert second_synth.returncode == 0, second_synth.output
    assert security_findings(second_synth.assembly_dir) == []
    # Synth adds no noise of its own to a deploy's output: no SDK banner or log line, no deprecated CDK API.
    noise = [line for line in second_synth.stderr.splitlines() if "sagemaker" in line.lower() or "deprecated" in line]
    assert noise == []
    first = {stack.display_name: stack.template_path for stack in synthesized_stacks(synthesized_app.assembly_dir)}
    second = {stack.display_name: stack.template_path for stack in synthesized_stacks(second_synth.assembly_dir)}
    assert sorted(first) == sorted(second)
    for name, path in first.items():
        assert path.read_bytes() == second[name].read_bytes(), name
        assets = path.with_name(path.name.replace(".template.json", ".assets.json"))
        assert assets.read_bytes() == Path(second[name]).with_name(assets.name).read_bytes(), name


def test_each_finding_is_acknowledged_once_per_construct(synthesized_app):
    for stack in synthesized_app.stacks.values():
        keys = [(path, rule) for path, rule, _ in stack.acknowledgements()]
        assert len(keys) == len(set(keys)), stack.display_name
