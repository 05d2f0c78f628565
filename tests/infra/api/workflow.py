"""Follows a Step Functions state machine from its start, the way Step Functions runs it, for one execution input.

Every route an execution can take is followed: a Choice goes where its rules send the input (evaluated as Step
Functions evaluates them), a Pass state hands on its result at its ResultPath, a Task either succeeds or fails into each
of its Catch clauses (with the caught error at the clause's ResultPath). What comes out is each Task reached, with the
input it is reached with and the route there, and every state reached: the caller checks that every state is reached
by some input, so that a task no stand-in reaches fails rather than goes unchecked.

Anything the walker cannot follow the way Step Functions would (a Map or Parallel state, JSONata, the result of a task
that the route goes on with) raises StandInError: it is reported, never skipped.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from tests.infra.api.standins import StandInError, StatesEvaluator

# A bound on the states one execution input visits, against a definition that loops with a changing input.
MAX_VISITS = 1000
# What Step Functions names an error that a Catch of States.ALL catches from a failed task.
TASK_FAILED = "States.TaskFailed"
# How a route marks a task that failed into one of its Catch clauses.
FAILED = "(failed)"


@dataclass(frozen=True)
class TaskVisit:
    """A Task reached: `evaluator` evaluates its Parameters as Step Functions would with that input and context."""

    name: str
    state: dict[str, Any]
    route: tuple[str, ...]  # the states from the start to this one; a task whose failure was caught is marked so
    evaluator: StatesEvaluator


@dataclass
class Run:
    tasks: list[TaskVisit] = field(default_factory=list)
    reached: set[str] = field(default_factory=set)
    # Routes on which the execution fails other than at a Fail state (a runtime error of Step Functions), or that the
    # walker cannot follow: each a line that names the route.
    problems: list[str] = field(default_factory=list)


def follow(
    definition: dict[str, Any],
    execution_input: Any,
    context_for: Callable[[str], dict[str, Any]],
    caught_error: dict[str, Any],
) -> Run:
    """Every route of one execution. context_for(state name) is the context object (`$$`) in that state;
    caught_error is the error object a Catch hands on (its Error is set to the error the clause catches)."""
    if definition.get("QueryLanguage", "JSONPath") != "JSONPath":
        raise StandInError("only JSONPath state machines are followed here")
    run = Run()
    states = definition.get("States", {})
    pending: list[tuple[str, Any, tuple[str, ...]]] = [(definition["StartAt"], execution_input, ())]
    seen: set[tuple[str, str]] = set()
    while pending:
        name, state_input, route = pending.pop()
        key = (name, json.dumps(state_input, sort_keys=True))
        if key in seen:
            continue  # a loop, or a second route to the same state with the same input
        seen.add(key)
        if len(seen) > MAX_VISITS:
            raise StandInError(f"more than {MAX_VISITS} states visited: does the definition loop?")
        route = (*route, name)
        where = " → ".join(route)
        if name not in states:
            run.problems.append(f"{where}: no state {name!r} in the definition")
            continue
        run.reached.add(name)
        state = states[name]
        successors = []
        try:
            # Routes found before a problem (a task's Catch clauses, before its success) are still followed.
            for successor in _successors(run, name, state, state_input, route, context_for(name), caught_error):
                successors.append(successor)
        except StandInError as error:
            run.problems.append(f"{where}: {error}")
        pending.extend(reversed(successors))
    return run


def _successors(
    run: Run,
    name: str,
    state: dict[str, Any],
    raw_input: Any,
    route: tuple[str, ...],
    context: dict[str, Any],
    caught_error: dict[str, Any],
) -> Iterator[tuple[str, Any, tuple[str, ...]]]:
    kind = state.get("Type")
    if kind in ("Map", "Parallel"):
        raise StandInError(f"a {kind} state is not followed here: add it to workflow.py")
    effective = select(raw_input, state.get("InputPath", "$"), context)
    if kind == "Choice":
        target = choose(state, effective, context)
        if target is None:
            raise StandInError("the execution fails with States.NoChoiceMatched: no rule matches and no Default")
        yield target, select(effective, state.get("OutputPath", "$"), context), route
    elif kind == "Pass":
        if "Parameters" in state:
            result = StatesEvaluator(effective, context).parameters(state["Parameters"])
        else:
            result = state.get("Result", effective)  # no Parameters and no Result: the input passes
        yield from _onwards(state, _output(state, raw_input, result, context), route)
    elif kind == "Task":
        run.tasks.append(TaskVisit(name, state, route, StatesEvaluator(effective, context)))
        for catcher in state.get("Catch", []):
            errors = catcher.get("ErrorEquals", [])
            caught = {**caught_error, "Error": TASK_FAILED if not errors or errors[0] == "States.ALL" else errors[0]}
            output = with_result(raw_input, catcher.get("ResultPath", "$"), caught)
            yield catcher["Next"], output, (*route[:-1], f"{route[-1]} {FAILED}")
        if not state.get("End"):
            if "ResultPath" not in state or state["ResultPath"] is not None:
                raise StandInError(
                    "the task's result goes on to the next state, and tasks' results have no stand-in here: add one"
                )
            yield from _onwards(state, select(raw_input, state.get("OutputPath", "$"), context), route)
    elif kind == "Wait":
        yield from _onwards(state, select(effective, state.get("OutputPath", "$"), context), route)
    elif kind == "Fail":
        evaluator = StatesEvaluator(raw_input, context)
        for path in ("ErrorPath", "CausePath"):
            if path in state:
                value = evaluator.expression(state[path])
                if not isinstance(value, str):
                    raise StandInError(f"{path} {state[path]} is {value!r:.80}, not a string: States.Runtime")
    elif kind != "Succeed":
        raise StandInError(f"no rule for a state of type {kind!r}")


def _output(state: dict[str, Any], raw_input: Any, result: Any, context: dict[str, Any]) -> Any:
    return select(with_result(raw_input, state.get("ResultPath", "$"), result), state.get("OutputPath", "$"), context)


def _onwards(state: dict[str, Any], output: Any, route: tuple[str, ...]) -> Iterator[tuple[str, Any, tuple[str, ...]]]:
    if state.get("End"):
        return
    if "Next" not in state:
        raise StandInError("the state has neither Next nor End")
    yield state["Next"], output, route


# --- paths -------------------------------------------------------------------------------------------------------


def select(value: Any, path: str | None, context: dict[str, Any]) -> Any:
    """InputPath / OutputPath: the part of the value at the path; null gives {}."""
    if path is None:
        return {}
    if path == "$":
        return value
    return StatesEvaluator(value, context).path(path)


def with_result(state_input: Any, path: str | None, result: Any) -> Any:
    """ResultPath: the input with the result at the path (`$` replaces it, null discards the result)."""
    if path is None:
        return state_input
    if path == "$":
        return result
    names = re.findall(r"\.([A-Za-z0-9_\-]+)", path)
    if "".join(f".{n}" for n in names) != path[1:]:
        raise StandInError(f"ResultPath {path}: only `$.a.b` paths are followed here")
    if not isinstance(state_input, dict):
        raise StandInError(f"ResultPath {path} on an input that is not an object: States.ResultPathMatchFailure")
    output = copy.deepcopy(state_input)
    target = output
    for name in names[:-1]:
        if not isinstance(target.setdefault(name, {}), dict):
            raise StandInError(f"ResultPath {path}: {name} is not an object: States.ResultPathMatchFailure")
        target = target[name]
    target[names[-1]] = result
    return output


# --- Choice rules ------------------------------------------------------------------------------------------------

_ABSENT = object()


def choose(state: dict[str, Any], state_input: Any, context: dict[str, Any]) -> str | None:
    """The state a Choice goes to: the Next of the first rule that matches, else its Default (None if it has none)."""
    evaluator = StatesEvaluator(state_input, context)
    for rule in state.get("Choices", []):
        if matches(rule, evaluator):
            return rule["Next"]
    return state.get("Default")


def _lookup(evaluator: StatesEvaluator, path: str) -> Any:
    try:
        return evaluator.path(path)
    except StandInError:
        return _ABSENT


def matches(rule: dict[str, Any], evaluator: StatesEvaluator) -> bool:
    """A Choice rule's value for the input. And and Or stop at the first rule that decides them, as Step Functions
    does (so `IsPresent` guards the comparisons after it); a comparison on a variable that is absent is an error."""
    if "And" in rule:
        return all(matches(r, evaluator) for r in rule["And"])
    if "Or" in rule:
        return any(matches(r, evaluator) for r in rule["Or"])
    if "Not" in rule:
        return not matches(rule["Not"], evaluator)
    variable_path = rule.get("Variable")
    if variable_path is None:
        raise StandInError(f"a Choice rule without Variable, And, Or or Not: {rule}")
    operators = [key for key in rule if key not in ("Variable", "Next", "Comment")]
    if len(operators) != 1:
        raise StandInError(f"a Choice rule with {operators or 'no'} operators: {rule}")
    (operator,) = operators
    variable = _lookup(evaluator, variable_path)
    if operator == "IsPresent":
        return (variable is not _ABSENT) == rule[operator]
    if variable is _ABSENT:
        raise StandInError(f"{variable_path} is not in the input of the Choice ({operator}): States.Runtime")
    if operator in _TYPE_TESTS:
        return _TYPE_TESTS[operator](variable) == rule[operator]
    name, by_path = (operator[: -len("Path")], True) if operator.endswith("Path") else (operator, False)
    if name not in _COMPARISONS:
        raise StandInError(f"no rule for the Choice operator {operator}")
    expected = rule[operator]
    if by_path:
        expected = _lookup(evaluator, expected)
        if expected is _ABSENT:
            raise StandInError(f"{rule[operator]} is not in the input of the Choice ({operator}): States.Runtime")
    is_kind, compare = _COMPARISONS[name]
    # A variable of another type than the comparison's does not match it.
    return is_kind(variable) and is_kind(expected) and compare(variable, expected)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _timestamp(value: Any) -> datetime | None:
    """An RFC 3339 timestamp (with its offset or Z), as Step Functions requires; None for anything else."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def string_matches(value: str, pattern: str) -> bool:
    """StringMatches: `*` matches any characters; `\\*` and `\\\\` are a literal `*` and `\\`; nothing else is
    special."""
    return bool(_wildcard(pattern).fullmatch(value))


