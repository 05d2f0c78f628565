"""The batch-transform state machine's service-integration tasks send requests their APIs accept: on every route an
execution takes (the input check, the transform job, the failure notice), for every input its triggers (or an
operator) start it with, and every execution name Step Functions allows."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import re

import pytest

from tests.infra.api import workflow
from tests.infra.api.conftest import SERVING_STACKS, stack_id
from tests.infra.api.payloads import _task_payload, event_from_pattern, numeric_value, state_machine_tasks
from tests.infra.api.standins import (
    ACCOUNT,
    CAUGHT_ERROR,
    EXECUTION_NAMES,
    Environment,
    StackTemplate,
    StandInError,
    context_object,
)

TRANSFORM = ("CheckInput", "RunTransformJob")
REFUSED = ("CheckInput", "InputOutsidePrefix", "NotifyFailure")
FAILED_JOB = ("CheckInput", "RunTransformJob (failed)", "NotifyFailure")


@pytest.mark.parametrize("entry", SERVING_STACKS, ids=stack_id)
def test_state_machine_tasks_are_requests_the_apis_accept(entry, stack_of):
    stack, assembly = stack_of(entry)
    found = state_machine_tasks(stack, assembly.by_stack_name)
    routes = {(payload.operation, payload.route) for payload in found.payloads}
    # The Choice sends inputs under the prefix to the job and the others to the notice; a failed job is notified.
    assert routes == {("CreateTransformJob", TRANSFORM), ("Publish", REFUSED), ("Publish", FAILED_JOB)}, routes
    problems = found.report()  # every state reached by some input included
    assert not problems, "\n".join(problems)


def test_every_execution_name_gives_a_job_name_the_api_accepts(stack_of):
    """Job names are at most 63 characters of [a-zA-Z0-9-]; executions may have 80, with `_` and `.`: the job is
    named after a hash of the execution's name, which a tag carries whole."""
    stack, assembly = stack_of(("app", "staging/Serving"))
    jobs = [
        p for p in state_machine_tasks(stack, assembly.by_stack_name).payloads if p.operation == "CreateTransformJob"
    ]
    by_name: dict[str, set[str]] = {}
    for label, execution_name in EXECUTION_NAMES.items():
        named = [p for p in jobs if f"execution name {label}" in p.variant]
        assert named, f"no transform job for the execution name {label}"
        assert all(p.problems() == [] for p in named)
        for payload in named:
            job_name = payload.request["TransformJobName"]
            assert job_name == "mlopskit-staging-" + hashlib.md5(execution_name.encode()).hexdigest()
            tags = {tag["Key"]: tag["Value"] for tag in payload.request["Tags"]}
            assert tags["batch-transform-execution"] == execution_name
            by_name.setdefault(job_name, set()).add(execution_name)
    assert all(len(names) == 1 for names in by_name.values())  # one job name per execution name


