"""The embedded AWS of local runs: moto's server on loopback, its state kept in a local directory between commands.

Everything else reaches it as it would reach AWS, through the standard settings (`AWS_ENDPOINT_URL`, credentials,
region), so the registry, promotion and serving code paths are the ones that run against an account.

Each command that uses it (`mlops --local ...`, `mlops local run`) starts a server, restores the state saved in
`<state dir>/aws-state.pickle`, and saves it again when it ends if it changed anything (a command that only reads
leaves the file as it was). `mlops local aws` keeps one running in the foreground for other tools (the AWS CLI,
notebooks); while it runs, commands use it instead of starting their own.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import logging
import os
import pickle
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.local.layout import LocalLayout

# moto's fixed account; every ARN of a local run names it.
LOCAL_ACCOUNT = "123456789012"
# Local runs use this region whatever the stage names: one embedded account, one region.
DEFAULT_LOCAL_REGION = "us-east-1"
LOOPBACK = "127.0.0.1"
# The services whose state outlives a command: buckets and objects, the registry.
PERSISTED_SERVICES = ("s3", "sagemaker")
# moto accepts any credentials; these only keep boto3 from looking for real ones.
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_SESSION_TOKEN": "local"}
# Settings that would send boto3 to a real account or profile instead of the embedded one.
CLEARED_SETTINGS = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")
# A closed terminal or a `kill` ends a command as Ctrl-C does: through its cleanup, so that the state is saved.
UNWINDING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)
STOP_SIGNALS = (signal.SIGINT, *UNWINDING_SIGNALS)
# How often the server's thread looks for a stop: a command's end waits for it, and an idle check costs next to nothing.
STOP_POLL_SECONDS = 0.02


class EmbeddedAwsError(Exception):
    """The embedded AWS could not start, or its saved state or a local run's record could not be read; the message
    names the file and says what to do."""


@dataclass(frozen=True)
class Endpoint:
    url: str
    region: str
    # Where this command saves the state when it ends; None when a `mlops local aws` server keeps it.
    state_file: Path | None = None

    def state_note(self) -> str:
        if self.state_file is None:
            return f"the embedded AWS at {self.url} keeps its state"
        return f"the embedded AWS state is saved in {self.state_file}"

    def environment(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            **LOCAL_CREDENTIALS,
        }


def _check_port_free(port: int) -> None:
    """Checked before the state is locked and restored: a taken port is refused at once, in words."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError as error:
            raise EmbeddedAwsError(f"cannot listen on {LOOPBACK}:{port}: {error.strerror}") from None