@cache
def _wildcard(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    position = 0
    while position < len(pattern):
        char = pattern[position]
        if char == "\\" and position + 1 < len(pattern):
            parts.append(re.escape(pattern[position + 1]))
            position += 2
            continue
        parts.append(".*" if char == "*" else re.escape(char))
        position += 1
    return re.compile("".join(parts), re.DOTALL)


_TYPE_TESTS: dict[str, Callable[[Any], bool]] = {
    "IsNull": lambda v: v is None,
    "IsString": lambda v: isinstance(v, str),
    "IsNumeric": _is_number,
    "IsBoolean": lambda v: isinstance(v, bool),
    "IsTimestamp": lambda v: _timestamp(v) is not None,
}


def _ordered(is_kind: Callable[[Any], bool], key: Callable[[Any], Any] = lambda v: v) -> dict[str, tuple]:
    return {
        "Equals": (is_kind, lambda a, b: key(a) == key(b)),
        "LessThan": (is_kind, lambda a, b: key(a) < key(b)),
        "GreaterThan": (is_kind, lambda a, b: key(a) > key(b)),
        "LessThanEquals": (is_kind, lambda a, b: key(a) <= key(b)),
        "GreaterThanEquals": (is_kind, lambda a, b: key(a) >= key(b)),
    }


_COMPARISONS: dict[str, tuple[Callable[[Any], bool], Callable[[Any, Any], bool]]] = {
    **{f"String{op}": check for op, check in _ordered(lambda v: isinstance(v, str)).items()},
    **{f"Numeric{op}": check for op, check in _ordered(_is_number).items()},
    **{f"Timestamp{op}": check for op, check in _ordered(lambda v: _timestamp(v) is not None, _timestamp).items()},
    "StringMatches": (lambda v: isinstance(v, str), string_matches),
    "BooleanEquals": (lambda v: isinstance(v, bool), lambda a, b: a == b),
}
