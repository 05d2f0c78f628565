"""Train the MLP classifier on tabular CSV data: in SageMaker script mode, under torchrun, or on a laptop.

    python -m training_code.train --train DIR --validation DIR --model-dir DIR [--learning-rate 0.001 ...]

Inside SageMaker the directories come from SM_CHANNEL_TRAIN, SM_CHANNEL_VALIDATION and SM_MODEL_DIR, and the
hyperparameters arrive as flags. Every epoch is checkpointed atomically; a restarted job (spot interruption)
resumes from the last checkpoint and ends exactly where an uninterrupted run would.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from training_code import hyperparameters as hp
from training_code.artifact import ModelArtifact
from training_code.checkpoint import load_checkpoint, save_checkpoint
from training_code.contract import (
    DEFAULT_CHECKPOINT_DIR,
    DEFAULT_LABEL_COLUMN,
    DEFAULT_MODEL_DIR,
    ENCODING_FILE,
    MODEL_DIR_VARIABLE,
    TRAIN_CHANNEL,
    TRAINING_FAILURE_FILE,
    TRAINING_JOB_NAME_VARIABLE,
    VALIDATION_CHANNEL,
    WARM_START_CHANNEL,
    channel_variable,
)
from training_code.data import (
    DataError,
    Table,
    check_classification_target,
    class_labels,
    encode_labels,
    read_directory,
)
from training_code.failure import ArgumentParser, run_script
from training_code.features import Encoding, EncodingError, infer_columns
from training_code.initializers import initialize, resolve_scheme
from training_code.metrics import epoch_line, final_line
from training_code.model import MLP, ModelConfig
from training_code.optimizers import build_optimizer

# A dataset this small a fraction of free GPU memory stays on the GPU for the whole run.
DEVICE_RESIDENT_FRACTION = 0.5
EVALUATION_BATCH = 8192


def main(argv: list[str] | None = None) -> None:
    run_script(lambda arguments: train(parse_arguments(arguments)), argv, TRAINING_FAILURE_FILE)


# --- Arguments -----------------------------------------------------------------------------------------------------


def _from_environment(variable: str, default: Path | None = None) -> Path | None:
    value = os.environ.get(variable)
    return Path(value) if value else default


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path, default=_from_environment(channel_variable(TRAIN_CHANNEL)))
    parser.add_argument("--validation", type=Path, default=_from_environment(channel_variable(VALIDATION_CHANNEL)))
    parser.add_argument(
        "--model",
        type=Path,
        default=_from_environment(channel_variable(WARM_START_CHANNEL)),
        help="a previous model artifact (directory or model.tar.gz) to start from instead of a fresh initialization",
    )
    parser.add_argument("--model-dir", type=Path, default=_from_environment(MODEL_DIR_VARIABLE, DEFAULT_MODEL_DIR))
    parser.add_argument(
        "--checkpoint-dir",
        type=Path,
        help=f"where every epoch is checkpointed and an interrupted run resumes (in SageMaker: {DEFAULT_CHECKPOINT_DIR}"
        "/<job name>; elsewhere by default a temporary directory of the run's own)",
    )
    parser.add_argument("--failure-file", type=Path, default=TRAINING_FAILURE_FILE)
    parser.add_argument(
        "--label-column",
        default="",
        help=f"the column that holds the classes (default: Preprocess's, else {DEFAULT_LABEL_COLUMN!r})",
    )
    hp.add_arguments(parser)
    arguments, unknown = parser.parse_known_args(argv)
    # SageMaker adds its own entries, e.g. `_tuning_objective_metric` during tuning; anything else is a mistake.
    unexpected = [token for token in unknown if token.startswith("-") and not token.startswith(("--_", "--sagemaker_"))]
    if unexpected:
        raise ValueError(f"unknown arguments {unexpected}; see --help for the hyperparameters")
    for channel in ("train", "validation"):
        if getattr(arguments, channel) is None:
            raise ValueError(f"no {channel} data: pass --{channel} DIR or set {channel_variable(channel)}")
    return arguments


# --- Process group and device --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workers:
    """This process's place among the training processes that torchrun (or SageMaker) started."""

    world_size: int
    rank: int
    device: torch.device

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_chief(self) -> bool:
        return self.rank == 0

    @classmethod
    def start(cls) -> Workers:
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
        if world_size > 1:
            if device.type == "cuda":
                torch.cuda.set_device(device)
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        return cls(world_size, dist.get_rank() if world_size > 1 else 0, device)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def sum(self, *values: float) -> list[float]:
        if not self.distributed:
            return list(values)
        totals = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(totals)
        return totals.tolist()

    def gather(self, value: Any) -> list[Any]:
        if not self.distributed:
            return [value]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered

    def stop(self) -> None:
        if self.distributed:
            # Rank 0 may still be writing the model: a rank that tears its group down while a peer is busy can
            # abort in gloo's teardown (seen under load), so all ranks leave together.
            dist.barrier()
            dist.destroy_process_group()


