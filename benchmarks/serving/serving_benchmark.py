"""Serving benchmark: our inference server against a Flask + gunicorn baseline serving the same model.

    .venv/bin/python benchmarks/serving/serving_benchmark.py [--model-dir DIR] [--duration 8] [--rounds 3]

Needs wrk (Debian: apt-get install wrk). Trains the sample model (64-256-256-10 MLP on the digits) unless
--model-dir gives one. Both servers run on loopback with one worker per core and are driven by the same wrk
command (one thread, 16 connections): one-row CSV requests, then 100-row CSV batches. Rounds alternate between
the servers so that machine noise hits both; the medians are reported. Cold start is process start to the first
200 on /ping. Goals: >= 3x the baseline's requests/s on one-row requests with p99 <= 5 ms; cold start <= 1.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(PROJECT_ROOT))

from pipelines.sample_data import write_digits_csv  # noqa: E402
from pipelines.steps.preprocess import preprocess  # noqa: E402
from training_code.contract import CSV, PING_PATH  # noqa: E402

HERE = Path(__file__).resolve().parent
WRK_SCRIPT = HERE / "wrk_report.lua"
CONNECTIONS = 16
# One wrk thread keeps 16 connections busy at well over 10,000 requests/s; on two cores a second thread would only
# take CPU from the server under test (measured here: p99 about 1.5 ms higher for both servers).
WRK_THREADS = 1
BATCH_ROWS = 100
GOAL_SPEEDUP, GOAL_P99_MS, GOAL_COLD_START_S = 3.0, 5.0, 1.5
COLD_START_REPEATS = 5


@dataclass(frozen=True)
class ServerCommand:
    name: str
    argv: list[str]
    env: dict[str, str]


def our_server(model_dir: Path, port: int, workers: int) -> ServerCommand:
    argv = [sys.executable, "-m", "training_code.serving", "serve", "--model-dir", str(model_dir)]
    return ServerCommand("ours (uvicorn, numpy)", [*argv, "--port", str(port), "--workers", str(workers)], {})


def baseline_server(model_dir: Path, port: int, workers: int) -> ServerCommand:
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    argv = [gunicorn, "--workers", str(workers), "--bind", f"127.0.0.1:{port}", "benchmarks.serving.baseline_app:app"]
    return ServerCommand("baseline (Flask + gunicorn, torch)", argv, {"BASELINE_MODEL_DIR": str(model_dir)})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers_ping(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{PING_PATH}", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@contextmanager
def running(command: ServerCommand, port: int) -> Iterator[float]:
    """Starts the server; yields the seconds from process start to the first 200 on /ping."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command.argv,
        cwd=PROJECT_ROOT,
        env={**os.environ, **command.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while not answers_ping(port):
            if process.poll() is not None:
                raise RuntimeError(f"{command.name} exited with {process.returncode}: {process.stderr.read()[-2000:]}")
            if time.perf_counter() - started > 60:
                raise RuntimeError(f"{command.name} did not answer {PING_PATH} within 60 s")
            time.sleep(0.005)
        yield time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(timeout=30)


def drive(port: int, body: Path, seconds: int) -> dict:
    result = subprocess.run(
        [
            "wrk", f"-t{WRK_THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency",
            "-s", str(WRK_SCRIPT), f"http://127.0.0.1:{port}/invocations",
        ],
        env={**os.environ, "WRK_BODY": str(body), "WRK_CONTENT_TYPE": CSV},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))
    figures = json.loads(line.removeprefix("RESULT "))
    if figures["non_2xx"] or figures["socket_errors"]:
        raise RuntimeError(f"port {port}: {figures['non_2xx']} non-2xx answers, {figures['socket_errors']} errors")
    figures["requests_per_second"] = figures["requests"] / figures["seconds"]
    return figures


def train_sample_model(workdir: Path) -> Path:
    write_digits_csv(workdir / "raw" / "digits.csv")
    preprocess(workdir / "raw", workdir / "splits", "label", validation_ratio=0.15, test_ratio=0.15, seed=0)
    subprocess.run(
        [
            sys.executable, "-m", "training_code.train",
            "--train", str(workdir / "splits" / "train"),
            "--validation", str(workdir / "splits" / "validation"),
            "--model-dir", str(workdir / "model"),
            "--checkpoint-dir", str(workdir / "checkpoints"),
            "--failure-file", str(workdir / "failure"),
            "--hidden-sizes", "256,256",
        ],
        cwd=PROJECT_ROOT, check=True, capture_output=True, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )  # fmt: skip
    return workdir / "model"


