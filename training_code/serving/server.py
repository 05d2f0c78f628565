"""Starts the inference server: settings from SageMaker's environment or flags, the model checked before listening."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from training_code.contract import (
    DEFAULT_ACCEPT_VARIABLE,
    DEFAULT_MAX_PAYLOAD_MB,
    DEFAULT_MODEL_DIR,
    DEFAULT_SERVING_PORT,
    MAX_PAYLOAD_VARIABLE,
    PORT_VARIABLE,
    RESPONSE_CONTENT_TYPES,
    WORKERS_VARIABLE,
)
from training_code.serving.app import MAX_BODY_SETTING, MEGABYTE, MODEL_DIR_SETTING, WORKERS_SETTING
from training_code.serving.payload import media_type
from training_code.serving.predictor import Predictor

# In-flight requests get this long to finish after SIGTERM; SageMaker waits 30 s before it kills the container.
GRACEFUL_SHUTDOWN_SECONDS = 20


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class ServerSettings:
    model_dir: Path = DEFAULT_MODEL_DIR
    host: str = "0.0.0.0"
    port: int = DEFAULT_SERVING_PORT
    workers: int = 1
    max_payload_mb: int = DEFAULT_MAX_PAYLOAD_MB

    @classmethod
    def from_environment(cls, **overrides: object) -> ServerSettings:
        """SageMaker's variables, then the given overrides (None means: keep the environment's value)."""
        values: dict[str, object] = {
            name: _whole_number(variable, default, name)
            for name, (variable, default) in {
                "port": (PORT_VARIABLE, DEFAULT_SERVING_PORT),
                "workers": (WORKERS_VARIABLE, os.cpu_count() or 1),
                "max_payload_mb": (MAX_PAYLOAD_VARIABLE, DEFAULT_MAX_PAYLOAD_MB),
            }.items()
        }
        for name, value in overrides.items():
            if value is not None:
                values[name] = _checked(name, value, f"--{name.replace('_', '-')}") if name in values else value
        _check_default_accept()
        return cls(**values)


def _whole_number(variable: str, default: int, setting: str) -> int:
    value = os.environ.get(variable, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(f"{variable}={value!r} is not a whole number") from None
    return _checked(setting, number, variable)


def _checked(setting: str, value: object, source: str) -> int:
    low, high = (1, 65535) if setting == "port" else (1, None)
    if not isinstance(value, int) or value < low or (high is not None and value > high):
        allowed = f"{low}-{high}" if high else f"at least {low}"
        raise SettingsError(f"{source}={value!r}: the {setting.replace('_', ' ')} must be {allowed}")
    return value


def _check_default_accept() -> None:
    """The workers answer requests without Accept in this type: refused at start, not at the first request."""
    value = os.environ.get(DEFAULT_ACCEPT_VARIABLE, "")
    if value.strip() and media_type(value) not in RESPONSE_CONTENT_TYPES:
        raise SettingsError(
            f"{DEFAULT_ACCEPT_VARIABLE}={value!r} is not a type the server answers in; "
            f"one of {', '.join(RESPONSE_CONTENT_TYPES)}"
        )


def _exit_after_drain(signum: int, frame: object) -> None:
    raise SystemExit(0)


def serve(settings: ServerSettings) -> None:
    """Serve until SIGTERM or SIGINT, then let in-flight requests finish."""
    # Loading here first turns a bad artifact into one clear error instead of a crash in every worker.
    predictor = Predictor.load(settings.model_dir)
    print(
        f"serving {settings.model_dir} ({len(predictor.encoding.feature_names)} features, "
        f"{len(predictor.classes)} classes) "
        f"on {settings.host}:{settings.port} with {settings.workers} worker(s)",
        flush=True,
    )
    os.environ.update(
        {
            MODEL_DIR_SETTING: str(settings.model_dir.resolve()),
            MAX_BODY_SETTING: str(settings.max_payload_mb * MEGABYTE),
            WORKERS_SETTING: str(settings.workers),
        }
    )
    if settings.workers > 1:
        # The workers are processes started afresh, which load numpy after this: one BLAS thread each (the image sets
        # the same), as more would only compete with the other workers for the cores.
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    # uvicorn drains in-flight requests on SIGTERM, then raises the signal again for the previous handler: exiting
    # 0 there tells the orchestrator that the shutdown it asked for went cleanly.
    signal.signal(signal.SIGTERM, _exit_after_drain)
    uvicorn.run(
        "training_code.serving.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        http="httptools",
        loop="uvloop",
        lifespan="off",
        access_log=False,
        server_header=False,
        log_level="warning",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