def with_definition(stack: StackTemplate, old: str, new: str) -> StackTemplate:
    """The stack with `old` replaced by `new` in its state machine's definition (once, in one literal part)."""
    template = copy.deepcopy(stack.template)
    (state_machine,) = (r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine")
    parts = state_machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    hits = [i for i, part in enumerate(parts) if isinstance(part, str) and old in part]
    assert len(hits) == 1 and parts[hits[0]].count(old) == 1, f"{old!r} is not once in the definition"
    parts[hits[0]] = parts[hits[0]].replace(old, new)
    return dataclasses.replace(stack, template=template)


def test_a_job_named_after_the_whole_execution_name_is_reported(stack_of):
    stack, assembly = stack_of(("app", "staging/Serving"))
    defective = with_definition(stack, "States.Hash($$.Execution.Name, 'MD5')", "$$.Execution.Name")
    problems = state_machine_tasks(defective, assembly.by_stack_name).report()
    assert any(
        "TransformJobName: 'mlopskit-staging-manual-rerun" in p and "97 characters; at most 63" in p for p in problems
    )
    assert any(
        "TransformJobName: 'mlopskit-staging-nightly_2024.06.01' does not match the pattern" in p for p in problems
    )
    assert all("TransformJobName" in p for p in problems), "\n".join(problems)


def test_a_state_no_input_reaches_is_reported(stack_of):
    stack, assembly = stack_of(("app", "staging/Serving"))
    # Inputs outside the prefix fail at once, without the notice's error object.
    defective = with_definition(stack, '"Default":"InputOutsidePrefix"', '"Default":"TransformFailed"')
    problems = state_machine_tasks(defective, assembly.by_stack_name).report()
    assert any(re.search(r"state InputOutsidePrefix: reached by no execution input", p) for p in problems), problems
    assert any("CheckInput → TransformFailed: $.failure.Error: not in the state's input" in p for p in problems)


def test_a_choice_without_a_way_out_is_reported(stack_of):
    stack, assembly = stack_of(("app", "staging/Serving"))
    defective = with_definition(stack, ',"Default":"InputOutsidePrefix"', "")
    problems = state_machine_tasks(defective, assembly.by_stack_name).report()
    assert any("CheckInput: the execution fails with States.NoChoiceMatched" in p for p in problems), problems


# S3 keys reach 1024 bytes; CreateTransformJob's S3Uri allows 1024 characters in all, `s3://<bucket>/` included.
S3_KEY_LIMIT = 1024


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="A limit of the services, not a template defect: an uploaded object whose key is longer than 1024 "
    "characters less `s3://<data bucket>/` (about 960) cannot be transformed, as S3Uri allows 1024 characters.",
)
def test_an_object_with_the_longest_key_s3_allows_can_be_transformed(stack_of):
    stack, assembly = stack_of(("app", "staging/Serving"))
    (rule,) = (r for i, r in stack.of_type("AWS::Events::Rule").items() if "OnUpload" in i)
    (prefix,) = rule["Properties"]["EventPattern"]["detail"]["object"]["key"]
    found = state_machine_tasks(
        stack,
        assembly.by_stack_name,
        uploaded_object="k" * (S3_KEY_LIMIT - len(prefix["prefix"])),
        execution_names={"a UUID": EXECUTION_NAMES["started by EventBridge (a UUID)"]},
    )
    # The upload passes the input check (CheckInput) and starts the job: anything else is another failure.
    uploads = [p for p in found.payloads if "OnUpload" in " ".join(p.variant) and p.operation == "CreateTransformJob"]
    if not uploads or any(p.route != TRANSFORM for p in uploads) or found.unmapped:
        raise LookupError(f"no transform job started by an upload through {TRANSFORM}: {found.unmapped}")
    problems = [line for payload in uploads for line in payload.problems()]
    if any("S3Uri" not in line for line in problems):
        raise ValueError("\n".join(problems))  # a failure for another reason than the key's length
    assert not problems, "\n".join(problems)


# --- EventBridge patterns --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [([">", 0], 1), ([">=", 10, "<", 20], 10), (["=", 5], 5), (["<", 0], -1), ([">", 0.5], 1.5)],
)
def test_a_number_the_numeric_filter_matches(conditions, expected):
    assert numeric_value(conditions) == expected


@pytest.mark.parametrize(
    ("conditions", "message"),
    [(["!=", 1], "no stand-in for the numeric filter operators ['!=']"), ([">", 5, "<", 5], "no number matches")],
)
def test_numeric_filters_without_a_value_are_errors(conditions, message):
    with pytest.raises(StandInError, match=re.escape(message)):
        numeric_value(conditions)


def test_an_event_the_pattern_matches():
    pattern = {
        "source": ["aws.s3"],
        "detail": {"object": {"key": [{"prefix": "in/"}], "size": [{"numeric": [">", 0]}]}},
    }
    event = event_from_pattern(pattern, Environment(ACCOUNT, "eu-west-1"), "a.csv")
    assert event["source"] == "aws.s3"
    assert event["detail"] == {"object": {"key": "in/a.csv", "size": 1}}
    with pytest.raises(StandInError, match="no stand-in for the event pattern filter"):
        event_from_pattern({"detail": {"key": [{"suffix": ".csv"}]}}, Environment(ACCOUNT, "eu-west-1"))


def test_a_task_without_parameters_sends_its_input():
    state = {"Type": "Task", "Resource": "arn:aws:states:::sns:publish", "InputPath": "$.notice", "End": True}
    definition = {"StartAt": "Send", "States": {"Send": state}}
    execution_input = {"notice": {"TopicArn": "arn:aws:sns:eu-west-1:123456789012:t", "Message": "m"}}
    arn = "arn:aws:states:eu-west-1:123456789012:stateMachine:m"
    run = workflow.follow(
        definition, execution_input, lambda name: context_object(arn, "n", execution_input, name), CAUGHT_ERROR
    )
    (task,) = run.tasks
    (payload,) = _task_payload("Send", ("",), task).payloads
    assert payload.request == execution_input["notice"]
    assert payload.problems() == []
