"""Pipeline failure notifications: every stage's pipeline stack (dev too, which has no serving stack) publishes a
failed step, and an execution that ended Failed or Stopped, to its encrypted topic, naming the step and the reason;
the rules match only this pipeline's events."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from moto.events.models import EventPattern

from infra import naming
from infra.config import STAGE_NAMES

ACCOUNT, REGION = "123456789012", "eu-west-1"


def of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {key: r for key, r in template["Resources"].items() if r["Type"] == resource_type}


def concrete(value: Any) -> Any:
    """The template's value with the pseudo parameters of a stack deployed to ACCOUNT in REGION."""
    text = json.dumps(value)
    for name, replacement in (("AWS::Partition", "aws"), ("AWS::Region", REGION), ("AWS::AccountId", ACCOUNT)):
        text = text.replace(json.dumps({"Ref": name}), json.dumps(replacement))
    resolved = json.loads(text)
    return _joined(resolved)


def _joined(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(_joined(part) for part in parts)
    if isinstance(value, dict):
        return {key: _joined(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_joined(item) for item in value]
    return value


def notification_rules(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        key: rule for key, rule in of_type(template, "AWS::Events::Rule").items() if key.startswith("Notifications")
    }


def rendered(target: dict[str, Any], event: dict[str, Any]) -> str:
    """The message EventBridge sends: each <name> of the template replaced by the value at its path in the event."""
    transformer = target["InputTransformer"]
    values = {}
    for name, path in transformer["InputPathsMap"].items():
        value: Any = event
        for part in path.removeprefix("$.").split("."):
            value = value[part]
        values[name] = value
    text = re.sub(r"<([A-Za-z0-9_.-]+)>", lambda match: str(values[match.group(1)]), transformer["InputTemplate"])
    return json.loads(text)


def pipeline_arn(stage: str) -> str:
    return f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:pipeline/mlopskit-{stage}-training"


def step_event(arn: str, status: str, step: str = "Evaluate", reason: str | None = None) -> dict[str, Any]:
    """A step status change as SageMaker sends it to EventBridge (the documented shape, abridged)."""
    detail = {
        "pipelineArn": arn,
        "pipelineExecutionArn": f"{arn}/execution/abc123",
        "stepName": step,
        "stepType": "Processing",
        "currentStepStatus": status,
        "previousStepStatus": "Executing",
        "metadata": {},
    }
    if reason is not None:
        detail["failureReason"] = reason
    return {
        "version": "0",
        "id": "0b1c",
        "detail-type": "SageMaker Model Building Pipeline Execution Step Status Change",
        "source": "aws.sagemaker",
        "account": ACCOUNT,
        "time": "2026-12-03T14:00:00Z",
        "region": REGION,
        "resources": [arn, f"{arn}/execution/abc123"],
        "detail": detail,
    }


def execution_event(arn: str, status: str) -> dict[str, Any]:
    return {
        **step_event(arn, "Failed"),
        "detail-type": "SageMaker Model Building Pipeline Execution Status Change",
        "detail": {
            "pipelineArn": arn,
            "pipelineExecutionArn": f"{arn}/execution/abc123",
            "currentPipelineExecutionStatus": status,
            "previousPipelineExecutionStatus": "Executing",
        },
    }


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_failures_go_to_an_encrypted_topic_that_only_this_accounts_rules_publish_to(synthesized_app, stage):
    template = synthesized_app.template(stage, "Pipeline")
    (topic_id, topic), *others = of_type(template, "AWS::SNS::Topic").items()
    assert others == []
    key_id = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key_statements = template["Resources"][key_id]["Properties"]["KeyPolicy"]["Statement"]
    assert any(
        s["Principal"] == {"Service": "events.amazonaws.com"} and "kms:Decrypt" in s["Action"] for s in key_statements
    ), "EventBridge must encrypt what it publishes to the topic"
    (policy,) = of_type(template, "AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    (deny,) = [s for s in statements if s.get("Sid") == "OnlyThisAccountsRulesPublish"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {
        "StringNotEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    }
    rules = notification_rules(template)
    assert len(rules) == 2
    assert all(rule["Properties"]["Targets"][0]["Arn"] == {"Ref": topic_id} for rule in rules.values())
    assert template["Outputs"]["PipelineTopicArn"]["Value"] == {"Ref": topic_id}


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_a_failed_step_of_this_pipeline_is_announced_with_the_step_and_the_reason(synthesized_app, stage):
    rules = notification_rules(synthesized_app.template(stage, "Pipeline"))
    (step_rule,) = [r for key, r in rules.items() if "StepFailed" in key]
    matcher = EventPattern.load(json.dumps(concrete(step_rule["Properties"]["EventPattern"])))
    arn = pipeline_arn(stage)
    reason = "ClientError: AlgorithmError: DataError: train.csv row 3 column 'pixel_5': 'seven' is not a number"
    failed = step_event(arn, "Failed", "Preprocess", reason)
    assert matcher.matches_event(failed)
    assert not matcher.matches_event(step_event(arn, "Succeeded"))
    assert not matcher.matches_event(step_event(arn.replace(f"-{stage}-", "-other-"), "Failed", reason="x"))
    message = rendered(step_rule["Properties"]["Targets"][0], failed)
    assert message == (
        f"{naming.pipeline_name_of(f'mlopskit-{stage}')}: step Preprocess (Processing) failed in execution "
        f"{arn}/execution/abc123: {reason}"
    )


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_an_execution_that_ends_failed_or_stopped_is_announced_and_a_success_is_not(synthesized_app, stage):
    rules = notification_rules(synthesized_app.template(stage, "Pipeline"))
    (ended_rule,) = [r for key, r in rules.items() if "ExecutionEnded" in key]
    matcher = EventPattern.load(json.dumps(concrete(ended_rule["Properties"]["EventPattern"])))
    arn = pipeline_arn(stage)
    for status in ("Failed", "Stopped", "CompletedWithFailures"):
        assert matcher.matches_event(execution_event(arn, status))
        assert rendered(ended_rule["Properties"]["Targets"][0], execution_event(arn, status)).endswith(
            f"execution {arn}/execution/abc123 ended {status}"
        )
    for status in ("Succeeded", "Executing", "Stopping"):
        assert not matcher.matches_event(execution_event(arn, status))
