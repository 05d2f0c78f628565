"""The training script in process: optimizers, early stopping, warm start, metric lines, and the failure contract."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from training_code import hyperparameters as hp
from training_code.artifact import ModelArtifact, write_archive
from training_code.data import encode_labels, read_directory
from training_code.metrics import METRIC_DEFINITIONS, epoch_line, parse_metrics
from training_code.optimizers import OPTIMIZERS
from training_code.train import main as train_main

QUICK = ("--epochs", "6", "--patience", "50", "--hidden-sizes", "64")


def validation_loss_of(artifact: ModelArtifact, splits) -> float:
    table = read_directory(splits.validation, "label")
    probabilities = artifact.predict_proba(table.codes(artifact.encoding))
    truth = encode_labels(table, artifact.classes, "label")
    return float(-np.log(probabilities[np.arange(len(truth)), truth]).mean())


LEARNING_RATES = {"sgd": "0.05", "adam": "0.003", "adamw": "0.003", "rmsprop": "0.001", "adagrad": "0.05"}


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_trains(train_in_process, optimizer):
    run = train_in_process(*QUICK, "--optimizer", optimizer, "--learning-rate", LEARNING_RATES[optimizer])
    history = run.history
    assert history[-1]["train_loss"] < history[0]["train_loss"] / 2
    assert max(epoch["validation_accuracy"] for epoch in history) >= 0.85
    assert run.metadata["hyperparameters"]["optimizer"] == optimizer


@pytest.mark.parametrize("activation", ["relu", "tanh", "selu", "sigmoid"])
def test_every_activation_trains_with_its_default_initialization(train_in_process, activation):
    run = train_in_process(
        "--epochs", "10", "--hidden-sizes", "64", "--activation", activation, "--learning-rate", "0.01"
    )  # fmt: skip
    assert max(epoch["validation_accuracy"] for epoch in run.history) >= 0.85


def test_early_stopping_stops_after_patience_and_restores_the_best_epoch(train_in_process, splits):
    # Large, unregularized and fast-learning: validation loss bottoms out early, then overfitting raises it.
    run = train_in_process(
        "--epochs", "60", "--patience", "4", "--hidden-sizes", "256,256", "--dropout", "0",
        "--weight-decay", "0", "--learning-rate", "0.01", "--batch-size", "16",
    )  # fmt: skip
    history = run.history
    losses = [epoch["validation_loss"] for epoch in history]
    best_epoch = run.metadata["best_epoch"]
    assert len(history) < 60, "stopped early"
    assert best_epoch == 1 + int(np.argmin(losses))
    assert len(history) == best_epoch + 4, "stopped exactly `patience` epochs after the best one"
    artifact = ModelArtifact.load(run.model_dir)
    assert validation_loss_of(artifact, splits) == pytest.approx(losses[best_epoch - 1], rel=1e-4)
    assert validation_loss_of(artifact, splits) < losses[-1], "the final weights are the best epoch's, not the last"


def test_min_delta_ignores_improvements_smaller_than_it(train_in_process):
    run = train_in_process(*QUICK, "--patience", "2", "--min-delta", "100")
    assert run.metadata["best_epoch"] == 1
    assert len(run.history) == 3


def test_metric_lines_parse_with_the_regexes_sagemaker_gets(train_in_process, capsys):
    run = train_in_process(*QUICK)
    parsed = parse_metrics(capsys.readouterr().out)
    best = run.history[run.metadata["best_epoch"] - 1]
    assert parsed == {
        "train:loss": [pytest.approx(e["train_loss"], abs=1e-6) for e in run.history],
        "validation:loss": [pytest.approx(e["validation_loss"], abs=1e-6) for e in [*run.history, best]],
        "validation:accuracy": [pytest.approx(e["validation_accuracy"], abs=1e-6) for e in [*run.history, best]],
    }


def test_the_last_objective_value_is_the_saved_models(train_in_process, capsys):
    """SageMaker tuning ranks a trial by the objective's final value: it must describe the weights that were saved."""
    run = train_in_process(
        "--epochs", "60", "--patience", "3", "--hidden-sizes", "256", "--dropout", "0",
        "--weight-decay", "0", "--learning-rate", "0.01", "--batch-size", "16",
    )  # fmt: skip
    history, best_epoch = run.history, run.metadata["best_epoch"]
    assert best_epoch < len(history), "stopped early, so the last epoch is not the best"
    last_objective = parse_metrics(capsys.readouterr().out)["validation:accuracy"][-1]
    assert last_objective == pytest.approx(history[best_epoch - 1]["validation_accuracy"], abs=1e-6)


