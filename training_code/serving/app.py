"""The ASGI application of the hosting contract: /ping, /invocations and /execution-parameters.

Plain ASGI on uvicorn (httptools parses HTTP): three routes need no framework, and each request costs microseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from training_code.contract import (
    DEFAULT_MAX_PAYLOAD_MB,
    EXECUTION_PARAMETERS_PATH,
    INVOCATIONS_PATH,
    PING_PATH,
)
from training_code.serving import payload
from training_code.serving.predictor import Predictor

# The server process hands its settings to each worker process through these variables.
MODEL_DIR_SETTING = "MLOPS_SERVING_MODEL_DIR"
MAX_BODY_SETTING = "MLOPS_SERVING_MAX_BODY_BYTES"
WORKERS_SETTING = "MLOPS_SERVING_WORKERS"
MEGABYTE = 1024 * 1024
JSON_HEADERS = [(b"content-type", b"application/json")]
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


class InferenceApp:
    def __init__(self, predictor: Predictor, max_body_bytes: int, workers: int = 1) -> None:
        self.predictor = predictor
        self.batcher = MicroBatcher(predictor)
        self.schema = payload.Schema(predictor.feature_names, predictor.label_column)
        self.max_body_bytes = max_body_bytes
        self.large_bodies = asyncio.Lock()
        self.execution_parameters = json.dumps(
            {
                "MaxConcurrentTransforms": workers,
                "BatchStrategy": "MULTI_RECORD",
                "MaxPayloadInMB": max(1, max_body_bytes // MEGABYTE),
            }
        ).encode()

    async def __call__(self, scope: dict, receive, send) -> None:
        if scope["type"] != "http":
            return
        route = (scope["method"], scope["path"])
        if route == ("GET", PING_PATH):
            await _respond(send, 200, b"", [])
        elif route == ("POST", INVOCATIONS_PATH):
            await self._invoke(scope, receive, send)
        elif route == ("GET", EXECUTION_PARAMETERS_PATH):
            await _respond(send, 200, self.execution_parameters, JSON_HEADERS)
        elif scope["path"] in (PING_PATH, INVOCATIONS_PATH, EXECUTION_PARAMETERS_PATH):
            allowed = "POST" if scope["path"] == INVOCATIONS_PATH else "GET"
            error = payload.PayloadError(f"{scope['method']} {scope['path']}: use {allowed}", 405)
            await _respond(send, 405, error.body(), [*JSON_HEADERS, (b"allow", allowed.encode())])
        else:
            error = payload.PayloadError(f"no route {scope['path']}; the routes are {PING_PATH} and {INVOCATIONS_PATH}")
            await _respond(send, 404, error.body(), JSON_HEADERS)

    async def _invoke(self, scope: dict, receive, send) -> None:
        headers = dict(scope["headers"])
        async with contextlib.AsyncExitStack() as large_body_turn:
            try:
                content_type = payload.request_content_type(_header(headers, b"content-type"))
                accept = payload.response_content_type(_header(headers, b"accept"), content_type)
                body = await self._read_body(headers, receive, large_body_turn)
                features = payload.parse(body, content_type, self.schema)
                del body
            except payload.PayloadError as error:
                await _respond(send, error.status, error.body(), JSON_HEADERS)
                return
            try:
                answer = payload.render(await self.batcher.logits(features), self.predictor.classes, accept)
            except Exception:
                log.exception("prediction failed for %d rows", len(features))
                await _respond(send, 500, PREDICTION_FAILED, JSON_HEADERS)
                return
            await _respond(send, 200, answer, [(b"content-type", accept.encode())])

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
                raise payload.PayloadError("the client disconnected before sending the whole body")
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

    def _too_large(self, size: int) -> payload.PayloadError:
        return payload.PayloadError(f"the body ({size} bytes or more) exceeds the limit of {self.max_body_bytes}", 413)


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
    )
