"""Policy conditions, evaluated as IAM does against a request context.

A context maps condition keys (case-insensitive, stored lower case) to a tuple of string values; a key that is not
there is absent from the request. Within one condition block every operator and every key must hold (AND); the values
listed for one key are alternatives (OR). An operator not known here raises PolicyError when the policy is read, so an
unsupported condition can never pass silently.
"""

from __future__ import annotations

import ipaddress
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tests.infra.access.matching import arn_like, glob_matches

Context = Mapping[str, tuple[str, ...]]
SET_OPERATORS = ("ForAnyValue", "ForAllValues")
IF_EXISTS = "IfExists"


class PolicyError(Exception):
    """A policy that IAM would reject, or that uses something this evaluator does not implement."""


def as_values(value: Any) -> tuple[str, ...] | None:
    """A context or policy value as IAM compares it: a tuple of strings (booleans as "true"/"false"); None is absent."""
    if value is None:
        return None
    if isinstance(value, list | tuple | set | frozenset):
        return tuple(v for item in value for v in as_values(item) or ())
    if isinstance(value, bool):
        return ("true" if value else "false",)
    return (str(value),)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _date(text: str) -> datetime | None:
    try:
        if text.lstrip("-").isdigit():  # epoch seconds
            return datetime.fromtimestamp(int(text), UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except ValueError:
        return None


def _compare(parse: Callable[[str], Any], compare: Callable[[Any, Any], bool]) -> Callable[[str, str], bool]:
    def matches(request_value: str, policy_value: str) -> bool:
        left, right = parse(request_value), parse(policy_value)
        return left is not None and right is not None and compare(left, right)

    return matches


def _in_network(address: str, network: str) -> bool:
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(network, strict=False)
    except ValueError:
        return False


@dataclass(frozen=True)
class Operator:
    # Whether one request value matches one policy value.
    matches: Callable[[str, str], bool]
    # A negated operator (StringNotEquals, ArnNotLike, ...) holds when no value matches, and when the key is absent.
    negated: bool = False


def _string_equals(request_value: str, policy_value: str) -> bool:
    return request_value == policy_value


def _string_equals_ignore_case(request_value: str, policy_value: str) -> bool:
    return request_value.lower() == policy_value.lower()


def _string_like(request_value: str, policy_value: str) -> bool:
    return glob_matches(policy_value, request_value)


def _arn_like(request_value: str, policy_value: str) -> bool:
    return arn_like(policy_value, request_value)


def _bool(request_value: str, policy_value: str) -> bool:
    return request_value.lower() == policy_value.lower()


_numbers = {
    "Equals": operator.eq,
    "LessThan": operator.lt,
    "LessThanEquals": operator.le,
    "GreaterThan": operator.gt,
    "GreaterThanEquals": operator.ge,
}

OPERATORS: dict[str, Operator] = {
    "StringEquals": Operator(_string_equals),
    "StringNotEquals": Operator(_string_equals, negated=True),
    "StringEqualsIgnoreCase": Operator(_string_equals_ignore_case),
    "StringNotEqualsIgnoreCase": Operator(_string_equals_ignore_case, negated=True),
    "StringLike": Operator(_string_like),
    "StringNotLike": Operator(_string_like, negated=True),
    # ArnEquals and ArnLike behave the same in IAM: both take wildcards, segment by segment.
    "ArnEquals": Operator(_arn_like),
    "ArnLike": Operator(_arn_like),
    "ArnNotEquals": Operator(_arn_like, negated=True),
    "ArnNotLike": Operator(_arn_like, negated=True),
    "Bool": Operator(_bool),
    "BinaryEquals": Operator(_string_equals),
    "IpAddress": Operator(_in_network),
    "NotIpAddress": Operator(_in_network, negated=True),
    "NumericNotEquals": Operator(_compare(_number, operator.eq), negated=True),
    "DateNotEquals": Operator(_compare(_date, operator.eq), negated=True),
    **{f"Numeric{name}": Operator(_compare(_number, compare)) for name, compare in _numbers.items()},
    **{f"Date{name}": Operator(_compare(_date, compare)) for name, compare in _numbers.items()},
}


@dataclass(frozen=True)
class Condition:
    """One operator applied to one key, e.g. `ForAnyValue:StringEqualsIfExists {"kms:ResourceAliases": [...]}`."""

    text: str  # the operator as written, for explanations
    operator: Operator | None  # None for Null
    set_operator: str | None
    if_exists: bool
    key: str  # lower case
    values: tuple[str, ...]

    def holds(self, context: Context) -> bool:
        request_values = context.get(self.key)
        if self.operator is None:  # Null: "true" means the key must be absent, "false" that it must be present
            absent = not request_values
            return any((value.lower() == "true") == absent for value in self.values)
        if request_values is None:
            if self.if_exists:
                return True
            if self.set_operator == "ForAllValues":  # vacuously true over an empty set
                return True
            if self.set_operator == "ForAnyValue":
                return False
            return self.operator.negated
        if self.set_operator == "ForAnyValue":
            return any(self._holds_for(value) for value in request_values)
        if self.set_operator == "ForAllValues":
            return all(self._holds_for(value) for value in request_values)
        # Without a set operator a multivalued key matches when any of its values does (negated: when none does).
        any_match = any(self.operator.matches(v, p) for v in request_values for p in self.values)
        return not any_match if self.operator.negated else any_match

    def _holds_for(self, request_value: str) -> bool:
        assert self.operator is not None
        any_match = any(self.operator.matches(request_value, p) for p in self.values)
        return not any_match if self.operator.negated else any_match

    def __str__(self) -> str:
        return f"{self.text} {self.key} {list(self.values)}"


def parse_operator(text: str) -> tuple[Operator | None, str | None, bool]:
    """(operator, set operator, if-exists) of an operator as written in a policy; PolicyError if unknown."""
    set_operator, _, name = text.rpartition(":")
    if set_operator and set_operator not in SET_OPERATORS:
        raise PolicyError(f"unknown condition set operator {set_operator!r} in {text!r}")
    if name == "Null":
        if set_operator:
            raise PolicyError(f"{text!r}: Null takes no set operator")
        return None, None, False
    if_exists = name.endswith(IF_EXISTS)
    base = name.removesuffix(IF_EXISTS) if if_exists else name
    if base not in OPERATORS:
        raise PolicyError(f"unknown condition operator {text!r}")
    return OPERATORS[base], set_operator or None, if_exists


def parse_conditions(block: Mapping[str, Mapping[str, Any]] | None) -> tuple[Condition, ...]:
    """Every (operator, key) pair of a Condition element; all must hold."""
    conditions = []
    for text, keys in (block or {}).items():
        operator_, set_operator, if_exists = parse_operator(text)
        if not isinstance(keys, Mapping) or not keys:
            raise PolicyError(f"condition {text!r} needs a map of keys to values, got {keys!r}")
        for key, value in keys.items():
            values = as_values(value)
            if not values:
                raise PolicyError(f"condition {text!r} {key!r} has no values")
            conditions.append(Condition(text, operator_, set_operator, if_exists, key.lower(), values))
    return tuple(conditions)