# Asked for a CUDA device on a machine without one, torch's loss scaler says it disables itself; here that is expected.
@pytest.mark.filterwarnings("ignore:torch.cuda.amp.GradScaler is enabled, but CUDA is not available:UserWarning")
def test_mixed_precision_picks_native_bfloat16_else_float16_with_loss_scaling(monkeypatch):
    from training_code.train import MixedPrecision

    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    emulated_only = MixedPrecision("auto", cuda)
    assert (emulated_only.enabled, emulated_only.dtype) == (True, torch.float16), "T4/V100: fp16, not emulated bf16"
    assert emulated_only.scaler.is_enabled() or not torch.cuda.is_available()
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert MixedPrecision("auto", cuda).dtype == torch.bfloat16
    assert MixedPrecision("off", cuda).enabled is False
    assert MixedPrecision("auto", torch.device("cpu")).enabled is False


def test_metric_regexes_read_every_number_format():
    line = epoch_line(3, 1.5e-7, float("nan"), 1.0)
    assert parse_metrics(line)["train:loss"] == [pytest.approx(1.5e-7, abs=1e-6)]
    assert np.isnan(parse_metrics(line)["validation:loss"][0])
    assert parse_metrics("validation_accuracy=2.5e-03")["validation:accuracy"] == [0.0025]
    assert {definition["Name"] for definition in METRIC_DEFINITIONS} == {
        "train:loss",
        "validation:loss",
        "validation:accuracy",
    }


def test_artifact_is_self_contained(train_in_process, splits):
    run = train_in_process(*QUICK)
    metadata = run.metadata
    assert metadata["feature_names"] == [f"pixel_{i}" for i in range(64)]
    assert metadata["classes"] == [str(digit) for digit in range(10)]
    assert [column["name"] for column in metadata["encoding"]["columns"]] == metadata["feature_names"]
    assert metadata["model_config"] == {
        "input_size": 64,
        "hidden_sizes": [64],
        "num_classes": 10,
        "activation": "relu",
        "dropout": 0.1,
    }
    assert set(metadata["versions"]) == {"python", "torch", "numpy"}
    assert metadata["versions"]["torch"] == torch.__version__
    train = read_directory(splits.train, "label").cells.astype(float)
    means = [column["mean"] for column in metadata["encoding"]["columns"]]
    assert means == pytest.approx(train.mean(axis=0).tolist(), abs=1e-4)


def test_warm_start_continues_from_the_previous_weights(train_in_process, tmp_path):
    previous = train_in_process(*QUICK, "--epochs", "10", "--learning-rate", "0.01", workdir=tmp_path / "previous")
    archive = write_archive(previous.model_dir, tmp_path / "model.tar.gz")
    fresh = train_in_process("--epochs", "1", "--hidden-sizes", "64", "--seed", "7", workdir=tmp_path / "fresh")
    warm = train_in_process(
        "--epochs", "1", "--hidden-sizes", "64", "--seed", "7", "--model", str(archive), workdir=tmp_path / "warm"
    )  # fmt: skip
    assert warm.history[0]["validation_loss"] < previous.history[-1]["validation_loss"] * 1.5
    assert warm.history[0]["validation_loss"] < fresh.history[0]["validation_loss"] / 2


def test_warm_start_with_other_shapes_fails_clearly(train_in_process, tmp_path):
    previous = train_in_process(*QUICK, workdir=tmp_path / "previous")
    with pytest.raises(SystemExit) as exited:
        train_in_process("--hidden-sizes", "32", "--model", str(previous.model_dir), workdir=tmp_path / "warm")
    assert exited.value.code == 1
    reason = (tmp_path / "warm" / "failure").read_text()
    assert "warm start from" in reason
    assert "hidden_sizes = (64,) but this run has (32,); the shapes must match" in reason


def test_warm_start_from_a_broken_archive_fails_naming_it(train_in_process, tmp_path):
    previous = train_in_process(*QUICK, workdir=tmp_path / "previous")
    archive = write_archive(previous.model_dir, tmp_path / "model.tar.gz")
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(SystemExit) as exited:
        train_in_process(*QUICK, "--model", str(archive), workdir=tmp_path / "warm")
    assert exited.value.code == 1
    reason = (tmp_path / "warm" / "failure").read_text()
    assert reason.startswith(f"ModelLoadError: {archive}: not a readable model archive"), reason


