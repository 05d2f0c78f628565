"""The model artifact: weights plus everything needed to serve them, in a directory or SageMaker's model.tar.gz."""

from __future__ import annotations

import json
import platform
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training_code.contract import MODEL_ARCHIVE, MODEL_METADATA_FILE, MODEL_WEIGHTS_FILE, SERVING_WEIGHTS_FILE
from training_code.features import Encoding
from training_code.model import MLP, ModelConfig
from training_code.serving.predictor import model_directory

# 2: the feature encoding (categories, fills, scaling) replaced numeric-only scaling statistics; 1 is still read.
ARTIFACT_FORMAT_VERSION = 2
READABLE_FORMAT_VERSIONS = (1, 2)


def runtime_versions() -> dict[str, str]:
    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__}


@dataclass
class ModelArtifact:
    model_config: ModelConfig
    encoding: Encoding
    classes: tuple[str, ...]
    hyperparameters: dict[str, Any]
    history: list[dict[str, float]]
    best_epoch: int
    state_dict: dict[str, torch.Tensor]
    versions: dict[str, str] = field(default_factory=runtime_versions)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        torch.save(self.state_dict, directory / MODEL_WEIGHTS_FILE)
        np.savez(
            directory / SERVING_WEIGHTS_FILE,
            **{name: tensor.detach().cpu().numpy() for name, tensor in self.state_dict.items()},
        )
        metadata = {
            "format_version": ARTIFACT_FORMAT_VERSION,
            "model_config": self.model_config.to_dict(),
            "feature_names": list(self.feature_names),
            "encoding": self.encoding.to_dict(),
            "classes": list(self.classes),
            "label_column": self.label_column,
            "hyperparameters": self.hyperparameters,
            "history": self.history,
            "best_epoch": self.best_epoch,
            "versions": self.versions,
        }
        (directory / MODEL_METADATA_FILE).write_text(json.dumps(metadata, indent=1))

    @classmethod
    def load(cls, location: Path) -> ModelArtifact:
        """Load from a model directory, or from a directory holding model.tar.gz, or from the archive itself."""
        with model_directory(location) as directory:
            return cls._load_directory(directory)

    @classmethod
    def _load_directory(cls, directory: Path) -> ModelArtifact:
        metadata_path = directory / MODEL_METADATA_FILE
        if not metadata_path.exists():
            raise FileNotFoundError(f"{directory}: no {MODEL_METADATA_FILE} or {MODEL_ARCHIVE}; not a model artifact")
        metadata = json.loads(metadata_path.read_text())
        if metadata["format_version"] not in READABLE_FORMAT_VERSIONS:
            raise ValueError(f"{metadata_path}: artifact format {metadata['format_version']} is not supported")
        return cls(
            model_config=ModelConfig.from_dict(metadata["model_config"]),
            encoding=Encoding.from_metadata(metadata),
            classes=tuple(metadata["classes"]),
            hyperparameters=metadata["hyperparameters"],
            history=metadata["history"],
            best_epoch=metadata["best_epoch"],
            state_dict=torch.load(directory / MODEL_WEIGHTS_FILE, map_location="cpu", weights_only=True),
            versions=metadata["versions"],
        )

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.encoding.feature_names

    @property
    def label_column(self) -> str:
        return self.encoding.label_column

    def build_model(self) -> MLP:
        model = MLP(self.model_config)
        model.load_state_dict(self.state_dict)
        return model.eval()

    def predict_proba(self, features: np.ndarray, model: MLP | None = None) -> np.ndarray:
        """Class probabilities for rows of feature codes (`Encoding.codes`), in the order of `classes`."""
        model = model or self.build_model()
        with torch.inference_mode():
            logits = model(torch.from_numpy(self.encoding.transform(features)))
            return torch.softmax(logits, dim=1).numpy()


def write_archive(model_dir: Path, archive: Path) -> Path:
    """Pack a model directory as SageMaker does: its files at the root of a gzipped tar."""
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(model_dir.iterdir()):
            tar.add(path, arcname=path.name)
    return archive
