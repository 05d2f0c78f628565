"""The trained MLP's forward pass in numpy: the serving container loads no torch, which keeps cold starts short."""

from __future__ import annotations

import json
import re
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training_code.contract import MODEL_ARCHIVE, MODEL_METADATA_FILE, SERVING_WEIGHTS_FILE
from training_code.features import Encoding


def _selu(x: np.ndarray) -> np.ndarray:
    alpha, scale = 1.6732632423543772, 1.0507009873554805
    return scale * np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0, out=x),
    "tanh": np.tanh,
    "selu": _selu,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
}
# nn.Sequential numbers its children; the linear layers are the ones with weights.
_LINEAR_WEIGHT = re.compile(r"^layers\.(\d+)\.weight$")


def softmax(logits: np.ndarray) -> np.ndarray:
    exponentials = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exponentials / exponentials.sum(axis=1, keepdims=True)


class ModelLoadError(ValueError):
    """The model directory does not hold a servable artifact."""


@contextmanager
def model_directory(location: Path) -> Iterator[Path]:
    """The model's files: a model directory (SageMaker extracts model.tar.gz into /opt/ml/model) as it is, or the
    archive (in the directory, or named) extracted into a temporary one."""
    archive = location / MODEL_ARCHIVE if location.is_dir() else location
    if not archive.is_file():
        yield location
        return
    with tempfile.TemporaryDirectory() as extracted:
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(extracted, filter="data")
        except (tarfile.TarError, EOFError, OSError) as error:
            reason = " ".join(str(error).split())
            raise ModelLoadError(f"{archive}: not a readable model archive ({reason})") from None
        yield Path(extracted)


@dataclass(frozen=True)
class Predictor:
    encoding: Encoding
    classes: tuple[str, ...]
    layers: tuple[tuple[np.ndarray, np.ndarray], ...]
    activation: str

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Class scores (float32 rows, in the order of `classes`) for rows of feature codes (`Encoding.codes`)."""
        hidden = self.encoding.transform(features)
        activate = ACTIVATIONS[self.activation]
        *hidden_layers, (output_weight, output_bias) = self.layers
        for weight, bias in hidden_layers:
            hidden = activate(hidden @ weight + bias)
        return hidden @ output_weight + output_bias

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        return softmax(self.logits(features))

    @classmethod
    def load(cls, location: Path) -> Predictor:
        """From a model directory, or one holding the archive, or the archive itself."""
        with model_directory(location) as directory:
            return cls._load_directory(directory)

    @classmethod
    def _load_directory(cls, directory: Path) -> Predictor:
        metadata_path, weights_path = directory / MODEL_METADATA_FILE, directory / SERVING_WEIGHTS_FILE
        missing = [path.name for path in (metadata_path, weights_path) if not path.is_file()]
        if missing:
            raise ModelLoadError(f"{directory}: not a model artifact, {' and '.join(missing)} missing")
        try:
            return cls._read(metadata_path, weights_path)
        except ModelLoadError:
            raise
        except (KeyError, ValueError, OSError, zipfile.BadZipFile) as error:
            raise ModelLoadError(f"{directory}: unreadable model artifact ({type(error).__name__}: {error})") from None

    @classmethod
    def _read(cls, metadata_path: Path, weights_path: Path) -> Predictor:
        metadata = json.loads(metadata_path.read_text())
        config = metadata["model_config"]
        encoding = Encoding.from_metadata(metadata)
        if config["activation"] not in ACTIVATIONS:
            raise ModelLoadError(f"{metadata_path}: activation {config['activation']!r} cannot be served")
        with np.load(weights_path) as weights:
            indices = sorted(int(match[1]) for name in weights.files if (match := _LINEAR_WEIGHT.match(name)))
            # Transposed once here so that each request multiplies rows by a contiguous matrix.
            layers = tuple(
                (
                    np.ascontiguousarray(weights[f"layers.{index}.weight"].T, dtype=np.float32),
                    weights[f"layers.{index}.bias"].astype(np.float32),
                )
                for index in indices
            )
        widths = [encoding.width, *config["hidden_sizes"], len(metadata["classes"])]
        expected = [((inputs, outputs), (outputs,)) for inputs, outputs in zip(widths, widths[1:], strict=False)]
        if list(encoding.feature_names) != metadata["feature_names"]:
            raise ModelLoadError(
                f"{metadata_path}: the encoding's columns differ from feature_names ({len(metadata['feature_names'])})"
            )
        if [(weight.shape, bias.shape) for weight, bias in layers] != expected:
            raise ModelLoadError(
                f"{weights_path}: layer shapes do not match the features, layers and classes in {metadata_path.name}"
            )
        return cls(
            encoding=encoding,
            classes=tuple(metadata["classes"]),
            layers=layers,
            activation=config["activation"],
        )