def test_resuming_with_other_hyperparameters_is_refused(train_in_process, tmp_path):
    train_in_process(*QUICK, workdir=tmp_path)
    with pytest.raises(SystemExit):
        train_in_process(*QUICK, "--learning-rate", "0.5", workdir=tmp_path)
    reason = (tmp_path / "failure").read_text()
    assert "was written with other hyperparameters" in reason
    assert "'learning_rate': (0.001, 0.5)" in reason


def test_sagemaker_entries_are_tolerated_and_typos_are_not(train_in_process, tmp_path):
    run = train_in_process(*QUICK, "--_tuning_objective_metric", "validation:accuracy", workdir=tmp_path / "ok")
    assert run.model_dir.exists()
    with pytest.raises(SystemExit):
        train_in_process(*QUICK, "--learning_rate", "0.1", workdir=tmp_path / "typo")
    assert "unknown arguments ['--learning_rate']" in (tmp_path / "typo" / "failure").read_text()


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        (("--dropout", "1.5"), "hyperparameter dropout = 1.5: expected in [0, 1)"),
        (("--optimizer", "lion"), "hyperparameter optimizer = 'lion': expected one of sgd, adam, adamw, rmsprop"),
        (("--weight-init", "glorot"), "hyperparameter weight-init = 'glorot': expected one of auto, zeros"),
        (("--hidden-sizes", "64,x"), "expected comma-separated layer widths such as 256,128, got '64,x'"),
        (("--epochs", "many"), "argument --epochs: invalid int value: 'many'"),
    ],
)
def test_invalid_hyperparameters_reach_the_failure_file(train_in_process, tmp_path, flags, reason):
    with pytest.raises(SystemExit) as exited:
        train_in_process(*flags)
    assert exited.value.code == 1
    assert reason in (tmp_path / "failure").read_text()


def test_sagemaker_hyperparameter_keys_round_trip_through_the_flags():
    params = hp.Hyperparameters(hidden_sizes=(32, 16), optimizer="sgd", learning_rate=0.05)
    sagemaker = params.as_sagemaker()
    assert sagemaker["hidden-sizes"] == "32,16"
    assert sagemaker["learning-rate"] == "0.05"
    flags = [item for name, value in sagemaker.items() for item in (f"--{name}", value)]
    parser = __import__("argparse").ArgumentParser()
    hp.add_arguments(parser)
    assert hp.from_arguments(parser.parse_args(flags)) == params
    with pytest.raises(KeyError):
        hp.key("learning_rte")


NUMBERS = "".join(f"{value},{'ab'[value % 2]}\n" for value in range(20))
BAD_DATA = {
    "missing label column": ("x,y\n1,2\n3,4\n", "no label column 'label'; name the column that holds the classes"),
    "typo in a column of numbers": (
        f"x,label\n{NUMBERS}zwei,b\n",
        "row 21 column 'x': 'zwei' is not a number, in a column of numbers (95% of its values)",
    ),
    "infinity": (f"x,label\n{NUMBERS}inf,b\n", "row 21 column 'x': 'inf' is not a finite number"),
    "empty file": ("", "empty file; expected a header row and data rows"),
    "header only": ("x,label\n", "no data rows after the header"),
    "ragged row": ("x,y,label\n1,2,a\n3,b\n", "row 2: expected 3 fields, found 2"),
    "empty label": ("x,label\n1,a\n2,\n", "row 2 column 'label': missing label ''"),
}


@pytest.mark.parametrize("problem", BAD_DATA)
def test_bad_training_data_names_file_row_and_column(train_in_process, splits, tmp_path, problem):
    content, expected = BAD_DATA[problem]
    train_dir = tmp_path / "train"
    train_dir.mkdir()
    (train_dir / "bad.csv").write_text(content)
    with pytest.raises(SystemExit) as exited:
        train_in_process("--train", str(train_dir), "--validation", str(train_dir))
    assert exited.value.code == 1
    reason = (tmp_path / "failure").read_text()
    assert f"DataError: {train_dir / 'bad.csv'}" in reason
    assert expected in reason
    assert reason.count("\n") == 1, "one paragraph"