def log(workers: Workers, message: str) -> None:
    if workers.is_chief:
        print(message, flush=True)


# --- Data ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedData:
    encoding: Encoding
    classes: tuple[str, ...]
    train_x: torch.Tensor
    train_y: torch.Tensor
    validation_x: torch.Tensor
    validation_y: torch.Tensor


def prepare_data(arguments: argparse.Namespace, warm_start: ModelArtifact | None, device: torch.device) -> PreparedData:
    encoding_file = arguments.train / ENCODING_FILE
    fitted = Encoding.load(encoding_file) if encoding_file.exists() else None
    label_column = arguments.label_column or (fitted.label_column if fitted else DEFAULT_LABEL_COLUMN)
    if fitted and fitted.label_column != label_column:
        raise ValueError(
            f"--label-column {label_column!r}, but the encoding in {encoding_file} was fitted with label column "
            f"{fitted.label_column!r}; drop --label-column or preprocess again"
        )
    train = read_directory(arguments.train, label_column)
    validation = read_directory(arguments.validation, label_column)
    check_classification_target(train)
    if warm_start:
        # The previous weights were learned on the previous encoding; keep it so they mean the same thing.
        encoding, classes = warm_start.encoding, warm_start.classes
    else:
        encoding = fitted or fit_encoding(train, validation)
        classes = class_labels(train.labels)
    if len(classes) < 2:
        raise DataError(f"{train.source}: column {label_column!r} has a single class {classes}; need two")
    storage = _storage_device(train, validation, encoding, device)
    return PreparedData(
        encoding=encoding,
        classes=classes,
        train_x=torch.from_numpy(encoding.transform(train.codes(encoding))).to(storage),
        train_y=torch.from_numpy(encode_labels(train, classes, label_column)).to(storage),
        validation_x=torch.from_numpy(encoding.transform(validation.codes(encoding))).to(storage),
        validation_y=torch.from_numpy(encode_labels(validation, classes, label_column)).to(storage),
    )


def fit_encoding(train: Table, validation: Table) -> Encoding:
    """Without Preprocess's encoding: fitted here on the train split, with the kinds of both splits' columns."""
    if validation.feature_names != train.feature_names:
        raise DataError(f"{validation.source}: columns differ from {train.source}")
    try:
        kinds, may_miss = infer_columns(np.concatenate([train.cells, validation.cells]), train.feature_names)
        return Encoding.fit(train.cells, train.feature_names, train.label_column, kinds, may_miss)
    except EncodingError as error:
        raise train.error(error) from None


def _storage_device(train: Table, validation: Table, encoding: Encoding, device: torch.device) -> torch.device:
    """Keep the data on the GPU when it fits comfortably; otherwise batches are copied over one at a time."""
    if device.type != "cuda":
        return device
    size = (len(train) + len(validation)) * (encoding.width * 4 + 8)
    free, _ = torch.cuda.mem_get_info(device)
    return device if size < DEVICE_RESIDENT_FRACTION * free else torch.device("cpu")


# --- Model ---------------------------------------------------------------------------------------------------------


def build_model(
    params: hp.Hyperparameters, data: PreparedData, warm_start: ModelArtifact | None, warm_start_path: Path | None
) -> MLP:
    config = ModelConfig(
        input_size=data.encoding.width,
        hidden_sizes=params.hidden_sizes,
        num_classes=len(data.classes),
        activation=params.activation,
        dropout=params.dropout,
    )
    model = MLP(config)
    if warm_start is None:
        initialize(model, resolve_scheme(params.weight_init, params.activation))
        return model
    previous = warm_start.model_config
    for name in ("input_size", "hidden_sizes", "num_classes", "activation"):
        if getattr(previous, name) != getattr(config, name):
            raise ValueError(
                f"warm start from {warm_start_path}: the previous model has {name} = {getattr(previous, name)!r} "
                f"but this run has {getattr(config, name)!r}; the shapes must match"
            )
    model.load_state_dict(warm_start.state_dict)
    return model