def request_bodies(model_dir: Path, workdir: Path) -> dict[str, Path]:
    """One-row and 100-row CSV bodies (features only) drawn from rows the model expects."""
    metadata = json.loads((model_dir / "model.json").read_text())
    width = len(metadata["feature_names"])
    digits = workdir / "digits.csv"
    write_digits_csv(digits)
    rows = [",".join(line.split(",")[:width]) for line in digits.read_text().splitlines()[1 : 1 + BATCH_ROWS]]
    bodies = {"one_row": workdir / "one_row.csv", "batch_100": workdir / "batch_100.csv"}
    bodies["one_row"].write_text(rows[0])
    bodies["batch_100"].write_text("\n".join(rows) + "\n")
    return bodies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, help="a model artifact directory; default: train the sample model")
    parser.add_argument("--duration", type=int, default=8, help="seconds of load per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--output", type=Path, default=PROJECT_ROOT / "benchmarks" / "results" / "serving.json")
    arguments = parser.parse_args()
    if shutil.which("wrk") is None:
        print("error: wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        model_dir = arguments.model_dir or train_sample_model(workdir)
        bodies = request_bodies(model_dir, workdir)
        factories = {"ours": our_server, "baseline": baseline_server}

        cold_starts: dict[str, list[float]] = {name: [] for name in factories}
        for _ in range(COLD_START_REPEATS):
            for name, factory in factories.items():
                port = free_port()
                with running(factory(model_dir, port, arguments.workers), port) as seconds:
                    cold_starts[name].append(seconds)

        loads: dict[str, dict[str, list[dict]]] = {name: {body: [] for body in bodies} for name in factories}
        ports = {name: free_port() for name in factories}
        commands = {name: factory(model_dir, ports[name], arguments.workers) for name, factory in factories.items()}
        with running(commands["ours"], ports["ours"]), running(commands["baseline"], ports["baseline"]):
            for name in factories:
                drive(ports[name], bodies["one_row"], 1)
            for _ in range(arguments.rounds):
                for body_name, body in bodies.items():
                    for name in factories:
                        loads[name][body_name].append(drive(ports[name], body, arguments.duration))

    summary = summarize(loads, cold_starts, commands)
    report(summary)
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(json.dumps(summary, indent=1))
    print(f"\nwrote {arguments.output}")
    return 0


def summarize(loads: dict, cold_starts: dict, commands: dict[str, ServerCommand]) -> dict:
    def median(runs: list[dict], key: str) -> float:
        return statistics.median(run[key] for run in runs)

    results = {
        name: {
            "server": commands[name].name,
            "cold_start_s": {"median": statistics.median(cold_starts[name]), "max": max(cold_starts[name])},
            **{
                body: {
                    "requests_per_second": median(runs, "requests_per_second"),
                    "rows_per_second": median(runs, "requests_per_second") * (BATCH_ROWS if body == "batch_100" else 1),
                    "p50_ms": median(runs, "p50_ms"),
                    "p99_ms": median(runs, "p99_ms"),
                    "runs": runs,
                }
                for body, runs in by_body.items()
            },
        }
        for name, by_body in loads.items()
    }
    ours, baseline = results["ours"], results["baseline"]
    speedups = {
        body: ours[body]["requests_per_second"] / baseline[body]["requests_per_second"] for body in loads["ours"]
    }
    return {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "load": {"generator": "wrk", "threads": WRK_THREADS, "connections": CONNECTIONS},
        "results": results,
        "speedup": speedups,
        "goals": {
            "speedup_one_row >= 3": speedups["one_row"] >= GOAL_SPEEDUP,
            "p99_one_row_ms <= 5": ours["one_row"]["p99_ms"] <= GOAL_P99_MS,
            "cold_start_max_s <= 1.5": ours["cold_start_s"]["max"] <= GOAL_COLD_START_S,
        },
    }


def report(summary: dict) -> None:
    print(f"{'server':<36} {'payload':<10} {'req/s':>9} {'rows/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'cold s':>7}")
    for result in summary["results"].values():
        for body in ("one_row", "batch_100"):
            figures = result[body]
            print(
                f"{result['server']:<36} {body:<10} {figures['requests_per_second']:>9.0f} "
                f"{figures['rows_per_second']:>10.0f} {figures['p50_ms']:>8.2f} {figures['p99_ms']:>8.2f} "
                f"{result['cold_start_s']['median']:>7.2f}"
            )
    print("speedup (ours / baseline, req/s): " + ", ".join(f"{k} {v:.2f}x" for k, v in summary["speedup"].items()))
    for goal, met in summary["goals"].items():
        print(f"goal {goal}: {'met' if met else 'NOT MET'}")


if __name__ == "__main__":
    sys.exit(main())
