"""The code bundle that the jobs run: container code only, and all of what it imports."""

from __future__ import annotations

import ast
import tarfile
from pathlib import PurePosixPath

from pipelines.bundle import TRAINING_ENTRY_POINT, build_bundle

PROJECT_PACKAGES = ("infra", "pipelines", "training_code")
CONTAINER_PACKAGES = ("training_code", "pipelines.steps")


def is_container_code(module: str) -> bool:
    return any(module == package or module.startswith(f"{package}.") for package in CONTAINER_PACKAGES)


def module_name(member: str) -> str:
    path = PurePosixPath(member).with_suffix("")
    parts = path.parts[:-1] if path.name == "__init__" else path.parts
    return ".".join(parts)


def project_imports(source: str, modules: set[str]) -> set[str]:
    """The project modules a file imports (`from package import module` names the module where there is one)."""
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names}
            imported |= (submodules & modules) or {node.module}
    return {name for name in imported if name.split(".")[0] in PROJECT_PACKAGES}


def test_the_bundle_ships_container_code_and_everything_it_imports(tmp_path):
    with tarfile.open(build_bundle(tmp_path / "sourcedir.tar.gz")) as archive:
        sources = {member.name: archive.extractfile(member).read().decode() for member in archive.getmembers()}
    modules = {module_name(member): source for member, source in sources.items()}
    entry_point = module_name(TRAINING_ENTRY_POINT)

    besides_container_code = {name for name in modules if not is_container_code(name)}
    assert besides_container_code == {entry_point, "pipelines"}
    parent = ast.parse(modules["pipelines"]).body
    assert [type(node) for node in parent] == [ast.Expr], "the steps' parent package: a docstring, no code to run"
    imports = {name: project_imports(source, set(modules)) for name, source in modules.items()}
    assert {name: sorted(found - set(modules)) for name, found in imports.items() if found - set(modules)} == {}
    packages = {name.rsplit(".", 1)[0] for name in modules if "." in name}
    assert packages <= set(modules), "every package of a shipped module is shipped with its __init__.py"
    assert {"training_code.train", "pipelines.steps.preprocess", "pipelines.steps.evaluate"} <= set(modules)
