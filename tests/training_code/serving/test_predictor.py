"""The numpy forward pass against the torch reference, and the artifact checks that run before the server listens."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from torch import nn

from tests.training_code.conftest import PROJECT_ROOT, Splits
from tests.training_code.serving.conftest import TrainedModel, train_model
from training_code.artifact import ModelArtifact, write_archive
from training_code.contract import MODEL_ARCHIVE, MODEL_METADATA_FILE, MODEL_WEIGHTS_FILE, SERVING_WEIGHTS_FILE
from training_code.serving.predictor import ModelLoadError, Predictor

TOLERANCE = 1e-5


def evaluation_features(splits: Splits) -> np.ndarray:
    """The test split's feature rows, and the same rows negated: standardized values far on both sides of zero."""
    table = np.genfromtxt(splits.root / "test" / "test.csv", delimiter=",", names=True)
    features = np.array([[row[name] for name in table.dtype.names if name != "label"] for row in table])
    return np.concatenate([features, -features, 3 * features])


@pytest.mark.parametrize(
    "activation, dropout, hidden_sizes",
    [
        ("relu", "0", "16,8"),
        ("tanh", "0", "16,8"),
        ("selu", "0", "16,8"),
        ("sigmoid", "0", "16,8"),
        ("relu", "0.5", "16,8"),
        ("tanh", "0.3", "16,8"),
        ("selu", "0.5", "16,8"),
        ("sigmoid", "0.3", "16,8"),
        ("relu", "0.2", "16,8,8"),
        ("tanh", "0", "12"),
    ],
)
def test_numpy_forward_pass_equals_torch(splits: Splits, tmp_path: Path, activation, dropout, hidden_sizes) -> None:
    model_dir = train_model(
        splits,
        tmp_path,
        *("--activation", activation, "--dropout", dropout, "--hidden-sizes", hidden_sizes, "--epochs", "1"),
    )
    artifact = ModelArtifact.load(model_dir)
    # With dropout, the linear layers sit at other nn.Sequential indices than without: both layouts are read.
    has_dropout = any(isinstance(layer, nn.Dropout | nn.AlphaDropout) for layer in artifact.build_model().layers)
    assert has_dropout == (float(dropout) > 0)
    features = evaluation_features(splits)

    predictor = Predictor.load(model_dir)
    probabilities = predictor.predict_proba(features)

    reference = artifact.predict_proba(features)
    assert probabilities.shape == reference.shape == (len(features), len(artifact.classes))
    np.testing.assert_allclose(probabilities, reference, rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=TOLERANCE)
    assert predictor.classes == artifact.classes
    assert predictor.encoding == artifact.encoding
    # No randomness at inference: dropout is not applied, so the same rows always give the same answer.
    np.testing.assert_array_equal(predictor.predict_proba(features), probabilities)
    # One row alone takes another BLAS path than in a batch: the same answer up to float32 rounding.
    np.testing.assert_allclose(predictor.predict_proba(features[:1]), probabilities[:1], rtol=0, atol=1e-6)


def test_logits_are_float32_rows_in_the_order_of_the_classes(trained_model: TrainedModel) -> None:
    predictor = Predictor.load(trained_model.model_dir)
    rows = trained_model.rows

    logits = predictor.logits(rows.features)

    assert logits.dtype == np.float32
    assert logits.shape == (len(rows), len(rows.classes))
    assert [predictor.classes[index] for index in logits.argmax(axis=1)] == rows.reference_labels()


def copy_model(trained_model: TrainedModel, tmp_path: Path) -> Path:
    return Path(shutil.copytree(trained_model.model_dir, tmp_path / "model"))


