"""Training benchmark: the default configuration on the sample data, and the training loop's throughput.

    .venv/bin/python benchmarks/train_benchmark.py [--output benchmarks/results/train.json]

1. End to end as a user runs it: sample CSV -> preprocess -> `python -m training_code.train` (defaults) ->
   evaluate on the test split. Goal: test accuracy >= 95% in under 60 s of training wall time on 2 CPU cores.
2. Throughput of the training loop the script uses (data resident on the device, batches by index) against a
   naive per-batch DataLoader loop of the same model, measured in the same run on the same device. Goal on an
   NVIDIA GPU: >= 5x. Both loops are timed after a warm-up epoch.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from pipelines.sample_data import write_digits_csv  # noqa: E402
from pipelines.steps.evaluate import evaluate  # noqa: E402
from pipelines.steps.preprocess import preprocess  # noqa: E402
from training_code.data import Scaling, class_labels, encode_labels, read_directory  # noqa: E402
from training_code.hyperparameters import Hyperparameters  # noqa: E402
from training_code.model import MLP, ModelConfig  # noqa: E402
from training_code.optimizers import build_optimizer  # noqa: E402
from training_code.train import MixedPrecision, PreparedData, Workers, train_one_epoch  # noqa: E402

THROUGHPUT_REPLICAS = 40
TIMED_EPOCHS = 3


def end_to_end(workdir: Path) -> dict:
    write_digits_csv(workdir / "raw" / "digits.csv")
    report = preprocess(workdir / "raw", workdir / "splits", "label", validation_ratio=0.15, test_ratio=0.15, seed=0)
    started = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable, "-m", "training_code.train",
            "--train", str(workdir / "splits" / "train"),
            "--validation", str(workdir / "splits" / "validation"),
            "--model-dir", str(workdir / "model"),
            "--checkpoint-dir", str(workdir / "checkpoints"),
            "--failure-file", str(workdir / "failure"),
        ],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=True,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )  # fmt: skip
    training_seconds = time.perf_counter() - started
    evaluation = evaluate(workdir / "model", workdir / "splits" / "test", workdir / "evaluation")
    metadata = json.loads((workdir / "model" / "model.json").read_text())
    accuracy = evaluation["multiclass_classification_metrics"]["accuracy"]["value"]
    return {
        "rows": report["rows"],
        "duplicates_removed": report["duplicates_removed"],
        "training_wall_seconds": round(training_seconds, 2),
        "epochs_run": len(metadata["history"]),
        "best_epoch": metadata["best_epoch"],
        "test_accuracy": round(accuracy, 4),
        "goal": "test_accuracy >= 0.95 and training_wall_seconds < 60",
        "goal_met": accuracy >= 0.95 and training_seconds < 60,
        "final_log_line": next(line for line in result.stdout.splitlines() if line.startswith("final ")),
    }


def throughput(splits: Path, device: torch.device) -> dict:
    params = Hyperparameters()
    table = read_directory(splits / "train", "label")
    scaling = Scaling.fit(table)
    features = torch.from_numpy(scaling.apply(table.features)).repeat(THROUGHPUT_REPLICAS, 1)
    classes = class_labels(table.labels)
    labels = torch.from_numpy(encode_labels(table, classes, "label")).repeat(THROUGHPUT_REPLICAS)
    config = ModelConfig(features.shape[1], params.hidden_sizes, len(classes), params.activation, params.dropout)

    def fresh() -> tuple[MLP, torch.optim.Optimizer]:
        torch.manual_seed(0)
        model = MLP(config).to(device)
        return model, build_optimizer(params.optimizer, model.parameters(), params.learning_rate, 0.9, 0.0)

    def timed(run_epoch) -> float:
        run_epoch()
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        for _ in range(TIMED_EPOCHS):
            run_epoch()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return len(labels) * TIMED_EPOCHS / (time.perf_counter() - started)

    model, optimizer = fresh()
    precision = MixedPrecision(params.mixed_precision, device)
    workers = Workers(world_size=1, rank=0, device=device)
    data = PreparedData(scaling, (), features.to(device), labels.to(device), features[:1], labels[:1])
    sampler = DistributedSampler(range(len(labels)), num_replicas=1, rank=0, shuffle=True, seed=0)
    ours = timed(lambda: train_one_epoch(model, optimizer, precision, data, sampler, params.batch_size, workers))

    model, optimizer = fresh()
    loader = DataLoader(TensorDataset(features, labels), batch_size=params.batch_size, shuffle=True)

    def naive_epoch() -> None:
        model.train()
        for batch_features, batch_labels in loader:
            batch_features, batch_labels = batch_features.to(device), batch_labels.to(device)
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(batch_features), batch_labels)
            loss.backward()
            optimizer.step()
            loss.item()

    naive = timed(naive_epoch)
    return {
        "device": str(device),
        "rows_per_epoch": len(labels),
        "batch_size": params.batch_size,
        "device_resident_rows_per_second": round(ours),
        "naive_dataloader_rows_per_second": round(naive),
        "speedup": round(ours / naive, 2),
        "goal": ">= 5x on an NVIDIA GPU" if device.type == "cuda" else "none on CPU (the GPU goal needs a GPU)",
    }


def main() -> None:
    output = Path(sys.argv[sys.argv.index("--output") + 1]) if "--output" in sys.argv else None
    output = output or PROJECT_ROOT / "benchmarks" / "results" / "train.json"
    with tempfile.TemporaryDirectory() as workdir:
        results = {
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "torch": torch.__version__,
                "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            },
            "end_to_end_cpu": end_to_end(Path(workdir)),
            "throughput": [throughput(Path(workdir) / "splits", torch.device("cpu"))],
        }
        if torch.cuda.is_available():
            results["throughput"].append(throughput(Path(workdir) / "splits", torch.device("cuda")))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=1))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
