"""The AWS framework images the pipeline runs on, and the regions that have all of them.

Read from the SageMaker SDK's offline image table (its JSON files) without importing the SDK: the stage config
checks regions with it, and importing the SDK costs seconds."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path


class FrameworkImage(StrEnum):
    TRAINING = "Training"
    PREPROCESSING = "Preprocessing"
    EVALUATION = "Evaluation"


@dataclass(frozen=True)
class ImageSpec:
    framework: str
    version: str
    py_version: str
    scope: str
    instance_type: str

    @property
    def label(self) -> str:
        return f"{self.framework} {self.version}"


# Training and evaluation run on PyTorch 2.8 (Python 3.12), preprocessing on scikit-learn.
IMAGE_SPECS = {
    FrameworkImage.TRAINING: ImageSpec("pytorch", "2.8.0", "py312", "training", "ml.g5.xlarge"),
    FrameworkImage.PREPROCESSING: ImageSpec("sklearn", "1.4-2", "py3", "training", "ml.m5.xlarge"),
    FrameworkImage.EVALUATION: ImageSpec("pytorch", "2.8.0", "py312", "training", "ml.m5.xlarge"),
}
# Partitions this kit does not deploy to (their image accounts and ARNs differ).
_OTHER_PARTITIONS = ("cn-", "us-gov-", "us-iso", "eu-isoe")


def _image_config_dir() -> Path:
    (package_dir,) = importlib.util.find_spec("sagemaker").submodule_search_locations
    return Path(package_dir) / "image_uri_config"


@cache
def registries(spec: ImageSpec) -> dict[str, str]:
    """{region: image account} from the SDK's offline image table."""
    config = json.loads((_image_config_dir() / f"{spec.framework}.json").read_text())
    return config[spec.scope]["versions"][spec.version]["registries"]


MODEL_MONITOR_REPOSITORY = "sagemaker-model-monitor-analyzer"


@cache
def model_monitor_registries() -> dict[str, str]:
    """{region: account} of Model Monitor's analyzer image (one untagged image per region, unlike the frameworks)."""
    config = json.loads((_image_config_dir() / "model-monitor.json").read_text())
    return config["versions"][""]["registries"]


@cache
def supported_regions() -> tuple[str, ...]:
    """The commercial regions that have every framework image, sorted."""
    regions = set.intersection(*(set(registries(spec)) for spec in IMAGE_SPECS.values()))
    return tuple(sorted(region for region in regions if not region.startswith(_OTHER_PARTITIONS)))


@cache
def monitoring_regions() -> tuple[str, ...]:
    """The supported regions where Model Monitor's analyzer runs (not every one of them: its table lags)."""
    return tuple(region for region in supported_regions() if region in model_monitor_registries())


def images_described() -> str:
    return ", ".join(dict.fromkeys(spec.label for spec in IMAGE_SPECS.values()))
