"""Validates an API request against botocore's service model: what AWS accepts, member by member.

botocore's own ParamValidator checks types, required members and minimum lengths only; the service rejects far more
(enums, maximum lengths, numeric ranges, list and map sizes, regular expressions). This walker checks all of them and
reports each violation as one line that names the member's path, e.g.
`TransformJobName: 'mlopskit-staging-…' is 97 characters; at most 63`.

Patterns are matched against the WHOLE value (re.fullmatch), as the services do: ECR refuses 'MyRepo' for the pattern
`(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*` and SageMaker refuses 'my_job' for
`[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`, although both contain a matching substring. Model patterns are written for Java /
ECMAScript engines; python_pattern() rewrites the few constructs Python's `re` lacks.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Iterable
from datetime import date, datetime
from functools import cache
from typing import Any

import botocore.session
from botocore.model import OperationModel, Shape

SHOWN_CHARACTERS = 60


@cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


@cache
def operation_model(service: str, operation: str) -> OperationModel:
    return _session().get_service_model(service).operation_model(operation)


def problems(service: str, operation: str, request: dict[str, Any], *, not_required: Iterable[str] = ()) -> list[str]:
    """Every way `request` breaks the input shape of service:operation; [] when AWS would accept it.

    not_required: top-level members that the caller does not send because the service fills them in (for example the
    job name of a SageMaker Pipelines step). Members marked as idempotency tokens are never required: SDKs fill them.
    """
    shape = operation_model(service, operation).input_shape
    found: list[str] = []
    _check(shape, request, "", found, frozenset(not_required))
    return found


def shape_problems(shape: Shape, value: Any, path: str = "") -> list[str]:
    found: list[str] = []
    _check(shape, value, path, found, frozenset())
    return found


# --- the walker --------------------------------------------------------------------------------------------------


def _check(shape: Shape, value: Any, path: str, found: list[str], not_required: frozenset[str]) -> None:
    kind = shape.type_name
    if kind == "structure" and getattr(shape, "is_document_type", False):
        return  # a free-form JSON document
    checker = _CHECKERS.get(kind)
    if checker is None:
        found.append(f"{_where(path)}: the model's type {kind!r} is not checked here")
        return
    checker(shape, value, path, found, not_required)


def _check_structure(shape: Shape, value: Any, path: str, found: list[str], not_required: frozenset[str]) -> None:
    if not isinstance(value, dict):
        found.append(f"{_where(path)}: {_show(value)} is {_kind_of(value)}; expected a structure ({shape.name})")
        return
    members = shape.members
    for name in value:
        if name not in members:
            found.append(f"{_join(path, name)}: unknown member of {shape.name}; known: {', '.join(sorted(members))}")
    for name in shape.required_members:
        if name in value or name in not_required or members[name].metadata.get("idempotencyToken"):
            continue
        found.append(f"{_join(path, name)}: required member of {shape.name} is missing")
    if shape.metadata.get("union"):
        present = [name for name in value if name in members and value[name] is not None]
        if len(present) != 1:
            found.append(
                f"{_where(path)}: {shape.name} is a union; exactly one member must be set, not {len(present)}"
                + (f" ({', '.join(present)})" if present else "")
            )
    for name, item in value.items():
        if name in members:
            _check(members[name], item, _join(path, name), found, frozenset())


def _check_list(shape: Shape, value: Any, path: str, found: list[str], _: frozenset[str]) -> None:
    if not isinstance(value, list):
        found.append(f"{_where(path)}: {_show(value)} is {_kind_of(value)}; expected a list")
        return
    _check_size(shape, len(value), "items", path, found)
    for index, item in enumerate(value):
        _check(shape.member, item, f"{path}[{index}]", found, frozenset())


def _check_map(shape: Shape, value: Any, path: str, found: list[str], _: frozenset[str]) -> None:
    if not isinstance(value, dict):
        found.append(f"{_where(path)}: {_show(value)} is {_kind_of(value)}; expected a map")
        return
    _check_size(shape, len(value), "entries", path, found)
    for key, item in value.items():
        _check(shape.key, key, f"{path}<key {key!r}>", found, frozenset())
        _check(shape.value, item, f"{path}[{key!r}]", found, frozenset())


def _check_string(shape: Shape, value: Any, path: str, found: list[str], _: frozenset[str]) -> None:
    if not isinstance(value, str):
        found.append(f"{_where(path)}: {_show(value)} is {_kind_of(value)}; expected a string")
        return
    if shape.enum and value not in shape.enum:
        found.append(f"{_where(path)}: {_show(value)} is not one of {', '.join(shape.enum)}")
    _check_size(shape, len(value), "characters", path, found, value)
    pattern = shape.metadata.get("pattern")
    if pattern is not None and not compiled_pattern(pattern).fullmatch(value):
        found.append(f"{_where(path)}: {_show(value)} does not match the pattern {pattern}")


def _check_integer(shape: Shape, value: Any, path: str, found: list[str], _: frozenset[str]) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        found.append(f"{_where(path)}: {_show(value)} is {_kind_of(value)}; expected an integer")
        return
    _check_range(shape, value, path, found)


def _check_number(shape: Shape, value: Any, path: str, found: list[str], _: frozenset[str]) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        found.append(f"{_where(path)}: {_show(value)} is {_kind_of(value)}; expected a number")
        return
    _check_range(shape, value, path, found)


def _check_boolean(shape: Shape, value: Any, path: str, found: list[str], _: frozenset[str]) -> None:
    if not isinstance(value, bool):
        found.append(f"{_where(path)}: {_show(value)} is {_kind_of(value)}; expected a boolean")


def _check_blob(shape: Shape, value: Any, path: str, found: list[str], _: frozenset[str]) -> None:
    if not isinstance(value, bytes | bytearray | str):
        found.append(f"{_where(path)}: {_show(value)} is {_kind_of(value)}; expected bytes")
        return
    size = len(value.encode() if isinstance(value, str) else value)
    _check_size(shape, size, "bytes", path, found)


def _check_timestamp(shape: Shape, value: Any, path: str, found: list[str], _: frozenset[str]) -> None:
    if isinstance(value, bool) or not isinstance(value, datetime | date | str | int | float):
        found.append(f"{_where(path)}: {_show(value)} is {_kind_of(value)}; expected a timestamp")


_CHECKERS = {
    "structure": _check_structure,
    "list": _check_list,
    "map": _check_map,
    "string": _check_string,
    "integer": _check_integer,
    "long": _check_integer,
    "float": _check_number,
    "double": _check_number,
    "boolean": _check_boolean,
    "blob": _check_blob,
    "timestamp": _check_timestamp,
}


def _check_size(shape: Shape, size: int, unit: str, path: str, found: list[str], value: Any = None) -> None:
    least, most = shape.metadata.get("min"), shape.metadata.get("max")
    subject = _show(value) if value is not None else "it"
    if least is not None and size < least:
        found.append(f"{_where(path)}: {subject} has {size} {unit}; at least {least}")
    if most is not None and size > most:
        found.append(f"{_where(path)}: {subject} is {size} {unit}; at most {most}")


def _check_range(shape: Shape, value: float, path: str, found: list[str]) -> None:
    least, most = shape.metadata.get("min"), shape.metadata.get("max")
    if least is not None and value < least:
        found.append(f"{_where(path)}: {value!r} is below the minimum {least}")
    if most is not None and value > most:
        found.append(f"{_where(path)}: {value!r} is above the maximum {most}")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _where(path: str) -> str:
    return path or "(request)"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN_CHARACTERS else text[: SHOWN_CHARACTERS - 1] + "…"


def _kind_of(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
        type(None): "null",
    }.get(type(value), type(value).__name__)


# --- patterns: Java / ECMAScript constructs Python's re lacks ----------------------------------------------------

# Java's POSIX classes (\p{Alnum} …) are ASCII-only unless UNICODE_CHARACTER_CLASS is set; AWS does not set it.
_POSIX_CLASSES = {
    "ASCII": r"\x00-\x7F",
    "Alnum": r"A-Za-z0-9",
    "Alpha": r"A-Za-z",
    "Digit": r"0-9",
    "Upper": r"A-Z",
    "Lower": r"a-z",
    "Punct": r"!-/:-@\[-`{-~",
    "Graph": r"!-~",
    "Print": r" -~",
    "Blank": r" \t",
    "Space": r" \t\n\x0B\f\r",
    "XDigit": r"0-9a-fA-F",
    "Cntrl": r"\x00-\x1F\x7F",
}
_PROPERTY = re.compile(r"\\([pP])\{(?:Is|general_category=|gc=)?([A-Za-z_]+)\}")
_SURROGATE_PAIR = re.compile(r"\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})", re.IGNORECASE)
# `${1,128}`: Java quantifies the end anchor (a no-op); Python refuses to repeat an anchor.
_QUANTIFIED_ANCHOR = re.compile(r"\$\{\d+(?:,\d*)?\}")


@cache
def _categories() -> dict[str, list[int]]:
    """Every code point by its Unicode general category ('Lu', 'Nd' …), from one pass over unicodedata."""
    by_category: dict[str, list[int]] = {}
    for code in range(sys.maxunicode + 1):
        by_category.setdefault(unicodedata.category(chr(code)), []).append(code)
    return by_category


@cache
def _category_ranges(category: str) -> str:
    """A character-class body for a general category: a major one ('L') or a subcategory ('Lu')."""
    codes = sorted(code for name, members in _categories().items() if name.startswith(category) for code in members)
    if not codes:
        raise ValueError(f"no Unicode general category {category!r}")
    ranges: list[list[int]] = []
    for code in codes:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return "".join(f"\\U{low:08x}" if low == high else f"\\U{low:08x}-\\U{high:08x}" for low, high in ranges)


def _property_class(name: str) -> str:
    if name in _POSIX_CLASSES:
        return _POSIX_CLASSES[name]
    if name in {"L", "M", "N", "P", "S", "Z", "C"} or (len(name) == 2 and name[0] in "LMNPSZC"):
        return _category_ranges(name)
    raise ValueError(f"the pattern uses \\p{{{name}}}, which python_pattern() does not translate")


def python_pattern(pattern: str) -> str:
    """The model's pattern in Python `re` syntax."""
    converted = _SURROGATE_PAIR.sub(
        lambda m: "\\U%08x" % (0x10000 + ((int(m[1], 16) - 0xD800) << 10) + (int(m[2], 16) - 0xDC00)), pattern
    )
    converted = _QUANTIFIED_ANCHOR.sub("$", converted)
    out: list[str] = []
    position, in_class = 0, False
    while position < len(converted):
        match = _PROPERTY.match(converted, position)
        if match:
            body = _property_class(match[2])
            negated = match[1] == "P"
            if in_class and negated:
                raise ValueError(f"{pattern!r}: a negated property inside a class is not translated")
            out.append(body if in_class else f"[{'^' if negated else ''}{body}]")
            position = match.end()
            continue
        char = converted[position]
        if char == "\\":
            out.append(converted[position : position + 2])
            position += 2
            continue
        if char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class and out and out[-1] not in ("[", "[^"):
            in_class = False
        out.append(char)
        position += 1
    return "".join(out)


@cache
def compiled_pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(python_pattern(pattern))