def test_loads_a_directory_that_holds_model_tar_gz(trained_model: TrainedModel, tmp_path: Path) -> None:
    packed = tmp_path / "packed"
    packed.mkdir()
    write_archive(trained_model.model_dir, packed / MODEL_ARCHIVE)
    features = trained_model.rows.features
    expected = Predictor.load(trained_model.model_dir).predict_proba(features)

    for location in (packed, packed / MODEL_ARCHIVE):
        np.testing.assert_array_equal(Predictor.load(location).predict_proba(features), expected)
    np.testing.assert_allclose(expected, trained_model.rows.reference, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("missing, present", [(SERVING_WEIGHTS_FILE, MODEL_METADATA_FILE), (MODEL_METADATA_FILE, None)])
def test_a_directory_without_a_needed_file_is_refused_naming_it(
    trained_model: TrainedModel, tmp_path: Path, missing: str, present: str | None
) -> None:
    model_dir = copy_model(trained_model, tmp_path)
    (model_dir / missing).unlink()
    assert (model_dir / MODEL_WEIGHTS_FILE).is_file()

    with pytest.raises(ModelLoadError) as raised:
        Predictor.load(model_dir)

    message = str(raised.value)
    assert missing in message
    assert str(model_dir) in message
    if present is not None:
        assert present not in message


@pytest.mark.parametrize("location", ["empty", "does-not-exist"])
def test_a_location_without_an_artifact_names_both_files(tmp_path: Path, location: str) -> None:
    if location == "empty":
        (tmp_path / location).mkdir()

    with pytest.raises(ModelLoadError) as raised:
        Predictor.load(tmp_path / location)

    message = str(raised.value)
    assert MODEL_METADATA_FILE in message and SERVING_WEIGHTS_FILE in message
    assert location in message


def edit_weights(edit: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]) -> Callable[[Path], None]:
    def apply(model_dir: Path) -> None:
        with np.load(model_dir / SERVING_WEIGHTS_FILE) as stored:
            weights = dict(stored)
        np.savez(model_dir / SERVING_WEIGHTS_FILE, **edit(weights))

    return apply