def test_a_validation_class_unseen_in_training_is_named(train_in_process, splits, tmp_path):
    validation_dir = tmp_path / "validation"
    shutil.copytree(splits.validation, validation_dir)
    csv_path = validation_dir / "validation.csv"
    lines = csv_path.read_text().splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0] + ",11"
    csv_path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SystemExit):
        train_in_process("--validation", str(validation_dir))
    reason = (tmp_path / "failure").read_text()
    assert f"{csv_path} row 3 column 'label': class '11' does not occur in the training data" in reason


def test_validation_columns_must_match_training(train_in_process, splits, tmp_path):
    validation_dir = tmp_path / "validation"
    shutil.copytree(splits.validation, validation_dir)
    csv_path = validation_dir / "validation.csv"
    csv_path.write_text(csv_path.read_text().replace("pixel_5,", "pixel_five,", 1))
    with pytest.raises(SystemExit):
        train_in_process("--validation", str(validation_dir))
    assert "missing ['pixel_5'], unexpected ['pixel_five']" in (tmp_path / "failure").read_text()


def test_mixed_precision_trains_and_is_reported(train_in_process, capsys):
    """On CPU "on" autocasts to bfloat16: the same code path CUDA takes by default ("auto")."""
    run = train_in_process(*QUICK, "--mixed-precision", "on", "--learning-rate", "0.003")
    assert "mixed precision on" in capsys.readouterr().out
    assert max(epoch["validation_accuracy"] for epoch in run.history) >= 0.85


def test_each_sagemaker_job_checkpoints_under_its_own_name(train_in_process, tmp_path, monkeypatch):
    """Tuning trials share one checkpoint S3 prefix; each must resume only from its own checkpoint."""
    monkeypatch.setenv("TRAINING_JOB_NAME", "trial-001")
    run = train_in_process(*QUICK)
    assert (run.checkpoint_dir / "trial-001" / "checkpoint.pt").exists()
    monkeypatch.setenv("TRAINING_JOB_NAME", "trial-002")
    train_in_process(*QUICK, "--learning-rate", "0.01")
    assert (run.checkpoint_dir / "trial-002" / "checkpoint.pt").exists(), "other hyperparameters, no refusal"


def test_csv_quirks_of_real_exports_are_tolerated(train_in_process, splits, tmp_path):
    """A byte-order mark, Windows line endings and whitespace-only lines, as spreadsheets write them."""
    train_dir = tmp_path / "train"
    train_dir.mkdir()
    source = (splits.train / "train.csv").read_text().splitlines()
    (train_dir / "train.csv").write_bytes(
        ("\ufeff" + "\r\n".join([*source[:200], "  ", *source[200:]]) + "\r\n").encode()
    )
    run = train_in_process(*QUICK, "--train", str(train_dir))
    assert run.metadata["feature_names"][0] == "pixel_0"
    assert len(run.history) == 6


def test_numeric_class_labels_order_is_stable_for_ties():
    from training_code.data import class_labels

    assert class_labels(np.array(["10", "1.0", "2", "1"])) == ("1", "1.0", "2", "10")
    assert class_labels(np.array(["1", "1.0"])) == class_labels(np.array(["1.0", "1"]))


def test_outside_sagemaker_each_run_checkpoints_in_a_directory_of_its_own_that_goes_with_it(
    splits, tmp_path, monkeypatch, capsys
):
    """Without --checkpoint-dir a laptop run must not find another run's checkpoint (and refuse its hyperparameters)
    in a shared /opt/ml/checkpoints; its own directory is removed when it ends."""
    monkeypatch.delenv("TRAINING_JOB_NAME", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    created = []
    make_directory = tempfile.mkdtemp
    monkeypatch.setattr(tempfile, "mkdtemp", lambda *a, **k: created.append(make_directory(*a, **k)) or created[-1])
    common = ["--train", str(splits.train), "--validation", str(splits.validation), "--epochs", "2"]
    for number, learning_rate in enumerate(("0.001", "0.01")):
        train_main(
            [
                *common,
                *("--learning-rate", learning_rate, "--model-dir", str(tmp_path / f"model-{number}")),
                *("--failure-file", str(tmp_path / "failure")),
            ]
        )
    assert "resuming" not in capsys.readouterr().out
    assert not (tmp_path / "failure").exists()
    checkpoints = [Path(path) for path in created if Path(path).name.startswith("mlops-checkpoints-")]
    assert len(checkpoints) == 2, "a directory per run"
    assert not any(path.exists() for path in checkpoints), "the runs' checkpoint directories are gone"