@contextlib.contextmanager
def stop_signals_kept_from_new_threads() -> Iterator[None]:
    """Threads started in the block (and the threads they start) never take a stop signal. The system hands a
    process's signal to any thread that does not block it, and Python runs the handler in the main thread only when
    that thread wakes: one taken by another thread would leave the main thread asleep in a wait, the signal unseen."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


class _Server:
    """moto's server app on loopback in a thread of its own, as moto's ThreadedMotoServer runs it, except that the
    thread looks for a stop every STOP_POLL_SECONDS rather than every 0.5 s: every command waited that long to end."""

    def __init__(self, port: int) -> None:
        # Imported here: the CLI's other commands need not pay for moto's import.
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server

        app = DomainDispatcherApplication(create_backend_app)
        self.server = make_server(LOOPBACK, port, app, threaded=True, request_handler=MotoRequestHandler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": STOP_POLL_SECONDS}, daemon=True
        )

    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join()
        self.server.server_close()


def _started_server(port: int) -> _Server:
    # The server logs every request it answers; a local run's output is the pipeline's, not the HTTP traffic.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = _Server(port)
    with stop_signals_kept_from_new_threads():
        server.thread.start()
    return server


def _current_state() -> dict[str, Any]:
    from moto.backends import get_backend

    return {service: dict(get_backend(service)) for service in PERSISTED_SERVICES}


def _save_state(path: Path) -> None:
    partial = path.with_suffix(".partial")
    partial.write_bytes(pickle.dumps(_current_state()))
    os.replace(partial, path)


def _fingerprint() -> bytes:
    """A digest of the state as it would be saved, less what merely reading it changes: moto counts on each object
    how often it was described or downloaded (`_tick`, for its simulated status transitions)."""
    from moto.moto_api._internal.managed_state_model import ManagedState

    class WithoutReadCounts(pickle.Pickler):
        def reducer_override(self, obj: Any) -> Any:
            if not isinstance(obj, ManagedState):
                return NotImplemented
            rebuild, arguments, state, *rest = obj.__reduce_ex__(pickle.HIGHEST_PROTOCOL)
            return (rebuild, arguments, {key: value for key, value in state.items() if key != "_tick"}, *rest)

    buffer = io.BytesIO()
    WithoutReadCounts(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(_current_state())
    return hashlib.sha256(buffer.getvalue()).digest()


def _read_state(path: Path) -> dict[str, Any]:
    """The saved state by service (none saved yet: an empty account)."""
    if not path.exists():
        return {}
    unreadable = f"cannot read the embedded AWS state {path}"
    try:
        state = pickle.loads(path.read_bytes())  # noqa: S301 - written by this project into the user's own directory
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, ValueError, OSError) as error:
        raise EmbeddedAwsError(
            f"{unreadable} ({type(error).__name__}: {error}); delete it to start from an empty local account"
        ) from None
    if not (isinstance(state, dict) and set(state) <= set(PERSISTED_SERVICES)) or not all(
        isinstance(accounts, dict) for accounts in state.values()
    ):
        raise EmbeddedAwsError(
            f"{unreadable}: it does not hold the state of {', '.join(PERSISTED_SERVICES)}; "
            f"delete it to start from an empty local account"
        )
    return state


def _restore_state(path: Path) -> None:
    """The embedded account as saved, and nothing else (this process may have served another account before)."""
    state = _read_state(path)
    from moto.backends import get_backend

    for service in PERSISTED_SERVICES:
        backend = get_backend(service)
        backend.clear()
        backend.update(state.get(service, {}))


@contextlib.contextmanager
def _restored_state(path: Path) -> Iterator[None]:
    """The saved state for the block, saved again after it (also when it fails: what was done is kept, as in AWS)
    unless nothing in it changed: a command that only reads leaves the file as it was, its bytes and its time."""
    _restore_state(path)
    restored = _fingerprint()
    try:
        yield
    finally:
        if _fingerprint() != restored:
            _save_state(path)


def _running_endpoint(layout: LocalLayout) -> Endpoint | None:
    """The endpoint of a `mlops local aws` server that still answers, if any (its process id alone could have been
    reused since by another process)."""
    try:
        recorded = json.loads(layout.endpoint_file.read_text())
        os.kill(int(recorded["pid"]), 0)
        host, port = recorded["url"].removeprefix("http://").rsplit(":", 1)
        socket.create_connection((host, int(port)), timeout=1).close()
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return Endpoint(recorded["url"], recorded["region"])


@contextlib.contextmanager
def _locked(layout: LocalLayout) -> Iterator[None]:
    """One command at a time owns the saved state; a second waits instead of losing the first one's changes."""
    try:
        layout.root.mkdir(parents=True, exist_ok=True)
        lock = layout.lock_file.open("a")
    except OSError as error:
        raise EmbeddedAwsError(f"cannot use {layout.root} for the embedded AWS state: {error.strerror}") from None
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another local command to release {layout.lock_file} ...", file=sys.stderr, flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _raise_exit(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _exits_cleanly_on_stop_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP unwind the block as Ctrl-C does (its `finally` saves the state), where Python would
    otherwise end at once. Only the main thread can set handlers; elsewhere the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _raise_exit) for signum in UNWINDING_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in (*values, *CLEARED_SETTINGS)}
    for name in CLEARED_SETTINGS:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def embedded_aws(layout: LocalLayout, region: str = DEFAULT_LOCAL_REGION) -> Iterator[Endpoint]:
    """The embedded AWS for the length of the block, with this process's AWS settings pointing at it.

    Uses the `mlops local aws` server when one runs; otherwise starts one on a free loopback port, restores the saved
    state, and saves what the block changed at the end."""
    running = _running_endpoint(layout)
    if running is not None:
        with _environment(Endpoint(running.url, region).environment()):
            yield Endpoint(running.url, region)
        return
    with _exits_cleanly_on_stop_signals(), _locked(layout), _restored_state(layout.aws_state_file):
        server = _started_server(0)
        endpoint = Endpoint(server.url(), region, layout.aws_state_file)
        try:
            with _environment(endpoint.environment()):
                yield endpoint
        finally:
            server.stop()


def serve_until_stopped(layout: LocalLayout, port: int, region: str, on_ready: Callable[[Endpoint], None]) -> None:
    """Run the embedded AWS in the foreground on `port` until SIGINT, SIGTERM or SIGHUP, then save what changed,
    recording the endpoint for other commands meanwhile (they use this server and leave the state to it)."""
    if _running_endpoint(layout) is not None:
        raise EmbeddedAwsError(f"an embedded AWS already runs (see {layout.endpoint_file})")
    _check_port_free(port)
    stopped = threading.Event()
    with _locked(layout), _restored_state(layout.aws_state_file):
        server = _started_server(port)
        endpoint = Endpoint(server.url(), region, layout.aws_state_file)
        layout.endpoint_file.write_text(json.dumps({"url": endpoint.url, "region": region, "pid": os.getpid()}))
        for signum in STOP_SIGNALS:
            signal.signal(signum, lambda *_: stopped.set())
        try:
            on_ready(endpoint)
            stopped.wait()
        finally:
            layout.endpoint_file.unlink(missing_ok=True)
            server.stop()
