"""The walker follows a state machine as Step Functions runs it: Choice rules, Pass results, caught failures, paths;
and what it cannot follow, or what would fail at run time, is a problem rather than a route left out."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.infra.api.standins import CAUGHT_ERROR, StandInError, StatesEvaluator, context_object
from tests.infra.api.workflow import choose, follow, matches, select, string_matches, with_result

ARN = "arn:aws:states:eu-west-1:123456789012:stateMachine:m"
NAME = "run-1"


def context_for(execution_input: Any):
    return lambda state: context_object(ARN, NAME, execution_input, state)


def run(definition: dict[str, Any], execution_input: Any):
    return follow(definition, execution_input, context_for(execution_input), CAUGHT_ERROR)


def rule(condition: dict[str, Any], state_input: Any) -> bool:
    return matches(condition, StatesEvaluator(state_input, context_object(ARN, NAME, state_input, "C")))


# --- Choice rules ------------------------------------------------------------------------------------------------

GUARDED = {
    "And": [
        {"Variable": "$.uri", "IsPresent": True},
        {"Variable": "$.uri", "IsString": True},
        {"Variable": "$.uri", "StringMatches": "s3://b/in/*"},
    ]
}


@pytest.mark.parametrize(
    ("state_input", "expected"),
    [
        ({"uri": "s3://b/in/a.csv"}, True),
        ({"uri": "s3://b/in/"}, True),  # `*` matches nothing too
        ({"uri": "s3://b/out/a.csv"}, False),
        ({"uri": "s3://c/in/a.csv"}, False),
        ({"uri": 7}, False),
        ({"url": "s3://b/in/a.csv"}, False),  # IsPresent stops the And before the comparisons
    ],
)
def test_and_stops_at_the_first_rule_that_decides_it(state_input, expected):
    assert rule(GUARDED, state_input) is expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"Variable": "$.s", "StringEquals": "abc"}, True),
        ({"Variable": "$.s", "StringLessThan": "abd"}, True),
        ({"Variable": "$.s", "StringGreaterThanEquals": "abd"}, False),
        ({"Variable": "$.n", "NumericEquals": 3}, True),
        ({"Variable": "$.n", "NumericLessThanEquals": 2}, False),
        ({"Variable": "$.n", "NumericGreaterThanPath": "$.m"}, True),
        ({"Variable": "$.b", "BooleanEquals": False}, True),
        ({"Variable": "$.t", "TimestampLessThan": "2024-06-01T05:00:00Z"}, True),
        ({"Variable": "$.t", "TimestampGreaterThan": "2024-06-01T06:00:00+02:00"}, True),
        ({"Variable": "$.s", "StringEqualsPath": "$$.Execution.Name"}, False),
        ({"Variable": "$.z", "IsNull": True}, True),
        ({"Variable": "$.n", "IsNumeric": True}, True),
        ({"Variable": "$.b", "IsNumeric": True}, False),  # a boolean is not a number
        ({"Variable": "$.b", "IsBoolean": True}, True),
        ({"Variable": "$.t", "IsTimestamp": True}, True),
        ({"Variable": "$.s", "IsTimestamp": True}, False),
        ({"Variable": "$.s", "IsPresent": False}, False),
        # A variable of another type than the comparison's does not match it.
        ({"Variable": "$.n", "StringEquals": "3"}, False),
        ({"Variable": "$.s", "NumericEquals": 3}, False),
        ({"Not": {"Variable": "$.s", "StringEquals": "abc"}}, False),
        ({"Or": [{"Variable": "$.s", "StringEquals": "x"}, {"Variable": "$.n", "NumericEquals": 3}]}, True),
        ({"Or": [{"Variable": "$.s", "IsString": True}, {"Variable": "$.missing", "StringEquals": "x"}]}, True),
    ],
)
def test_comparisons(condition, expected):
    state_input = {"s": "abc", "n": 3, "m": 2, "b": False, "t": "2024-06-01T04:30:00Z", "z": None}
    assert rule(condition, state_input) is expected


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("log-*.txt", "log-2024.txt", True),
        ("log-*.txt", "log-2024.csv", False),
        ("*", "", True),
        ("a\\*b", "a*b", True),
        ("a\\*b", "axb", False),
        ("a\\\\*", "a\\anything", True),
        ("a.c", "abc", False),  # only `*` is special
        ("a?c", "abc", False),
    ],
)
def test_string_matches(pattern, value, expected):
    assert string_matches(value, pattern) is expected


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ({"Variable": "$.missing", "StringEquals": "x"}, "$.missing is not in the input of the Choice"),
        ({"Variable": "$.s", "StringEqualsPath": "$.missing"}, "$.missing is not in the input of the Choice"),
        ({"Variable": "$.s", "StringSoundsLike": "x"}, "no rule for the Choice operator StringSoundsLike"),
        ({"Variable": "$.s", "StringEquals": "x", "IsString": True}, "operators"),
        ({"Condition": "{% $s = 'x' %}"}, "a Choice rule without Variable"),
    ],
)
def test_choice_rules_that_fail_or_have_no_rule_are_errors(condition, message):
    with pytest.raises(StandInError, match=re.escape(message)):
        rule(condition, {"s": "abc"})


def test_a_choice_goes_to_the_first_match_else_its_default():
    state = {
        "Choices": [
            {"Variable": "$.n", "NumericLessThan": 10, "Next": "Small"},
            {"Variable": "$.n", "NumericLessThan": 100, "Next": "Medium"},
        ],
        "Default": "Large",
    }
    context = context_object(ARN, NAME, {}, "C")
    assert [choose(state, {"n": n}, context) for n in (5, 50, 500)] == ["Small", "Medium", "Large"]
    assert choose({"Choices": state["Choices"]}, {"n": 500}, context) is None


# --- paths -------------------------------------------------------------------------------------------------------


def test_result_paths():
    assert with_result({"a": 1}, "$.b", 2) == {"a": 1, "b": 2}
    assert with_result({"a": 1}, "$.b.c", 2) == {"a": 1, "b": {"c": 2}}
    assert with_result({"a": 1}, "$", 2) == 2
    assert with_result({"a": 1}, None, 2) == {"a": 1}
    original = {"a": {"x": 1}}
    with_result(original, "$.a.y", 2)
    assert original == {"a": {"x": 1}}  # the input is not changed
    with pytest.raises(StandInError, match="States.ResultPathMatchFailure"):
        with_result("text", "$.b", 2)
    with pytest.raises(StandInError, match="only `\\$.a.b` paths"):
        with_result({}, "$.a[0]", 2)


def test_input_and_output_paths():
    context = context_object(ARN, NAME, {}, "S")
    assert select({"a": {"b": 1}}, "$.a", context) == {"b": 1}
    assert select({"a": 1}, "$", context) == {"a": 1}
    assert select({"a": 1}, None, context) == {}
    assert select({"a": 1}, "$$.Execution.Name", context) == NAME


# --- routes ------------------------------------------------------------------------------------------------------

TASK = "arn:aws:states:::sns:publish"
DEFINITION = {
    "StartAt": "Check",
    "States": {
        "Check": {
            "Type": "Choice",
            "Choices": [{**GUARDED, "Next": "Job"}],
            "Default": "Refuse",
        },
        "Refuse": {
            "Type": "Pass",
            "Parameters": {"Error": "Refused", "Cause.$": "States.Format('not {}', $$.Execution.Name)"},
            "ResultPath": "$.failure",
            "Next": "Notify",
        },
        "Job": {
            "Type": "Task",
            "Resource": TASK,
            "Parameters": {"Message.$": "$.uri"},
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": "Notify"}],
            "End": True,
        },
        "Notify": {
            "Type": "Task",
            "Resource": TASK,
            "Parameters": {"Message.$": "$.failure.Cause"},
            "ResultPath": None,
            "Next": "Failed",
        },
        "Failed": {"Type": "Fail", "ErrorPath": "$.failure.Error", "CausePath": "$.failure.Cause"},
    },
}


def visits(result) -> list[tuple[tuple[str, ...], Any]]:
    return [(task.route, task.evaluator.parameters(task.state.get("Parameters", {}))) for task in result.tasks]


def test_an_input_the_choice_accepts_runs_the_job_and_a_failed_job_is_notified():
    result = run(DEFINITION, {"uri": "s3://b/in/a.csv"})
    assert visits(result) == [
        (("Check", "Job"), {"Message": "s3://b/in/a.csv"}),
        (("Check", "Job (failed)", "Notify"), {"Message": CAUGHT_ERROR["Cause"]}),
    ]
    assert result.reached == {"Check", "Job", "Notify", "Failed"}
    assert result.problems == []


def test_an_input_the_choice_refuses_takes_the_default():
    result = run(DEFINITION, {"url": "s3://b/in/a.csv"})
    assert visits(result) == [(("Check", "Refuse", "Notify"), {"Message": f"not {NAME}"})]
    assert result.reached == {"Check", "Refuse", "Notify", "Failed"}
    assert result.problems == []


def test_the_caught_error_names_what_the_catch_catches():
    definition = {
        "StartAt": "Job",
        "States": {
            "Job": {
                "Type": "Task",
                "Resource": TASK,
                "Catch": [
                    {"ErrorEquals": ["SageMaker.AmazonSageMakerException"], "ResultPath": "$.e", "Next": "Caught"},
                    {"ErrorEquals": ["States.ALL"], "ResultPath": "$.e", "Next": "Caught"},
                ],
                "End": True,
            },
            "Caught": {"Type": "Task", "Resource": TASK, "Parameters": {"Message.$": "$.e.Error"}, "End": True},
        },
    }
    messages = [parameters["Message"] for _, parameters in visits(run(definition, {}))[1:]]
    assert messages == ["SageMaker.AmazonSageMakerException", "States.TaskFailed"]


def test_a_pass_with_result_and_paths():
    definition = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Pass",
                "InputPath": "$.inner",
                "Result": {"r": 1},
                "ResultPath": "$.out",
                "OutputPath": "$.out",
                "Next": "T",
            },
            "T": {"Type": "Task", "Resource": TASK, "Parameters": {"Message.$": "States.JsonToString($)"}, "End": True},
        },
    }
    assert visits(run(definition, {"inner": {"x": 1}, "other": 2})) == [(("P", "T"), {"Message": '{"r":1}'})]


@pytest.mark.parametrize(
    ("states", "problem"),
    [
        (
            {"A": {"Type": "Task", "Resource": TASK, "Next": "B"}, "B": {"Type": "Succeed"}},
            "A: the task's result goes on to the next state",
        ),
        ({"A": {"Type": "Fail", "ErrorPath": "$.n", "CausePath": "$.s"}}, "A: ErrorPath $.n is 1, not a string"),
        ({"A": {"Type": "Fail", "ErrorPath": "$.missing"}}, "A: $.missing: not in the state's input"),
        ({"A": {"Type": "Map", "End": True}}, "A: a Map state is not followed here"),
        ({"A": {"Type": "Choice", "Choices": []}}, "A: the execution fails with States.NoChoiceMatched"),
        ({"A": {"Type": "Pass", "Next": "Nowhere"}}, "A → Nowhere: no state 'Nowhere' in the definition"),
        ({"A": {"Type": "Pass"}}, "A: the state has neither Next nor End"),
        ({"A": {"Type": "Sleep"}}, "A: no rule for a state of type 'Sleep'"),
    ],
)
def test_what_fails_at_run_time_or_cannot_be_followed_is_a_problem(states, problem):
    result = run({"StartAt": "A", "States": states}, {"n": 1, "s": "x"})
    assert any(line.startswith(problem) for line in result.problems), result.problems


def test_a_loop_is_followed_once_per_input():
    definition = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Next": "B"},
            "B": {"Type": "Wait", "Seconds": 1, "Next": "A"},
        },
    }
    result = run(definition, {})
    assert result.reached == {"A", "B"} and result.problems == []


def test_jsonata_is_not_followed():
    with pytest.raises(StandInError, match="only JSONPath"):
        run({"QueryLanguage": "JSONata", "StartAt": "A", "States": {"A": {"Type": "Succeed"}}}, {})


def test_a_loop_whose_input_keeps_changing_is_stopped():
    definition = {
        "StartAt": "Count",
        "States": {
            "Count": {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"}, "Next": "Count"},
        },
    }
    with pytest.raises(StandInError, match="does the definition loop"):
        run(definition, {"n": 0})


def test_a_task_whose_result_has_no_stand_in_is_a_problem_but_its_catch_is_followed():
    definition = {
        "StartAt": "A",
        "States": {
            "A": {
                "Type": "Task",
                "Resource": TASK,
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.e", "Next": "B"}],
                "Next": "B",
            },
            "B": {"Type": "Succeed"},
        },
    }
    result = run(definition, {})
    assert result.reached == {"A", "B"}
    assert [line.split(":")[0] for line in result.problems] == ["A"]
