"""Condition operators as IAM evaluates them, including absent keys, IfExists, Null and the set operators."""

from __future__ import annotations

import pytest

from tests.infra.access.conditions import PolicyError, as_values, parse_conditions


def holds(block, **context) -> bool:
    """Whether the whole Condition block holds; context keys are given with `__` for `:` (kms__ViaService)."""
    values = {key.replace("__", ":").lower(): as_values(value) for key, value in context.items()}
    return all(condition.holds(values) for condition in parse_conditions(block))


@pytest.mark.parametrize(
    ("operator", "policy_value", "request_value", "expected"),
    [
        ("StringEquals", "s3.eu-west-1.amazonaws.com", "s3.eu-west-1.amazonaws.com", True),
        ("StringEquals", "Abc", "abc", False),
        ("StringNotEquals", "abc", "abd", True),
        ("StringNotEquals", "abc", "abc", False),
        ("StringEqualsIgnoreCase", "Abc", "aBC", True),
        ("StringNotEqualsIgnoreCase", "Abc", "aBC", False),
        ("StringLike", "raw/*", "raw/2024/x.csv", True),
        ("StringLike", "raw/?", "raw/ab", False),
        ("StringLike", "raw", "raw/", False),
        ("StringNotLike", "raw/*", "processed/x", True),
        ("ArnLike", "arn:aws:s3:::bucket", "arn:aws:s3:::bucket", True),
        ("ArnLike", "arn:aws:iam::*:role/ops", "arn:aws:iam::111122223333:role/ops", True),
        # segment by segment: the account wildcard does not reach into the resource part
        ("ArnLike", "arn:aws:iam::*", "arn:aws:iam::111122223333:role/ops", False),
        ("ArnEquals", "arn:aws:logs:*:*:log-group:/a", "arn:aws:logs:eu-west-1:1:log-group:/a", True),
        ("ArnNotEquals", "arn:aws:logs:*:*:log-group:/a", "arn:aws:logs:eu-west-1:1:log-group:/b", True),
        ("ArnNotLike", "arn:aws:sns:*:*:t", "arn:aws:sns:eu-west-1:1:t", False),
        ("Bool", "true", True, True),
        ("Bool", "false", True, False),
        ("Bool", True, "TRUE", True),
        ("NumericLessThan", 1.2, "1.1", True),
        ("NumericLessThan", 1.2, "1.2", False),
        ("NumericLessThanEquals", 1.2, 1.2, True),
        ("NumericGreaterThan", "10", 11, True),
        ("NumericGreaterThanEquals", "10", 9, False),
        ("NumericEquals", "3", "3.0", True),
        ("NumericNotEquals", "3", "4", True),
        ("NumericEquals", "3", "three", False),
        ("DateGreaterThan", "2024-01-01T00:00:00Z", "2024-06-01T00:00:00Z", True),
        ("DateLessThan", "2024-01-01T00:00:00Z", "2024-06-01T00:00:00Z", False),
        ("IpAddress", "10.0.0.0/8", "10.1.2.3", True),
        ("NotIpAddress", "10.0.0.0/8", "192.168.0.1", True),
    ],
)
def test_operators(operator, policy_value, request_value, expected):
    assert holds({operator: {"key": policy_value}}, key=request_value) is expected


@pytest.mark.parametrize(
    ("operator", "expected"),
    [
        ("StringEquals", False),
        ("StringLike", False),
        ("ArnLike", False),
        ("Bool", False),
        ("NumericLessThan", False),
        # a negated operator holds when the key is absent
        ("StringNotEquals", True),
        ("StringNotLike", True),
        ("ArnNotLike", True),
        # IfExists: holds when the key is absent
        ("StringEqualsIfExists", True),
        ("BoolIfExists", True),
        ("ForAnyValue:StringEquals", False),
        ("ForAllValues:StringEquals", True),
    ],
)
def test_a_key_absent_from_the_request(operator, expected):
    assert holds({operator: {"s3:prefix": "raw/"}}) is expected


def test_if_exists_still_applies_the_operator_when_the_key_is_there():
    block = {"BoolIfExists": {"kms:GrantIsForAWSResource": "true"}}

    assert holds(block, kms__GrantIsForAWSResource=True)
    assert not holds(block, kms__GrantIsForAWSResource=False)


def test_null_checks_presence():
    assert holds({"Null": {"aws:SourceArn": "true"}})
    assert not holds({"Null": {"aws:SourceArn": "true"}}, aws__SourceArn="arn:aws:s3:::b")
    assert holds({"Null": {"aws:SourceArn": "false"}}, aws__SourceArn="arn:aws:s3:::b")
    assert not holds({"Null": {"aws:SourceArn": "false"}})


def test_values_of_one_key_are_alternatives_and_keys_and_operators_must_all_hold():
    block = {
        "StringEquals": {"kms:ViaService": ["s3.eu-west-1.amazonaws.com", "sqs.eu-west-1.amazonaws.com"]},
        "StringLike": {"kms:CallerAccount": "1111*"},
    }

    assert holds(block, kms__ViaService="sqs.eu-west-1.amazonaws.com", kms__CallerAccount="111122223333")
    assert not holds(block, kms__ViaService="sns.eu-west-1.amazonaws.com", kms__CallerAccount="111122223333")
    assert not holds(block, kms__ViaService="s3.eu-west-1.amazonaws.com", kms__CallerAccount="444455556666")
    two_keys = {"StringEquals": {"aws:SourceAccount": "1", "aws:SourceArn": "a"}}
    assert holds(two_keys, aws__SourceAccount="1", aws__SourceArn="a")
    assert not holds(two_keys, aws__SourceAccount="1", aws__SourceArn="b")


def test_set_operators_on_multivalued_keys():
    any_value = {"ForAnyValue:StringEquals": {"kms:ResourceAliases": ["alias/data", "alias/other"]}}
    all_values = {"ForAllValues:StringLike": {"aws:TagKeys": ["team-*", "cost-*"]}}

    assert holds(any_value, kms__ResourceAliases=["alias/unrelated", "alias/data"])
    assert not holds(any_value, kms__ResourceAliases=["alias/unrelated"])
    assert holds(all_values, aws__TagKeys=["team-a", "cost-center"])
    assert not holds(all_values, aws__TagKeys=["team-a", "owner"])
    # ForAnyValue with a negated operator: some value matches none of the policy values
    assert holds({"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["a", "b"]}}, aws__TagKeys=["a", "c"])
    assert not holds({"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["a", "b"]}}, aws__TagKeys=["a", "b"])


def test_condition_keys_are_case_insensitive():
    assert holds(
        {"StringEquals": {"KMS:VIASERVICE": "s3.eu-west-1.amazonaws.com"}}, kms__viaservice="s3.eu-west-1.amazonaws.com"
    )


@pytest.mark.parametrize(
    "block",
    [
        {"StringEqualz": {"k": "v"}},
        {"ForSomeValues:StringEquals": {"k": "v"}},
        {"ForAnyValue:Null": {"k": "true"}},
        {"StringEquals": {}},
        {"StringEquals": {"k": []}},
    ],
)
def test_what_iam_would_reject_or_this_does_not_implement_raises(block):
    with pytest.raises(PolicyError):
        parse_conditions(block)
