"""Dependencies run one way (README, "Layout"): the import contracts in .importlinter hold, they cover every module,
and they fail when an import breaks them."""

from __future__ import annotations

import ast
import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONTRACTS = PROJECT_ROOT / ".importlinter"
PACKAGES = ("infra", "pipelines", "training_code")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
# The layers of the `layers` contract, from the bottom up.
STAGE_MODEL, CONTAINER_CODE, BUILDER, CDK, OPERATOR = range(5)


def contracts() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(inline_comment_prefixes=None)
    parser.read(CONTRACTS)
    return parser


def listed(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


def layers() -> list[set[str]]:
    """The modules of each layer, bottom first."""
    top_first = listed(contracts()["importlinter:contract:layers"]["layers"])
    return [{module.strip() for module in layer.split(":")} for layer in reversed(top_first)]


def layer_of(module: str) -> list[int]:
    """Every layer that holds the module or a package above it (one, where the contract covers it)."""
    return [
        index
        for index, members in enumerate(layers())
        if any(module == member or module.startswith(f"{member}.") for member in members)
    ]


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, cache_dir=None)


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(CONTRACTS), "--no-cache"],
        cwd=root,
        env={"PATH": str(LINT_IMPORTS.parent), "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_import_contracts_hold():
    result = lint_imports(PROJECT_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_an_import_against_the_layers_fails_the_check(tmp_path):
    """The same contracts over a copy of the packages with two wrong imports: the stage model importing the
    registry breaks the layers; a training module importing infra breaks the container-code contracts (its own and,
    through it, the step scripts')."""
    for package in PACKAGES:
        shutil.copytree(PROJECT_ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    naming = tmp_path / "infra" / "naming.py"
    naming.write_text(f"{naming.read_text()}\nfrom pipelines.registry import Registry  # noqa\n")
    model = tmp_path / "training_code" / "model.py"
    model.write_text(f"{model.read_text()}\nimport infra.layout  # noqa\n")

    result = lint_imports(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "Contracts: 1 kept, 3 broken." in result.stdout, result.stdout
    assert "infra.naming -> pipelines.registry" in result.stdout
    assert "training_code.model -> infra.layout" in result.stdout


def test_every_module_is_in_exactly_one_layer(graph):
    """A new module joins a layer in .importlinter; until it does, nothing would check what it imports."""
    unplaced = {module: layer_of(module) for module in graph.modules if module not in PACKAGES}
    assert {module: found for module, found in unplaced.items() if len(found) != 1} == {}


def test_the_top_level_packages_import_nothing(graph):
    """Importing a package runs no code of another: `import infra` used to import pipelines for a side effect."""
    assert {package: graph.find_modules_directly_imported_by(package) for package in PACKAGES} == {
        package: set() for package in PACKAGES
    }


def test_training_code_imports_nothing_from_infra_or_pipelines(graph):
    for other in ("infra", "pipelines"):
        assert not graph.chain_exists(importer="training_code", imported=other, as_packages=True), other


def test_the_builder_and_the_cdk_app_may_import_no_container_code():
    """The forbidden list of that contract is the container-code layer, module for module."""
    forbidden = listed(contracts()["importlinter:contract:container-code-by-path"]["forbidden_modules"])
    assert set(forbidden) == layers()[CONTAINER_CODE]


def test_app_imports_only_what_the_cdk_layer_may():
    """app.py is a module, which the checker cannot read: the CDK layer's rule, checked here."""
    tree = ast.parse((PROJECT_ROOT / "app.py").read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    ours = {module for module in imported if module.split(".")[0] in PACKAGES}
    assert ours, "app.py builds the app from infra"
    assert {
        module: layer_of(module) for module in ours if layer_of(module) not in ([STAGE_MODEL], [BUILDER], [CDK])
    } == {}
