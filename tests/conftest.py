"""The app is synthesized once per test run, offline and without credentials; tests share it read-only."""

from __future__ import annotations

import os
import sys

from infra.node_runtime import silence_end_of_life_banner
from pipelines.sdk import collect_less_often

silence_end_of_life_banner()
os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
# Tests run side by side (pytest-xdist, one worker per core), and with the servers and jobs they start: a library that
# starts a thread per core (torch, OpenBLAS) and spins in it while it waits for a core burns CPU time, several times the
# time of the work itself where each process does so. Set before anything imports them.
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")
# CDK's built-in template validation starts a WebAssembly engine in each Node process (2.6 s) and takes 1.6 s per app
# synth (measured); its findings are warnings, and the gates here are cfn-lint and cdk-nag. It is off for the synths in
# test processes and stays on where the tests run app.py as the CLI does (the second synth, as on a deploy machine),
# which checks that it reports nothing.
CDK_VALIDATION_VARIABLE = "CDK_VALIDATION"
os.environ.setdefault(CDK_VALIDATION_VARIABLE, "false")
# A test process holds one to two million objects (imported libraries, synthesized templates, botocore models): at the
# default thresholds the collector walks them all again every few seconds, 54 s of the 365 s of CPU time a serial run
# took (measured); with young generations as large as the entry points use, 2 to 5 s.
collect_less_often()

import fcntl  # noqa: E402
import functools  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
import typer.main  # noqa: E402
import typer.testing  # noqa: E402

from infra.cloud_assembly import SynthesizedStack, synthesized_stacks  # noqa: E402
from infra.config import (  # noqa: E402
    StageConfig,
    cdk_json_context,  # noqa: E402
    load_stage_configs,
)
from infra.lint import LintFinding, lint_templates  # noqa: E402
from tests.deploy_machine import run_on_a_deploy_machine  # noqa: E402
from tests.offline import offline_without_credentials  # noqa: E402

