"""Requirement files and the distributions they install, for the tests of what each environment needs."""

from __future__ import annotations

from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def requirement_lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def requirements(path: Path) -> list[Requirement]:
    """The requirements of a file and of the files it includes with `-r`."""
    found = []
    for line in requirement_lines(path):
        if line.startswith("-r "):
            found += requirements(path.parent / line.removeprefix("-r ").strip())
        else:
            found.append(Requirement(line))
    return found


def pins(path: Path) -> dict[str, str]:
    return {canonicalize_name(requirement.name): str(requirement.specifier) for requirement in requirements(path)}


def installed_closure(roots: Iterable[Requirement]) -> set[str]:
    """The distributions these requirements install: themselves and what they require, with the extras asked for
    (markers evaluated for this interpreter); canonical names."""
    closure: set[str] = set()
    pending = [(canonicalize_name(root.name), frozenset(root.extras)) for root in roots]
    while pending:
        name, extras = pending.pop()
        if name in closure:
            continue
        closure.add(name)
        for line in metadata.requires(name) or ():
            dependency = Requirement(line)
            environments = [{"extra": extra} for extra in ("", *extras)]
            if dependency.marker is None or any(dependency.marker.evaluate(env) for env in environments):
                pending.append((canonicalize_name(dependency.name), frozenset(dependency.extras)))
    return closure


def provided_by(closure: set[str]) -> set[str]:
    """The importable top-level names that the closure's distributions provide."""
    return {
        name
        for name, distributions in metadata.packages_distributions().items()
        if {canonicalize_name(distribution) for distribution in distributions} & closure
    }
