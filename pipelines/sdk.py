"""The SageMaker Python SDK v2 as the definition builder uses it: quiet, offline and fast.

Nothing here runs at import, and this module does not import the SDK at its top: the SDK announces itself as it is
imported (a v3 migration banner, a log line per defaults file it did not find), so the entry points that may build a
definition (app.py, `mlops`) call `quiet_sdk()` before anything imports it; `pipeline_session()`, which the builder
calls, does so again for what the SDK announces while a pipeline is built.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import logging
import os
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import boto3

if TYPE_CHECKING:
    from sagemaker.workflow.pipeline_context import PipelineSession

# SDK v2 is pinned on purpose (it builds definitions offline; see shared DESIGN.md section 2): its v3 banner, shown
# at import and again per deprecated class, is not news here.
SUPPRESS_V2_WARNING_VARIABLE = "SAGEMAKER_SUPPRESS_V2_WARNING"
# The SDK needs a syntactically valid region to build a definition; nothing region-specific survives into it
# (images and the job's region come from the builder's targets).
SDK_REGION = "us-east-1"
SDK_CONFIG = {"SchemaVersion": "1.0", "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}}}


# Importing the SDK (or torch and scikit-learn) creates about a million objects that live as long as the process: at the
# default thresholds the collector walks them again every few thousand allocations, 15% of the CPU time of the import
# (measured: the SDK 2.36 s against 2.01 s, torch and scikit-learn 3.15 s against 2.74 s). A process that imports them
# once and keeps them collects with young generations this large instead.
COLLECTION_THRESHOLDS = (50_000, 50, 50)


def collect_less_often() -> None:
    """The entry points' first call, before they import the SDK, aws_cdk or torch."""
    gc.set_threshold(*COLLECTION_THRESHOLDS)


def quiet_sdk() -> None:
    """Silence the SDK's announcements; call it before the first import of `sagemaker` to cover those it makes at
    import. The session is given its whole config, so the defaults files it did not find are not news either."""
    os.environ.setdefault(SUPPRESS_V2_WARNING_VARIABLE, "1")
    logging.getLogger("sagemaker.config").setLevel(logging.WARNING)


def pipeline_session(default_bucket: str) -> PipelineSession:
    """A session that builds definitions without calling AWS: a fixed region, the default bucket given (the SDK
    would otherwise look it up in S3), telemetry off, and its config validated once rather than on every lookup."""
    quiet_sdk()
    # Imported here, after quiet_sdk(): app.py imports this module before it may call that.
    import sagemaker.config
    import sagemaker.session
    import sagemaker.utils
    from sagemaker.workflow.pipeline_context import PipelineSession

    # Both bindings: a session validates its config as it starts, the lookups go through sagemaker.utils.
    validate_once = _validate_each_config_once(sagemaker.config.validate_sagemaker_config)
    sagemaker.session.validate_sagemaker_config = sagemaker.utils.validate_sagemaker_config = validate_once
    session = PipelineSession(
        boto_session=_offline_boto_session(), default_bucket=default_bucket, sagemaker_config=SDK_CONFIG
    )
    session._default_bucket = default_bucket
    return session


@functools.cache
def _offline_boto_session() -> boto3.Session:
    """One per process: a new boto3 session loads botocore's data again (half a second, measured), and a definition
    is built per stage."""
    return boto3.Session(region_name=SDK_REGION)


@functools.cache
def _validate_each_config_once(validate: Callable[[dict], None]) -> Callable[[dict], None]:
    """SDK v2 re-validates the session config against its whole JSON schema as each session starts and on every
    config lookup (about 50 per pipeline, 0.2 s each, measured: 10 s of a 12 s build). The sessions here are given
    SDK_CONFIG, a constant that the tests validate against the pinned SDK's schema; any other config is validated
    once per process."""
    validated: list[dict] = [SDK_CONFIG]

    def validate_once(config: dict) -> None:
        if config not in validated:
            validate(config)
            validated.append(json.loads(json.dumps(config)))

    return validate_once


@contextlib.contextmanager
def offline_build() -> Iterator[None]:
    """While a definition is built: the SDK narrates its offline build (no jobs started, names dropped, defaults
    used), which is expected here, not news."""
    sdk_logger = logging.getLogger("sagemaker")
    level = sdk_logger.level
    sdk_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        sdk_logger.setLevel(level)