# The modules whose tests run whole pipelines or synths in processes of their own, each for a quarter to a whole minute
# of one worker (measured): scheduled first, so that no worker is left with one while the other has finished.
LONGEST_MODULES = (
    "tests/pipelines/local/test_local_loop.py",
    "tests/pipelines/local/test_signals.py",
    "tests/infra/test_quality_gates.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """pytest-xdist hands out modules (--dist loadscope) in the order collected when told not to reorder them
    (--no-loadscope-reorder: by default it starts with the modules of the most tests); a stable sort keeps the rest's
    order."""
    order = {module: position for position, module in enumerate(LONGEST_MODULES)}
    items.sort(key=lambda item: order.get(item.nodeid.split("::")[0], len(order)))


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """A pytest-xdist worker leaves as soon as it has reported the end of its session, which is all the controller
    waits for: no collection of its two million objects (1 to 3 s at the end of a run, measured, while the other core
    idles), no freeing them one by one, no exit handlers. A finding the worker would make later (an unraisable
    exception at its final collection) could not reach the controller anyway. The run's exit status is the
    controller's."""
    if hasattr(config, "workerinput"):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


# typer's CliRunner builds the command tree from the app's functions again for each invocation (14 ms for mlops,
# measured, in each of several hundred invocations); an app's tree does not change while the tests run.
typer.testing._get_command = functools.cache(typer.main.get_command)


# Skips asset bundling: templates and asset hashes stay the same, and tests need no Docker.
NO_BUNDLING = {"aws:cdk:bundling-stacks": []}
# cdk.json names no model package (one exists only after a pipeline run), so no stage would serve. As an operator
# would on the command line: staging serves in every mode (serverless with provisioned concurrency, batch on upload
# and on a schedule), prod in its cdk.json modes the version staging served before, and dev stays without a serving
# stack.
MODEL_PACKAGES = "arn:aws:sagemaker:eu-west-1:123456789012:model-package"
SERVING_CONTEXT = {
    "staging.inference.model_package_arn": f"{MODEL_PACKAGES}/mlopskit-staging-models/3",
    "staging.inference.serverless.enabled": "true",
    "staging.inference.serverless.provisioned_concurrency": "2",
    "staging.inference.serverless.max_provisioned_concurrency": "4",
    "staging.inference.batch_transform.schedule": "cron(0 4 ? * MON-FRI *)",
    "prod.inference.model_package_arn": f"{MODEL_PACKAGES}/mlopskit-staging-models/2",
    # As the manifest records them with the versions (these stages have no manifest here: a first deploy).
    "staging.inference.baseline": {
        "uri": "s3://mlopskit-staging-artifacts-123456789012-eu-west-1/pipeline-runs/mlopskit-staging-training/"
        "execution3/baseline/",
        "features": ["age", "colour", "size", "city"],
    },
    "prod.inference.baseline": {
        "uri": "s3://mlopskit-staging-artifacts-123456789012-eu-west-1/pipeline-runs/mlopskit-staging-training/"
        "execution2/baseline/",
        "features": ["age", "colour", "size", "city"],
        "model_constraints": "s3://mlopskit-staging-artifacts-123456789012-eu-west-1/pipeline-runs/"
        "mlopskit-staging-training/execution2/baseline/model_quality_constraints.json",
    },
}


# The same app with the delivery pipeline enabled (tests/infra/promotion): the pipeline in a tooling account, staging
# in that account too (the approval rule and smoke test live beside the pipeline), prod in its own account. The
# pipeline's synth passes the approved staging version to both stages, as here.
PIPELINE_ACCOUNT = "111111111111"
PROD_ACCOUNT = "222222222222"
DELIVERY_REGION = "eu-west-1"
DELIVERED_MODEL_PACKAGE = (
    f"arn:aws:sagemaker:{DELIVERY_REGION}:{PIPELINE_ACCOUNT}:model-package/mlopskit-staging-models/3"
)
DELIVERY_CONTEXT = {
    "delivery.enabled": "true",
    "delivery.account": PIPELINE_ACCOUNT,
    "delivery.region": DELIVERY_REGION,
    "delivery.source.kind": "codecommit",
    "delivery.source.repository": "mlopskit",
    "staging.account": PIPELINE_ACCOUNT,
    "staging.region": DELIVERY_REGION,
    "prod.account": PROD_ACCOUNT,
    "prod.region": DELIVERY_REGION,
    "staging.inference.model_package_arn": DELIVERED_MODEL_PACKAGE,
    "prod.inference.model_package_arn": DELIVERED_MODEL_PACKAGE,
}


@dataclass(frozen=True)
class SynthesizedApp:
    assembly_dir: Path
    stacks: dict[str, SynthesizedStack]
    connection_attempts: list[object]

    def stack(self, stage: str, unit: str) -> SynthesizedStack:
        return self.stacks[f"{stage}/{unit}"]

    def template(self, stage: str, unit: str) -> dict[str, Any]:
        return self.stack(stage, unit).template


def synthesize(context: dict[str, Any], outdir: Path) -> Path:
    from aws_cdk import App

    from infra.assembly import build_app

    app = App(context={**context, **NO_BUNDLING}, outdir=str(outdir))
    build_app(app)
    return Path(app.synth().directory)


@pytest.fixture(scope="session")
def cdk_context() -> dict[str, Any]:
    return {**cdk_json_context(), **SERVING_CONTEXT}


@pytest.fixture(scope="session")
def stage_configs(cdk_context: dict[str, Any]) -> dict[str, StageConfig]:
    return {config.name: config for config in load_stage_configs(cdk_context)}


def shared_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run's temporary directory: under pytest-xdist, the parent of the workers' own."""
    if "PYTEST_XDIST_WORKER" in os.environ:
        return tmp_path_factory.getbasetemp().parent
    return tmp_path_factory.getbasetemp()


def once_per_run(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], Any]) -> tuple[Path, Any]:
    """(directory, what build returned) where `build(directory)` filled the run's directory `name` exactly once.

    Under pytest-xdist each worker is a process with a session of its own: the first to ask builds, holding a lock in
    the run's temporary directory (its workers' parent), while the others wait, then read what it left. `build`'s
    result is written last, as JSON, so a build that raised leaves no result and the next worker builds again."""
    shared = shared_directory(tmp_path_factory)
    directory, result = shared / name, shared / f"{name}.json"
    with (shared / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not result.exists():
            shutil.rmtree(directory, ignore_errors=True)
            result.write_text(json.dumps(build(directory)))
        return directory, json.loads(result.read_text())


def synthesized_once(name: str, context: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    def build(outdir: Path) -> list[object]:
        with offline_without_credentials() as attempts:
            synthesize(context, outdir)
        return attempts

    assembly_dir, attempts = once_per_run(tmp_path_factory, name, build)
    stacks = {stack.display_name: stack for stack in synthesized_stacks(assembly_dir)}
    return SynthesizedApp(assembly_dir=assembly_dir, stacks=stacks, connection_attempts=attempts)


@pytest.fixture(scope="session")
def lint_once(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Sequence[Path]], dict[Path, list[LintFinding]]]:
    """infra.lint.lint_templates, run once per distinct template in a test run: the apps share stacks, and the summary
    tests lint the session's own. The workers share the results, one file per template; two workers that lint the
    same template at once both write the same findings."""
    results = shared_directory(tmp_path_factory) / "lint"
    results.mkdir(exist_ok=True)

    def lint(paths: Sequence[Path]) -> dict[Path, list[LintFinding]]:
        result_of = {path: results / f"{hashlib.sha256(path.read_bytes()).hexdigest()[:32]}.json" for path in paths}
        missing = [path for path in paths if not result_of[path].exists()]
        for path, findings in lint_templates(missing).items():
            written = result_of[path].with_suffix(f".{os.getpid()}")
            written.write_text(json.dumps([asdict(finding) for finding in findings]))
            written.replace(result_of[path])
        return {
            path: [
                LintFinding(**{**finding, "template": path.name}) for finding in json.loads(result_of[path].read_text())
            ]
            for path in paths
        }

    return lint


@pytest.fixture(scope="session")
def synthesized_app(cdk_context: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    return synthesized_once("cdk.out", cdk_context, tmp_path_factory)


@dataclass(frozen=True)
class DeployMachineSynth:
    assembly_dir: Path
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


# The variables that silence jsii's Node end-of-life banners (infra.node_runtime), which the test session sets.
JSII_SILENCING_PREFIX = "JSII_SILENCE_WARNING_"
DEPLOY_MACHINE_SYNTH = """
import runpy
for name in ("torch", "sklearn"):
    try:
        __import__(name)
    except ModuleNotFoundError:
        continue
    raise SystemExit(f"{name} was importable")
