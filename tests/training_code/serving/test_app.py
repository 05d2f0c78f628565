"""The ASGI application in process: micro-batching, the body limit and server-side failures, without sockets."""

from __future__ import annotations

import asyncio
import json
import threading

import numpy as np
import pytest

from tests.training_code.serving.conftest import TrainedModel
from training_code.contract import CSV, EXECUTION_PARAMETERS_PATH, INVOCATIONS_PATH, JSON, PING_PATH
from training_code.serving.app import MEGABYTE, InferenceApp, MicroBatcher, execution_parameters
from training_code.serving.predictor import Predictor


class CountingPredictor:
    """A predictor that records the number of rows of each forward pass; optionally fails."""

    def __init__(self, predictor: Predictor, fail: bool = False) -> None:
        self.predictor = predictor
        self.fail = fail
        self.passes: list[int] = []
        self.encoding = predictor.encoding
        self.classes = predictor.classes

    def logits(self, features: np.ndarray) -> np.ndarray:
        self.passes.append(len(features))
        if self.fail:
            raise FloatingPointError("the forward pass broke")
        return self.predictor.logits(features)


@pytest.fixture(scope="module")
def predictor(trained_model: TrainedModel) -> Predictor:
    return Predictor.load(trained_model.model_dir)


def test_requests_waiting_together_share_one_forward_pass(predictor: Predictor, trained_model: TrainedModel) -> None:
    counting = CountingPredictor(predictor)
    batcher = MicroBatcher(counting)
    features = trained_model.rows.features
    requests = [features[start : start + size] for start, size in [(0, 1), (1, 5), (6, 2), (8, 17), (25, 1)]]

    async def all_at_once() -> list[np.ndarray]:
        return await asyncio.gather(*(batcher.logits(rows) for rows in requests))

    answers = asyncio.run(all_at_once())

    assert counting.passes == [sum(len(rows) for rows in requests)]
    for rows, answer in zip(requests, answers, strict=True):
        assert answer.shape == (len(rows), len(predictor.classes))
        np.testing.assert_allclose(answer, predictor.logits(rows), rtol=0, atol=1e-5)
    assert batcher.waiting == []


def test_requests_one_after_another_get_a_pass_each(predictor: Predictor, trained_model: TrainedModel) -> None:
    counting = CountingPredictor(predictor)
    batcher = MicroBatcher(counting)
    features = trained_model.rows.features

    async def one_by_one() -> list[np.ndarray]:
        return [await batcher.logits(features[index : index + 2]) for index in range(3)]

    answers = asyncio.run(one_by_one())

    assert counting.passes == [2, 2, 2]
    for index, answer in enumerate(answers):
        np.testing.assert_allclose(answer, predictor.logits(features[index : index + 2]), rtol=0, atol=1e-5)


def test_a_failed_forward_pass_fails_every_waiting_request(predictor: Predictor, trained_model: TrainedModel) -> None:
    batcher = MicroBatcher(CountingPredictor(predictor, fail=True))
    features = trained_model.rows.features

    async def all_at_once() -> list[object]:
        return await asyncio.gather(*(batcher.logits(features[:3]) for _ in range(4)), return_exceptions=True)

    outcomes = asyncio.run(all_at_once())

    assert all(isinstance(outcome, FloatingPointError) for outcome in outcomes)
    assert batcher.waiting == []


async def call(app, method: str, path: str, chunks: list[bytes] = (), headers: dict[str, str] | None = None):
    """One request through the ASGI app: (status, headers, body, number of body messages the app read)."""
    messages = [{"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1} for index, chunk in
                enumerate(chunks or [b""])]  # fmt: skip
    read = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal read
        read += 1
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()],
    }
    await app(scope, receive, send)
    assert [message["type"] for message in sent] == ["http.response.start", "http.response.body"]
    return sent[0]["status"], dict(sent[0]["headers"]), sent[1]["body"], read


def csv_request(trained_model: TrainedModel, indices: list[int]) -> bytes:
    return ("\n".join(trained_model.rows.csv_lines(indices)) + "\n").encode()