def edit_metadata(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(model_dir: Path) -> None:
        metadata = json.loads((model_dir / MODEL_METADATA_FILE).read_text())
        edit(metadata)
        (model_dir / MODEL_METADATA_FILE).write_text(json.dumps(metadata))

    return apply


def last_linear_index(weights: dict[str, np.ndarray]) -> int:
    return max(int(name.split(".")[1]) for name in weights if name.endswith(".weight"))


def without_output_layer(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    index = last_linear_index(weights)
    return {name: value for name, value in weights.items() if not name.startswith(f"layers.{index}.")}


def narrower_hidden_layers(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A consistent 64-16-8-10 chain where the config says 64-32-16-10."""
    rng = np.random.default_rng(0)
    shapes = [(16, 64), (8, 16), (10, 8)]
    indices = sorted(int(name.split(".")[1]) for name in weights if name.endswith(".weight"))
    narrowed = {}
    for index, shape in zip(indices, shapes, strict=True):
        narrowed[f"layers.{index}.weight"] = rng.normal(size=shape).astype(np.float32)
        narrowed[f"layers.{index}.bias"] = np.zeros(shape[0], dtype=np.float32)
    return narrowed


def transposed_first_layer(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {**weights, "layers.0.weight": np.ascontiguousarray(weights["layers.0.weight"].T)}


def short_output_bias(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    name = f"layers.{last_linear_index(weights)}.bias"
    return {**weights, name: weights[name][:-1]}


def one_class_fewer(metadata: dict) -> None:
    metadata["classes"] = metadata["classes"][:-1]
    metadata["model_config"]["num_classes"] -= 1


def one_feature_fewer(metadata: dict) -> None:
    metadata["feature_names"] = metadata["feature_names"][:-1]
    metadata["model_config"]["input_size"] -= 1
    metadata["encoding"]["columns"] = metadata["encoding"]["columns"][:-1]


def one_hidden_layer_more(metadata: dict) -> None:
    metadata["model_config"]["hidden_sizes"] = [*metadata["model_config"]["hidden_sizes"], 16]


def encoding_one_column_short(metadata: dict) -> None:
    metadata["encoding"]["columns"] = metadata["encoding"]["columns"][:-1]


@pytest.mark.parametrize(
    "corrupt",
    [
        edit_weights(without_output_layer),
        edit_weights(narrower_hidden_layers),
        edit_weights(transposed_first_layer),
        edit_weights(short_output_bias),
        edit_metadata(one_class_fewer),
        edit_metadata(one_feature_fewer),
        edit_metadata(one_hidden_layer_more),
        edit_metadata(encoding_one_column_short),
    ],
    ids=[
        "output-layer-missing",
        "hidden-widths-differ-from-config",
        "transposed-weight",
        "output-bias-too-short",
        "more-outputs-than-classes",
        "more-inputs-than-features",
        "fewer-layers-than-config",
        "encoding-shorter-than-features",
    ],
)
def test_weights_that_do_not_match_the_config_are_refused(
    trained_model: TrainedModel, tmp_path: Path, corrupt: Callable[[Path], None]
) -> None:
    model_dir = copy_model(trained_model, tmp_path)
    corrupt(model_dir)

    with pytest.raises(ModelLoadError):
        Predictor.load(model_dir)


def write_text(name: str, text: str) -> Callable[[Path], None]:
    def apply(model_dir: Path) -> None:
        (model_dir / name).write_text(text)

    return apply


def without_key(key: str) -> Callable[[dict], None]:
    def apply(metadata: dict) -> None:
        del metadata[key]

    return apply


def activation(name: str) -> Callable[[dict], None]:
    def apply(metadata: dict) -> None:
        metadata["model_config"]["activation"] = name

    return apply


def truncated_weights(model_dir: Path) -> None:
    path = model_dir / SERVING_WEIGHTS_FILE
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def broken_archive_only(model_dir: Path) -> None:
    for path in model_dir.iterdir():
        path.unlink()
    (model_dir / MODEL_ARCHIVE).write_bytes(b"\x1f\x8b\x08\x00 this is not a gzipped tar")


@pytest.mark.parametrize(
    "corrupt, named",
    [
        (write_text(MODEL_METADATA_FILE, "{not json"), None),
        (edit_metadata(without_key("encoding")), "encoding"),
        (edit_metadata(activation("gelu")), "gelu"),
        (write_text(SERVING_WEIGHTS_FILE, "not a zip archive"), None),
        (truncated_weights, None),
        (edit_weights(lambda weights: {k: v for k, v in weights.items() if k != "layers.0.bias"}), "layers.0.bias"),
        (broken_archive_only, None),
    ],
    ids=[
        "metadata-not-json",
        "metadata-without-encoding",
        "unknown-activation",
        "weights-not-npz",
        "weights-truncated",
        "weights-without-a-bias",
        "archive-not-a-tar",
    ],
)
def test_an_unreadable_artifact_raises_model_load_error(
    trained_model: TrainedModel, tmp_path: Path, corrupt: Callable[[Path], None], named: str | None
) -> None:
    """Only ModelLoadError becomes the server's one-line startup error; anything else would be a traceback."""
    model_dir = copy_model(trained_model, tmp_path)
    corrupt(model_dir)

    with pytest.raises(ModelLoadError) as raised:
        Predictor.load(model_dir)

    message = str(raised.value)
    assert str(model_dir) in message or MODEL_ARCHIVE in message
    if named is not None:
        assert named in message


def as_format_1(metadata: dict) -> None:
    """What training wrote before the encoding: numeric scaling statistics."""
    columns = metadata.pop("encoding")["columns"]
    metadata["format_version"] = 1
    metadata["scaling"] = {
        "feature_names": [column["name"] for column in columns],
        "mean": [column["mean"] for column in columns],
        "scale": [column["scale"] for column in columns],
    }


def test_a_model_of_the_previous_artifact_format_serves_the_same_answers(
    trained_model: TrainedModel, tmp_path: Path
) -> None:
    """Versions registered before the encoding existed stay servable after the image is updated."""
    model_dir = copy_model(trained_model, tmp_path)
    edit_metadata(as_format_1)(model_dir)
    features = trained_model.rows.features

    previous = Predictor.load(model_dir)

    assert "encoding" not in json.loads((model_dir / MODEL_METADATA_FILE).read_text())
    expected = Predictor.load(trained_model.model_dir).predict_proba(features)
    np.testing.assert_array_equal(previous.predict_proba(features), expected)


def test_importing_the_server_sets_no_environment_variable():
    """The evaluation step imports the predictor: a variable set at import, as the package once set the BLAS thread
    count for the server's workers, would change how the evaluation runs. The server sets it where it starts them."""
    probe = (
        "import os; before = set(os.environ.items()); import training_code.serving.__main__; "
        "print(sorted(set(os.environ.items()) ^ before))"
    )
    environment = {name: value for name, value in os.environ.items() if name != "OPENBLAS_NUM_THREADS"}
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
