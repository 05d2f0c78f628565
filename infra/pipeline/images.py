"""The pipeline's images: AWS framework image URIs per region, as a CloudFormation mapping (the image accounts differ
per region, and an environment-agnostic template learns its region only at deploy time), and our serving image, which
`cdk deploy` builds and pushes."""

from __future__ import annotations

import json
import re
import shlex
from functools import cache
from pathlib import Path

from aws_cdk import Aws, CfnMapping, Fn, IgnoreMode
from aws_cdk import aws_ecr_assets as ecr_assets
from constructs import Construct
from sagemaker import image_uris

from infra.config import PROJECT_ROOT
from infra.framework_images import IMAGE_SPECS, FrameworkImage, ImageSpec, registries, supported_regions

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


@cache
def image_table() -> dict[str, dict[str, str]]:
    """{region: {image: uri}} for every commercial region that has all the images.

    The SDK formats each image's URI once, for a reference region; repository and tag are the same in every
    commercial region, so the other regions differ only in account and region (resolving all ~120 URIs through
    the SDK costs 12 s a synth)."""
    accounts = {image: registries(spec) for image, spec in IMAGE_SPECS.items()}
    references = {image: sdk_image_uri(spec, REFERENCE_REGION) for image, spec in IMAGE_SPECS.items()}
    return {
        region: {
            image: references[image].replace(
                f"{accounts[image][REFERENCE_REGION]}.dkr.ecr.{REFERENCE_REGION}.",
                f"{accounts[image][region]}.dkr.ecr.{region}.",
            )
            for image in IMAGE_SPECS
        }
        for region in supported_regions()
    }


class FrameworkImages(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.mapping = CfnMapping(self, "ByRegion", mapping=image_table())

    def uri(self, image: FrameworkImage) -> str:
        return Fn.find_in_map(self.mapping.logical_id, Aws.REGION, image)


SERVING_IMAGE_CONTEXT = PROJECT_ROOT / "training_code"
SERVING_DOCKERFILE = "Dockerfile"
# COPY/ADD: leading --flags, then sources and destination (shell or JSON-array form).
_COPY_FLAGS = re.compile(r"^((?:--\S+\s+)*)(.*)$")


def dockerfile_copy_sources(dockerfile: str) -> tuple[str, ...]:
    """The build-context paths that a Dockerfile's COPY and ADD instructions read (not those from other stages)."""
    sources: list[str] = []
    for line in dockerfile.replace("\\\n", " ").splitlines():
        instruction, _, arguments = line.strip().partition(" ")
        if instruction.upper() not in ("COPY", "ADD"):
            continue
        flags, operands = _COPY_FLAGS.match(arguments.strip()).groups()
        if "--from" in flags:
            continue
        paths = json.loads(operands) if operands.startswith("[") else shlex.split(operands)
        sources += paths[:-1]
    return tuple(dict.fromkeys(sources))


def serving_image_excludes(dockerfile: str) -> list[str]:
    """Everything but what the Dockerfile copies, and no bytecode: the asset hash, and so the image tag, changes only
    when the serving code does."""
    return [
        "*",
        f"!{SERVING_DOCKERFILE}",
        *(f"!{source}" for source in dockerfile_copy_sources(dockerfile)),
        "**/__pycache__",
        "**/*.pyc",
    ]


class ServingImage(Construct):
    """The serving container for every inference mode. Synth only stages its build context; `cdk deploy` builds it
    and pushes it to the bootstrap container-assets repository."""

    def __init__(self, scope: Construct, construct_id: str, *, context_dir: Path = SERVING_IMAGE_CONTEXT) -> None:
        super().__init__(scope, construct_id)
        self.asset = ecr_assets.DockerImageAsset(
            self,
            "Asset",
            directory=str(context_dir),
            file=SERVING_DOCKERFILE,
            exclude=serving_image_excludes((context_dir / SERVING_DOCKERFILE).read_text()),
            ignore_mode=IgnoreMode.DOCKER,
            platform=ecr_assets.Platform.LINUX_AMD64,
            display_name="serving image",
        )

    @property
    def image_uri(self) -> str:
        return self.asset.image_uri
