"""`mlops serve`: a model served on this machine with the serving image's own server."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from pipelines.cli.common import (
    CommandError,
    OptionalStage,
    approved_version,
    is_local,
    latest_approved,
    one_line_errors,
    within,
)
from pipelines.local.layout import LocalLayout
from pipelines.registry import Registry
from training_code.contract import SERVE_COMMAND


@one_line_errors
def serve(
    ctx: typer.Context,
    model_dir: Annotated[
        Path | None, typer.Option(exists=True, help="the model artifact: a directory, or one holding model.tar.gz")
    ] = None,
    stage: OptionalStage = None,
    version: Annotated[
        str | None, typer.Option("--version", "-v", help="with --stage: this Approved version (default: the latest)")
    ] = None,
    port: Annotated[
        int | None, typer.Option(callback=within(1, 65535), help="default: SAGEMAKER_BIND_TO_PORT, else 8080")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(callback=within(1), help="default: SAGEMAKER_MODEL_SERVER_WORKERS, else 1/core")
    ] = None,
    max_payload_mb: Annotated[
        int | None, typer.Option(callback=within(1), help="larger bodies get 413 (default 6)")
    ] = None,
    host: Annotated[str, typer.Option(help="the serving image listens on 0.0.0.0")] = "127.0.0.1",
) -> None:
    """Serve a model on this machine with the serving image's server: GET /ping, POST /invocations.

    The model is a local artifact (--model-dir) or an Approved version of the stage's registry (--stage)."""
    if (model_dir is None) == (stage is None):
        raise CommandError("give either --model-dir or --stage (with --version for other than the latest Approved)")
    from training_code.serving.server import ServerSettings

    # The server's own settings (flags over SageMaker's variables), checked before a version is downloaded.
    settings = ServerSettings.from_environment(host=host, port=port, workers=workers, max_payload_mb=max_payload_mb)
    check_port_free(settings.host, settings.port)
    if stage is not None:
        registry = Registry()
        model = latest_approved(registry, stage) if version is None else approved_version(registry, stage, version)
        model_dir = served_model_directory(ctx, model.group, model.version)
        registry.download_model(model, model_dir)
        typer.echo(f"serving version {model.label} ({model.arn})")
        # Ends what the command holds (the embedded AWS saves its state) before the server replaces this process.
        ctx.find_root().close()
    options = {"--model-dir": model_dir, "--port": port, "--workers": workers, "--max-payload-mb": max_payload_mb}
    arguments = [str(part) for option, value in options.items() if value is not None for part in (option, value)]
    # The image's own command, started afresh: its workers then import the server alone, not this CLI.
    command = [sys.executable, "-m", "training_code.serving", SERVE_COMMAND, *arguments, "--host", host]
    sys.stdout.flush()
    os.execv(sys.executable, command)


def served_model_directory(ctx: typer.Context, group: str, version: int) -> Path:
    """One directory per served version, emptied before each download: the server replaces this process and cannot
    remove what it serves, so temporary directories would pile up, one per `serve`."""
    local = is_local(ctx)
    root = LocalLayout.from_environment().root if local else Path(tempfile.gettempdir()) / "mlops-serve"
    directory = root / "serve" / f"{group}-{version}" if local else root / f"{group}-{version}"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return directory


def check_port_free(host: str, port: int) -> None:
    """The server would find a taken port only after loading the model, and report it in its own log format."""
    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as error:
        raise CommandError(f"--host {host}: {error.strerror}") from None
    with socket.socket(family, kind) as probe:
        # As the server binds: a port whose last connections are still closing is free to it.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            taken = error.errno in (errno.EADDRINUSE, errno.EACCES)
            raise CommandError(
                f"cannot listen on {host}:{port}: {error.strerror}{'; choose another --port' if taken else ''}"
            ) from None