# --- Training ------------------------------------------------------------------------------------------------------


@dataclass
class Progress:
    """Everything besides weights and optimizer that a resumed run needs to continue exactly."""

    epoch: int = 0
    best_loss: float = float("inf")
    best_accuracy: float = 0.0
    best_epoch: int = 0
    epochs_without_improvement: int = 0
    best_weights: dict[str, torch.Tensor] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)

    def stopped_early(self, patience: int) -> bool:
        return self.epochs_without_improvement >= patience


class MixedPrecision:
    """Autocast (bfloat16 where supported, else float16 with loss scaling) when enabled; a no-op otherwise."""

    def __init__(self, mode: str, device: torch.device) -> None:
        self.enabled = mode == "on" or (mode == "auto" and device.type == "cuda")
        # Native bfloat16 only (Ampere and newer): emulated bfloat16 on a T4 or V100 is slower than float16.
        bfloat16 = device.type == "cpu" or torch.cuda.is_bf16_supported(including_emulation=False)
        self.dtype = torch.bfloat16 if bfloat16 else torch.float16
        self.device_type = device.type
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.enabled and self.dtype == torch.float16)

    def autocast(self) -> torch.autocast:
        return torch.autocast(self.device_type, dtype=self.dtype, enabled=self.enabled)


def train_one_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    precision: MixedPrecision,
    data: PreparedData,
    sampler: DistributedSampler,
    batch_size: int,
    workers: Workers,
) -> float:
    model.train()
    order = torch.tensor(list(sampler), device=data.train_x.device)
    loss_sum, rows = 0.0, 0
    for batch in order.split(batch_size):
        features = data.train_x[batch].to(workers.device, non_blocking=True)
        labels = data.train_y[batch].to(workers.device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        with precision.autocast():
            loss = nn.functional.cross_entropy(model(features), labels)
        precision.scaler.scale(loss).backward()
        precision.scaler.step(optimizer)
        precision.scaler.update()
        loss_sum += loss.item() * len(batch)
        rows += len(batch)
    total_loss, total_rows = workers.sum(loss_sum, rows)
    return total_loss / total_rows


def evaluate(
    model: nn.Module, features: torch.Tensor, labels: torch.Tensor, device: torch.device
) -> tuple[float, float]:
    model.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(labels), EVALUATION_BATCH):
            x = features[start : start + EVALUATION_BATCH].to(device)
            y = labels[start : start + EVALUATION_BATCH].to(device)
            logits = model(x).float()
            loss_sum += nn.functional.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(dim=1) == y).sum().item()
    return loss_sum / len(labels), correct / len(labels)


def checkpoint_directory(root: Path | None, stack: contextlib.ExitStack) -> Path:
    """Inside SageMaker, one subdirectory per training job of --checkpoint-dir (default /opt/ml/checkpoints): the
    trials of a tuning job share the checkpoint S3 prefix, and a spot restart of a job (same name) must find its own
    checkpoint, not another trial's. Elsewhere --checkpoint-dir itself, or by default a directory of this run's own
    that goes when it ends: a run with other hyperparameters must not find this one's checkpoint."""
    job = os.environ.get(TRAINING_JOB_NAME_VARIABLE)
    if job:
        return (root or DEFAULT_CHECKPOINT_DIR) / job
    return root or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mlops-checkpoints-")))


def rng_state(device: torch.device) -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


def resume(
    checkpoint_dir: Path,
    params: hp.Hyperparameters,
    model: MLP,
    optimizer: torch.optim.Optimizer,
    precision: MixedPrecision,
    workers: Workers,
) -> Progress:
    checkpoint = load_checkpoint(checkpoint_dir)
    if checkpoint is None:
        return Progress(best_weights=copy.deepcopy(model.state_dict()))
    differing = {
        name: (value, params.to_dict()[name])
        for name, value in checkpoint["hyperparameters"].items()
        if value != params.to_dict()[name]
    }
    if differing:
        raise ValueError(
            f"the checkpoint in {checkpoint_dir} was written with other hyperparameters "
            f"(checkpoint vs now: {differing}); remove it or choose another --checkpoint-dir"
        )
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    precision.scaler.load_state_dict(checkpoint["scaler"])
    restore_rng_state(checkpoint["rng"][workers.rank], workers.device)
    progress = Progress(**checkpoint["progress"])
    log(workers, f"resuming after epoch {progress.epoch} from {checkpoint_dir}")
    return progress


