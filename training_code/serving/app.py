"""The ASGI application of the hosting contract: /ping, /invocations and /execution-parameters.

Plain ASGI on uvicorn (httptools parses HTTP): three routes need no framework, and each request costs microseconds.
The event loop only moves bytes and answers /ping: a body of more than a few rows is parsed, predicted and rendered
on the worker's compute thread, so that /ping answers within SageMaker's 2 seconds whatever the worker is computing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from training_code.contract import (
    BATCH_VARIABLE,
    DEFAULT_ACCEPT_VARIABLE,
    DEFAULT_MAX_PAYLOAD_MB,
    EXECUTION_PARAMETERS_PATH,
    INVOCATIONS_PATH,
    LINE_CONTENT_TYPES,
    PING_PATH,
    TRANSFORM_PAYLOAD_LIMIT_MB,
)
from training_code.serving import payload
from training_code.serving.answers import Answer
from training_code.serving.errors import PayloadError
from training_code.serving.predictor import Predictor
from training_code.serving.schema import Schema

# The server process hands its settings to each worker process through these variables.
MODEL_DIR_SETTING = "MLOPS_SERVING_MODEL_DIR"
MAX_BODY_SETTING = "MLOPS_SERVING_MAX_BODY_BYTES"
WORKERS_SETTING = "MLOPS_SERVING_WORKERS"
MAX_QUEUED_SETTING = "MLOPS_SERVING_MAX_QUEUED"
MEGABYTE = 1024 * 1024
JSON_HEADERS = [(b"content-type", b"application/json")]
# Bodies up to this size (a few rows) are answered on the event loop, where requests that arrive together share one
# forward pass; larger ones go to the compute thread.
INLINE_BODY_BYTES = 8 * 1024
# How many requests may wait for a worker's compute thread before new ones are refused with a 503 at once.
DEFAULT_MAX_QUEUED = 256
# Bodies above the real-time limit (asynchronous requests, up to 1 GB) are read, parsed and answered one at a time per
# worker: each holds its body and its rows in memory, so a worker holds at most one such body however many arrive.
LARGE_BODY_BYTES = DEFAULT_MAX_PAYLOAD_MB * MEGABYTE
# Input is validated before the forward pass, so a failure there is the server's fault, not the client's.
PREDICTION_FAILED = json.dumps({"error": "prediction failed; see the server log"}).encode()

log = logging.getLogger("training_code.serving")


class MicroBatcher:
    """Runs one forward pass for all requests that are waiting in the same turn of the event loop.

    Under concurrent load a worker finds several requests ready at once; one matrix product for all of them costs
    little more than one for a single row. Nothing waits on a timer: a lone request is computed straight away.
    """

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor
        self.waiting: list[tuple[np.ndarray, asyncio.Future]] = []

    async def logits(self, features: np.ndarray) -> np.ndarray:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self.waiting:
            loop.call_soon(self._run)
        self.waiting.append((features, future))
        return await future

    def _run(self) -> None:
        batch, self.waiting = self.waiting, []
        try:
            logits = self.predictor.logits(np.concatenate([features for features, _ in batch]))
        except Exception as error:
            for _, future in batch:
                if not future.done():
                    future.set_exception(error)
            return
        start = 0
        for features, future in batch:
            if not future.done():
                future.set_result(logits[start : start + len(features)])
            start += len(features)


def execution_parameters(workers: int, max_body_bytes: int) -> dict[str, object]:
    """What batch transform may send: never more than CreateTransformJob accepts (MaxPayloadInMB at most 100, and
    times MaxConcurrentTransforms at most 100), nor more than the server takes."""
    payload_mb = max(1, min(max_body_bytes // MEGABYTE, TRANSFORM_PAYLOAD_LIMIT_MB // max(workers, 1)))
    concurrency = max(1, min(workers, TRANSFORM_PAYLOAD_LIMIT_MB // payload_mb))
    return {"MaxConcurrentTransforms": concurrency, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": payload_mb}


class InferenceApp:
    def __init__(
        self,
        predictor: Predictor,
        max_body_bytes: int,
        workers: int = 1,
        *,
        default_accept: str | None = None,
        batch: bool = False,
        max_queued: int = DEFAULT_MAX_QUEUED,
    ) -> None:
        """`default_accept`: the answer's type for a request without Accept (SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT);
        `batch`: the requests are batch transform mini-batches (SAGEMAKER_BATCH)."""
        self.predictor = predictor
        self.batcher = MicroBatcher(predictor)
        self.schema = Schema(predictor.encoding)
        self.max_body_bytes = max_body_bytes
        self.default_accept = default_accept
        self.batch = batch
        self.max_queued = max_queued
        self.queued = 0
        self.compute = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
        self.large_bodies = asyncio.Lock()
        self.execution_parameters = json.dumps(execution_parameters(workers, max_body_bytes)).encode()

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] != "http":
            return
        route = (scope["method"], scope["path"])
        if route == ("GET", PING_PATH) or route == ("HEAD", PING_PATH):
            await _respond(send, 200, b"", [])
        elif route == ("POST", INVOCATIONS_PATH):
            await self._invoke(scope, receive, send)
        elif route == ("GET", EXECUTION_PARAMETERS_PATH):
            await _respond(send, 200, self.execution_parameters, JSON_HEADERS)
        elif scope["path"] in (PING_PATH, INVOCATIONS_PATH, EXECUTION_PARAMETERS_PATH):
            allowed = {PING_PATH: "GET, HEAD", INVOCATIONS_PATH: "POST"}.get(scope["path"], "GET")
            error = PayloadError(f"{scope['method']} {scope['path']}: use {allowed}", 405)
            await _respond(send, 405, error.body(), [*JSON_HEADERS, (b"allow", allowed.encode())])
        else:
            error = PayloadError(f"no route {scope['path']}; the routes are {PING_PATH} and {INVOCATIONS_PATH}")
            await _respond(send, 404, error.body(), JSON_HEADERS)

    async def _invoke(self, scope: dict, receive, send) -> None:
        headers = dict(scope["headers"])
        async with contextlib.AsyncExitStack() as large_body_turn:
            try:
                content_type = payload.request_content_type(_header(headers, b"content-type"))
                accept = payload.response_content_type(_header(headers, b"accept"), content_type, self.default_accept)
                body = await self._read_body(headers, receive, large_body_turn)
                if len(body) <= INLINE_BODY_BYTES:
                    parsed = payload.parse(body, content_type, self.schema, batch=self.batch)
            except PayloadError as error:
                await _respond(send, error.status, error.body(), JSON_HEADERS)
                return
            if len(body) <= INLINE_BODY_BYTES:
                await self._answer_inline(parsed, accept, send)
            else:
                await self._answer_on_compute_thread(body, content_type, accept, send)

    async def _answer_inline(self, parsed: payload.Parsed, accept: str, send) -> None:
        try:
            logits = await self.batcher.logits(parsed.features) if len(parsed.features) else self._no_logits()
            answer = Answer(self.predictor.classes, self.schema.label_column, accept, rows=len(logits))
            body = answer.head() + answer.piece(logits, _lines_for(parsed, accept)) + answer.tail()
        except Exception:
            log.exception("prediction failed for %d rows", len(parsed.features))
            await _respond(send, 500, PREDICTION_FAILED, JSON_HEADERS)
            return
        await _respond(send, 200, body, [(b"content-type", accept.encode())])

    async def _answer_on_compute_thread(self, body: bytearray, content_type: str, accept: str, send) -> None:
        if self.queued >= self.max_queued:
            busy = PayloadError(f"the server is busy ({self.queued} requests are waiting); retry shortly", 503)
            await _respond(send, 503, busy.body(), [*JSON_HEADERS, (b"retry-after", b"1")])
            return
        loop = asyncio.get_running_loop()
        large = len(body) > LARGE_BODY_BYTES
        self.queued += 1
        try:
            if large:
                pieces = await loop.run_in_executor(self.compute, self._predict, body, content_type, accept)
            else:
                # One hand-over to the compute thread, not two: parse, predict and render there at once.
                rendered = await loop.run_in_executor(self.compute, self._answer_whole, body, content_type, accept)
        except PayloadError as error:
            await _respond(send, error.status, error.body(), JSON_HEADERS)
            return
        except Exception:
            log.exception("prediction failed for a body of %d bytes", len(body))
            await _respond(send, 500, PREDICTION_FAILED, JSON_HEADERS)
            return
        finally:
            self.queued -= 1
        if not large:
            await _respond(send, 200, rendered, [(b"content-type", accept.encode())])
            return
        del body
        answer = Answer(self.predictor.classes, self.schema.label_column, accept, sum(len(p[0]) for p in pieces))
        # A large answer's length is known only once rendered: it goes out in chunks as each piece is rendered.
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", accept.encode())]})
        await send({"type": "http.response.body", "body": answer.head(), "more_body": True})
        for logits, lines in pieces:
            chunk = await loop.run_in_executor(self.compute, answer.piece, logits, lines)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": answer.tail(), "more_body": False})

    def _answer_whole(self, body: bytearray, content_type: str, accept: str) -> bytes:
        pieces = self._predict(body, content_type, accept)
        answer = Answer(self.predictor.classes, self.schema.label_column, accept, sum(len(p[0]) for p in pieces))
        return answer.head() + b"".join(answer.piece(logits, lines) for logits, lines in pieces) + answer.tail()

    def _predict(self, body: bytearray, content_type: str, accept: str) -> list[tuple[np.ndarray, np.ndarray | None]]:
        """On the compute thread: each piece's class scores, and where its lines go. Only the scores of a piece are
        kept, not its rows: a large body's rows exist one piece at a time."""
        predicted = []
        for parsed in payload.parse_pieces(body, content_type, self.schema, batch=self.batch):
            logits = self.predictor.logits(parsed.features) if len(parsed.features) else self._no_logits()
            predicted.append((logits, _lines_for(parsed, accept)))
        return predicted

    async def _read_body(
        self, headers: dict[bytes, bytes], receive, large_body_turn: contextlib.AsyncExitStack
    ) -> bytearray:
        """The body in one buffer: sized by Content-Length up front (no second copy to join chunks), grown as it
        arrives when the client sends none. A large body first waits for its turn (held until it is answered)."""
        declared = headers.get(b"content-length")
        length = int(declared) if declared is not None and declared.isdigit() else None
        if length is not None and length > self.max_body_bytes:
            raise self._too_large(length)
        waiting = True
        if length is not None and length > LARGE_BODY_BYTES:
            await large_body_turn.enter_async_context(self.large_bodies)
            waiting = False
        body = bytearray(length or 0)
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise PayloadError("the client disconnected before sending the whole body")
            chunk = message.get("body", b"")
            end = size + len(chunk)
            if end > self.max_body_bytes:
                raise self._too_large(end)
            if waiting and end > LARGE_BODY_BYTES:
                await large_body_turn.enter_async_context(self.large_bodies)
                waiting = False
            body[size:end] = chunk
            size = end
            more = message.get("more_body", False)
        del body[size:]
        return body

    def _no_logits(self) -> np.ndarray:
        """A body of blank lines (and a header) has no rows to predict; its answer still has its lines."""
        return np.empty((0, len(self.predictor.classes)), dtype=np.float32)

    def _too_large(self, size: int) -> PayloadError:
        return PayloadError(f"the body ({size} bytes or more) exceeds the limit of {self.max_body_bytes}", 413)


def _lines_for(parsed: payload.Parsed, accept: str) -> np.ndarray | None:
    """Where each input line's answer goes, when the answer is line-based too."""
    return parsed.lines if accept in LINE_CONTENT_TYPES else None


def _header(headers: dict[bytes, bytes], name: bytes) -> str | None:
    value = headers.get(name)
    return value.decode("latin-1") if value is not None else None


async def _respond(send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    # With a length, the server frames the body as it is; without one it would switch to chunked encoding.
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def create_app() -> InferenceApp:
    """The worker-process factory: uvicorn imports this in every worker and calls it once."""
    return InferenceApp(
        Predictor.load(Path(os.environ[MODEL_DIR_SETTING])),
        int(os.environ[MAX_BODY_SETTING]),
        int(os.environ[WORKERS_SETTING]),
        default_accept=payload.media_type(os.environ.get(DEFAULT_ACCEPT_VARIABLE)) or None,
        batch=os.environ.get(BATCH_VARIABLE, "").strip().lower() == "true",
        max_queued=int(os.environ.get(MAX_QUEUED_SETTING, DEFAULT_MAX_QUEUED)),
    )