def test_concurrent_invocations_are_batched_and_answered_in_their_order(
    predictor: Predictor, trained_model: TrainedModel
) -> None:
    counting = CountingPredictor(predictor)
    app = InferenceApp(counting, max_body_bytes=1 << 20, workers=1)
    selections = [[0], [1, 2, 3], [4, 5], list(range(6, 30)), [30]]

    async def all_at_once():
        return await asyncio.gather(
            *(
                call(app, "POST", INVOCATIONS_PATH, [csv_request(trained_model, chosen)], {"Content-Type": CSV})
                for chosen in selections
            )
        )

    answers = asyncio.run(all_at_once())

    assert counting.passes == [sum(len(chosen) for chosen in selections)]
    for chosen, (status, headers, body, _) in zip(selections, answers, strict=True):
        assert status == 200 and headers[b"content-type"] == CSV.encode()
        assert body.decode().splitlines() == trained_model.rows.reference_labels(chosen)


def test_a_failed_forward_pass_is_a_500_json_answer(predictor: Predictor, trained_model: TrainedModel) -> None:
    app = InferenceApp(CountingPredictor(predictor, fail=True), max_body_bytes=1 << 20)

    status, headers, body, _ = asyncio.run(
        call(app, "POST", INVOCATIONS_PATH, [csv_request(trained_model, [0])], {"Content-Type": CSV})
    )

    assert status == 500 and headers[b"content-type"] == JSON.encode()
    assert "error" in json.loads(body)
    # The exception text stays in the server log.
    assert b"broke" not in body


def test_a_declared_length_over_the_limit_is_refused_before_reading(predictor: Predictor) -> None:
    app = InferenceApp(predictor, max_body_bytes=1000)
    headers = {"Content-Type": CSV, "Content-Length": "1001"}

    status, _, body, read = asyncio.run(call(app, "POST", INVOCATIONS_PATH, [b"1" * 1001], headers))

    assert status == 413 and read == 0
    assert "1000" in json.loads(body)["error"]


def test_a_streamed_body_over_the_limit_is_413(predictor: Predictor, trained_model: TrainedModel) -> None:
    app = InferenceApp(predictor, max_body_bytes=1000)
    line = csv_request(trained_model, list(range(10)))
    chunks = [line[:400], line[400:800], line[800:1001], line[1001:]]
    assert len(line) > 1001

    status, _, body, read = asyncio.run(call(app, "POST", INVOCATIONS_PATH, chunks, {"Content-Type": CSV}))

    assert status == 413 and read == 3
    assert "error" in json.loads(body)


def test_a_streamed_body_is_joined(predictor: Predictor, trained_model: TrainedModel) -> None:
    app = InferenceApp(predictor, max_body_bytes=1 << 20)
    body = csv_request(trained_model, [0, 1, 2])
    chunks = [body[index : index + 7] for index in range(0, len(body), 7)]

    status, _, answer, read = asyncio.run(call(app, "POST", INVOCATIONS_PATH, chunks, {"Content-Type": CSV}))

    assert status == 200 and read == len(chunks)
    assert answer.decode().splitlines() == trained_model.rows.reference_labels([0, 1, 2])


def test_a_client_that_disconnects_mid_body_gets_no_prediction(predictor: Predictor, trained_model: TrainedModel):
    counting = CountingPredictor(predictor)
    app = InferenceApp(counting, max_body_bytes=1 << 20)
    body = csv_request(trained_model, [0])
    messages = [{"type": "http.request", "body": body[:10], "more_body": True}, {"type": "http.disconnect"}]
    sent: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0)

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": INVOCATIONS_PATH, "headers": [(b"content-type", b"text/csv")]}
    asyncio.run(app(scope, receive, send))

    assert counting.passes == []
    assert 400 <= sent[0]["status"] < 500


def test_other_scopes_are_ignored(predictor: Predictor) -> None:
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(InferenceApp(predictor, 1000)({"type": "lifespan"}, None, send))
    assert sent == []


def test_ping_and_execution_parameters(predictor: Predictor) -> None:
    app = InferenceApp(predictor, max_body_bytes=3 * (1 << 20), workers=5)

    status, _, body, _ = asyncio.run(call(app, "GET", PING_PATH))
    assert (status, body) == (200, b"")
    status, _, body, _ = asyncio.run(call(app, "GET", EXECUTION_PARAMETERS_PATH))
    assert status == 200
    assert json.loads(body) == {"MaxConcurrentTransforms": 5, "BatchStrategy": "MULTI_RECORD", "MaxPayloadInMB": 3}


