"""AWS framework image URIs per region, as a CloudFormation mapping: the image accounts differ per region, and an
environment-agnostic template learns its region only at deploy time."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path

import sagemaker
from aws_cdk import Aws, CfnMapping, Fn
from constructs import Construct
from sagemaker import image_uris


class FrameworkImage(StrEnum):
    TRAINING = "Training"
    PREPROCESSING = "Preprocessing"
    EVALUATION = "Evaluation"
    SERVING = "Serving"


@dataclass(frozen=True)
class ImageSpec:
    framework: str
    version: str
    py_version: str
    scope: str
    instance_type: str


# Training and evaluation run on PyTorch 2.8 (Python 3.12), preprocessing on scikit-learn; the default serving
# image (PyTorch 2.6, the newest inference image the SDK lists) stands in until the project builds its own.
IMAGE_SPECS = {
    FrameworkImage.TRAINING: ImageSpec("pytorch", "2.8.0", "py312", "training", "ml.g5.xlarge"),
    FrameworkImage.PREPROCESSING: ImageSpec("sklearn", "1.4-2", "py3", "training", "ml.m5.xlarge"),
    FrameworkImage.EVALUATION: ImageSpec("pytorch", "2.8.0", "py312", "training", "ml.m5.xlarge"),
    FrameworkImage.SERVING: ImageSpec("pytorch", "2.6.0", "py312", "inference", "ml.m5.xlarge"),
}


REFERENCE_REGION = "us-east-1"


def sdk_image_uri(spec: ImageSpec, region: str) -> str:
    """The image URI as the SageMaker SDK formats it (about 0.1 s a call)."""
    return image_uris.retrieve(
        spec.framework,
        region,
        version=spec.version,
        py_version=spec.py_version,
        instance_type=spec.instance_type,
        image_scope=spec.scope,
    )


def _registries(spec: ImageSpec) -> dict[str, str]:
    """{region: image account} from the SDK's offline image table."""
    config_file = Path(sagemaker.__file__).parent / "image_uri_config" / f"{spec.framework}.json"
    return json.loads(config_file.read_text())[spec.scope]["versions"][spec.version]["registries"]


@cache
def image_table() -> dict[str, dict[str, str]]:
    """{region: {image: uri}} for every commercial region that has all the images.

    The SDK formats each image's URI once, for a reference region; repository and tag are the same in every
    commercial region, so the other regions differ only in account and region (resolving all ~120 URIs through
    the SDK costs 12 s a synth)."""
    registries = {image: _registries(spec) for image, spec in IMAGE_SPECS.items()}
    references = {image: sdk_image_uri(spec, REFERENCE_REGION) for image, spec in IMAGE_SPECS.items()}
    regions = set.intersection(*(set(table) for table in registries.values()))
    return {
        region: {
            image: references[image].replace(
                f"{registries[image][REFERENCE_REGION]}.dkr.ecr.{REFERENCE_REGION}.",
                f"{registries[image][region]}.dkr.ecr.{region}.",
            )
            for image in IMAGE_SPECS
        }
        for region in sorted(regions)
        if not region.startswith(("cn-", "us-gov-", "us-iso", "eu-isoe"))
    }


class FrameworkImages(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.mapping = CfnMapping(self, "ByRegion", mapping=image_table())

    def uri(self, image: FrameworkImage) -> str:
        return Fn.find_in_map(self.mapping.logical_id, Aws.REGION, image)