def train(arguments: argparse.Namespace) -> None:
    with contextlib.ExitStack() as stack:
        run_training(arguments, stack)


def run_training(arguments: argparse.Namespace, stack: contextlib.ExitStack) -> None:
    started = time.perf_counter()
    params = hp.from_arguments(arguments)
    workers = Workers.start()
    torch.manual_seed(params.seed)
    warm_start = ModelArtifact.load(arguments.model) if arguments.model else None
    data = prepare_data(arguments, warm_start, workers.device)
    model = build_model(params, data, warm_start, arguments.model).to(workers.device)
    # Same initial weights on every worker (above); different dropout masks on each (below).
    torch.manual_seed(params.seed + workers.rank)
    optimizer = build_optimizer(
        params.optimizer, model.parameters(), params.learning_rate, params.momentum, params.weight_decay
    )
    precision = MixedPrecision(params.mixed_precision, workers.device)
    checkpoint_dir = checkpoint_directory(arguments.checkpoint_dir, stack)
    progress = resume(checkpoint_dir, params, model, optimizer, precision, workers)
    trained = DistributedDataParallel(model) if workers.distributed else model
    sampler = DistributedSampler(
        range(len(data.train_y)), num_replicas=workers.world_size, rank=workers.rank, shuffle=True, seed=params.seed
    )
    start = (
        f"warm start from {arguments.model}" if warm_start else resolve_scheme(params.weight_init, params.activation)
    )
    log(
        workers,
        f"training on {len(data.train_y)} rows x {len(data.encoding.feature_names)} features ({data.encoding.width} "
        f"inputs), {len(data.classes)} "
        f"classes, {workers.world_size} worker(s) on {workers.device}, data on {data.train_x.device}, "
        f"mixed precision {'on' if precision.enabled else 'off'}, weights: {start}",
    )

    while progress.epoch < params.epochs and not progress.stopped_early(params.patience):
        epoch = progress.epoch + 1
        sampler.set_epoch(epoch)
        train_loss = train_one_epoch(trained, optimizer, precision, data, sampler, params.batch_size, workers)
        validation_loss, validation_accuracy = evaluate(model, data.validation_x, data.validation_y, workers.device)
        log(workers, epoch_line(epoch, train_loss, validation_loss, validation_accuracy))
        progress.history.append(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "validation_loss": validation_loss,
                "validation_accuracy": validation_accuracy,
            }
        )
        if validation_loss < progress.best_loss - params.min_delta:
            progress.best_loss, progress.best_accuracy, progress.best_epoch = (
                validation_loss,
                validation_accuracy,
                epoch,
            )
            progress.best_weights = copy.deepcopy(model.state_dict())
            progress.epochs_without_improvement = 0
        else:
            progress.epochs_without_improvement += 1
        progress.epoch = epoch
        rng_states = workers.gather(rng_state(workers.device))
        if workers.is_chief:
            save_checkpoint(
                checkpoint_dir,
                {
                    "hyperparameters": params.to_dict(),
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scaler": precision.scaler.state_dict(),
                    "rng": rng_states,
                    "progress": vars(progress),
                },
            )
        workers.barrier()

    if progress.stopped_early(params.patience):
        log(workers, f"early stopping after epoch {progress.epoch}: no improvement for {params.patience} epochs")
    model.load_state_dict(progress.best_weights)
    if workers.is_chief:
        ModelArtifact(
            model_config=model.config,
            encoding=data.encoding,
            classes=data.classes,
            hyperparameters=params.to_dict(),
            history=progress.history,
            best_epoch=progress.best_epoch,
            state_dict={name: tensor.cpu() for name, tensor in model.state_dict().items()},
        ).save(arguments.model_dir)
    log(workers, final_line(progress.best_epoch, progress.best_loss, progress.best_accuracy))
    log(workers, f"trained in {time.perf_counter() - started:.1f} s")
    workers.stop()


if __name__ == "__main__":
    main()