# Large (asynchronous) bodies: one at a time per worker, so a worker's memory holds at most one of them.


async def traced_call(app, name: str, body: bytes, trace: list[str], chunk: int = 1 << 20) -> int:
    """A request with Content-Length, sent in chunks; records when the app reads its body and when it answers."""
    chunks = [body[start : start + chunk] for start in range(0, len(body), chunk)]
    messages = [
        {"type": "http.request", "body": part, "more_body": i < len(chunks) - 1} for i, part in enumerate(chunks)
    ]
    status = 0

    async def receive() -> dict:
        trace.append(f"{name} reads")
        await asyncio.sleep(0)  # another request may run between two chunks
        return messages.pop(0)

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        else:
            trace.append(f"{name} answered")

    headers = [(b"content-type", CSV.encode()), (b"content-length", str(len(body)).encode())]
    await app({"type": "http", "method": "POST", "path": INVOCATIONS_PATH, "headers": headers}, receive, send)
    return status


def trace_of_two(predictor: Predictor, trained_model: TrainedModel, size: int) -> list[str]:
    app = InferenceApp(predictor, max_body_bytes=64 << 20)
    line = (trained_model.rows.csv_lines([0])[0] + "\n").encode()
    body = line * (size // len(line))
    trace: list[str] = []

    async def both() -> list[int]:
        return await asyncio.gather(traced_call(app, "first", body, trace), traced_call(app, "second", body, trace))

    assert asyncio.run(both()) == [200, 200]
    return trace


def test_large_bodies_are_read_and_answered_one_at_a_time(predictor: Predictor, trained_model: TrainedModel) -> None:
    trace = trace_of_two(predictor, trained_model, size=7 << 20)

    first_answered = trace.index("first answered")
    assert "second reads" not in trace[:first_answered]
    assert trace[-1] == "second answered"


def test_small_bodies_are_read_together(predictor: Predictor, trained_model: TrainedModel) -> None:
    trace = trace_of_two(predictor, trained_model, size=3 << 20)

    assert "second reads" in trace[: trace.index("first answered")]


def test_a_large_body_without_length_waits_its_turn_once_it_grows_large(
    predictor: Predictor, trained_model: TrainedModel
) -> None:
    app = InferenceApp(predictor, max_body_bytes=64 << 20)
    line = (trained_model.rows.csv_lines([0])[0] + "\n").encode()
    large, small = line * ((9 << 20) // len(line)), line * 10
    trace: list[str] = []

    async def chunked(name: str, body: bytes) -> int:
        chunks = [body[start : start + (1 << 20)] for start in range(0, len(body), 1 << 20)]
        messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]

        async def receive() -> dict:
            trace.append(f"{name} reads")
            await asyncio.sleep(0)
            return messages.pop(0)

        async def send(message: dict) -> None:
            if message["type"] == "http.response.body":
                trace.append(f"{name} answered")

        scope = {
            "type": "http",
            "method": "POST",
            "path": INVOCATIONS_PATH,
            "headers": [(b"content-type", b"text/csv")],
        }
        await app(scope, receive, send)
        return 0

    async def scenario() -> None:
        holder = asyncio.create_task(traced_call(app, "holder", large, trace))
        await asyncio.sleep(0)
        await asyncio.gather(holder, chunked("unsized", large), chunked("small", small))

    asyncio.run(scenario())

    holder_answered = trace.index("holder answered")
    unsized_reads = [index for index, event in enumerate(trace) if event == "unsized reads"]
    # It reads up to the large-body size while the holder works, then waits; the small one never waits.
    assert unsized_reads[0] < holder_answered < unsized_reads[-1]
    assert trace.index("small answered") < holder_answered


# Health never waits for inference: a worker's compute thread does the work, the event loop answers /ping.


class GatedPredictor(CountingPredictor):
    """A predictor whose forward pass on the compute thread waits until the test opens the gate."""

    def __init__(self, predictor: Predictor) -> None:
        super().__init__(predictor)
        self.started = threading.Event()
        self.gate = threading.Event()

    def logits(self, features: np.ndarray) -> np.ndarray:
        if threading.current_thread() is not threading.main_thread():
            self.started.set()
            assert self.gate.wait(timeout=30), "the test never opened the gate"
        return super().logits(features)


async def until_computing(gated: GatedPredictor) -> None:
    for _ in range(5000):
        if gated.started.is_set():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("no forward pass started on a thread other than the event loop's")


def rows_body(trained_model: TrainedModel, size: int) -> bytes:
    line = (trained_model.rows.csv_lines([0])[0] + "\n").encode()
    return line * max(1, size // len(line))


def test_ping_answers_while_a_large_request_is_being_computed(predictor: Predictor, trained_model: TrainedModel):
    gated = GatedPredictor(predictor)
    app = InferenceApp(gated, max_body_bytes=1 << 20)
    body = rows_body(trained_model, 64 * 1024)

    async def scenario() -> tuple[int, list[str]]:
        order: list[str] = []
        invocation = asyncio.create_task(call(app, "POST", INVOCATIONS_PATH, [body], {"Content-Type": CSV}))
        await until_computing(gated)
        status, _, ping_body, _ = await call(app, "GET", PING_PATH)
        order.append("ping answered")
        gated.gate.set()
        await invocation
        order.append("invocation answered")
        return status, order

    status, order = asyncio.run(scenario())
    assert status == 200 and order == ["ping answered", "invocation answered"]


def test_a_full_queue_is_refused_at_once_with_503_and_retry_after(predictor: Predictor, trained_model: TrainedModel):
    gated = GatedPredictor(predictor)
    app = InferenceApp(gated, max_body_bytes=1 << 20, max_queued=1)
    body = rows_body(trained_model, 64 * 1024)

    async def scenario():
        first = asyncio.create_task(call(app, "POST", INVOCATIONS_PATH, [body], {"Content-Type": CSV}))
        await until_computing(gated)
        refused = await call(app, "POST", INVOCATIONS_PATH, [body], {"Content-Type": CSV})
        small = await call(app, "POST", INVOCATIONS_PATH, [csv_request(trained_model, [0])], {"Content-Type": CSV})
        gated.gate.set()
        return await first, refused, small

    first, refused, small = asyncio.run(scenario())
    assert first[0] == 200
    status, headers, body_bytes, _ = refused
    assert (status, headers[b"retry-after"]) == (503, b"1")
    assert "busy" in json.loads(body_bytes)["error"]
    assert small[0] == 200, "a small request is answered on the event loop, without waiting in the queue"


@pytest.mark.parametrize("workers", [1, 2, 7, 40, 150])
@pytest.mark.parametrize("limit_mb", [1, 6, 100, 1024])
def test_execution_parameters_never_exceed_what_create_transform_job_accepts(workers: int, limit_mb: int) -> None:
    parameters = execution_parameters(workers, limit_mb * MEGABYTE)
    payload_mb, concurrency = parameters["MaxPayloadInMB"], parameters["MaxConcurrentTransforms"]
    assert 1 <= payload_mb <= min(limit_mb, 100)
    assert 1 <= concurrency <= workers and payload_mb * concurrency <= 100
    assert parameters["BatchStrategy"] == "MULTI_RECORD"


def test_without_accept_the_answer_is_in_the_default_type(predictor: Predictor, trained_model: TrainedModel):
    app = InferenceApp(predictor, max_body_bytes=1 << 20, default_accept=JSON)
    status, headers, body, _ = asyncio.run(
        call(app, "POST", INVOCATIONS_PATH, [csv_request(trained_model, [0])], {"Content-Type": CSV})
    )
    assert status == 200 and headers[b"content-type"] == JSON.encode()
    assert json.loads(body)["predictions"][0]["label"] == trained_model.rows.reference_labels([0])[0]
    status, headers, _, _ = asyncio.run(
        call(app, "POST", INVOCATIONS_PATH, [csv_request(trained_model, [0])], {"Content-Type": CSV, "Accept": CSV})
    )
    assert headers[b"content-type"] == CSV.encode()
