"""Wildcard matching as IAM does it: `*` any run of characters, `?` one character, nothing else special."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

ARN_SEGMENTS = 6  # arn:partition:service:region:account:resource (the resource part may hold more colons)


@lru_cache(maxsize=8192)
def _glob_regex(pattern: str) -> str:
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)


@lru_cache(maxsize=4096)
def compile_globs(patterns: tuple[str, ...], ignore_case: bool = False) -> re.Pattern[str]:
    """One regex that fully matches any of the patterns (one search per request, however many patterns)."""
    alternatives = "|".join(f"(?:{_glob_regex(p)})" for p in patterns)
    return re.compile(alternatives, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def glob_matches(pattern: str, value: str, ignore_case: bool = False) -> bool:
    return compile_globs((pattern,), ignore_case).fullmatch(value) is not None


def arn_like(pattern: str, arn: str) -> bool:
    """ArnLike/ArnEquals: segment by segment, so a wildcard in one segment never spans into another."""
    pattern_parts = pattern.split(":", ARN_SEGMENTS - 1)
    if len(pattern_parts) < ARN_SEGMENTS:
        # Not an ARN pattern: a bare wildcard ("*") matches any ARN; anything else with colons matches none.
        return ":" not in pattern and glob_matches(pattern, arn)
    arn_parts = arn.split(":", ARN_SEGMENTS - 1)
    return len(arn_parts) == ARN_SEGMENTS and all(
        glob_matches(p, a) for p, a in zip(pattern_parts, arn_parts, strict=True)
    )


def parse_arn(arn: str) -> tuple[str, str, str, str, str] | None:
    """(partition, service, region, account, resource), or None when `arn` is not an ARN."""
    parts = arn.split(":", ARN_SEGMENTS - 1)
    if len(parts) != ARN_SEGMENTS or parts[0] != "arn":
        return None
    return parts[1], parts[2], parts[3], parts[4], parts[5]


def as_tuple(value: str | Iterable[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)