runpy.run_path("app.py", run_name="__main__")
import infra.promotion.stack  # the delivery stack synthesizes only with delivery enabled
"""


@pytest.fixture(scope="session")
def synthesized_on_a_deploy_machine(
    cdk_context: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> DeployMachineSynth:
    """The session's app synthesized again as `npx cdk synth` runs app.py on a deploy machine: in a process of its own
    that can import only what requirements.txt installs, with another hash seed (so that set ordering cannot hide),
    with CDK's built-in template validation on, and without what this test process set to quiet the SageMaker SDK
    and jsii's Node end-of-life banner (app.py does both)."""

    def build(outdir: Path) -> dict[str, Any]:
        shell = {
            name: value
            for name, value in os.environ.items()
            if name not in ("SAGEMAKER_SUPPRESS_V2_WARNING", CDK_VALIDATION_VARIABLE)
            and not name.startswith(JSII_SILENCING_PREFIX)
        }
        context = json.dumps({**cdk_context, **NO_BUNDLING})
        environment = {**shell, "CDK_CONTEXT_JSON": context, "CDK_OUTDIR": str(outdir), "PYTHONHASHSEED": "12345"}
        result = run_on_a_deploy_machine(DEPLOY_MACHINE_SYNTH, environment)
        return {"returncode": result.returncode, "stdout": result.stdout, "stderr": result.stderr}

    assembly_dir, result = once_per_run(tmp_path_factory, "cdk.out.deploy-machine", build)
    return DeployMachineSynth(assembly_dir, **result)


@pytest.fixture(scope="session")
def delivery_context(cdk_context: dict[str, Any]) -> dict[str, Any]:
    return {**cdk_context, **DELIVERY_CONTEXT}


@pytest.fixture(scope="session")
def delivery_app(delivery_context: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> SynthesizedApp:
    """The app synthesized with `delivery.enabled`: dev at the app level, staging and prod under the pipeline."""
    return synthesized_once("cdk.out.delivery", delivery_context, tmp_path_factory)


@pytest.fixture(scope="session")
def resources_of(synthesized_app: SynthesizedApp) -> Callable[[str, str, str], dict[str, dict[str, Any]]]:
    """resources_of(stage, unit, type) -> {logical id: resource} of that CloudFormation type."""

    def select(stage: str, unit: str, resource_type: str) -> dict[str, dict[str, Any]]:
        resources = synthesized_app.template(stage, unit)["Resources"]
        return {logical_id: r for logical_id, r in resources.items() if r["Type"] == resource_type}

    return select
