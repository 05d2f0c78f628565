"""The validated value types of the stage config: the instance types each SageMaker API accepts, AWS identifiers,
names, schedules and paths, each with the check that makes it a value the service takes."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

from infra.framework_images import images_described, supported_regions
from infra.instance_types import InstanceUse, instance_type_problem
from infra.layout import DataPrefix
from infra.manifest import MODEL_PACKAGE_ARN, S3_FOLDER
from training_code.contract import LINE_CONTENT_TYPES, TRANSFORM_PAYLOAD_LIMIT_MB

_LARGE_SIZES = ("xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "48xlarge")
GPU_TRAINING_INSTANCE_SIZES: dict[str, tuple[str, ...]] = {
    "ml.p3": ("2xlarge", "8xlarge", "16xlarge"),
    "ml.g4dn": ("xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge"),
    "ml.g5": _LARGE_SIZES,
    "ml.g6": _LARGE_SIZES,
    "ml.g6e": _LARGE_SIZES,
}
GPU_TRAINING_INSTANCE_TYPES: frozenset[str] = frozenset(
    f"{family}.{size}" for family, sizes in GPU_TRAINING_INSTANCE_SIZES.items() for size in sizes
)
ALLOWED_GPU_TRAINING_INSTANCE_TYPES = "; ".join(
    f"{family}.{{{','.join(sizes)}}}" for family, sizes in GPU_TRAINING_INSTANCE_SIZES.items()
)

_ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
_REGION = re.compile(r"^[a-z]{2,4}(?:-[a-z]+){1,2}-[0-9]$")
# Bucket names are "<project>-<stage>-<purpose>-<account>-<region>" and must stay within S3's 63 characters.
_PROJECT_NAME = re.compile(r"^[a-z][a-z0-9-]{1,14}[a-z0-9]$")


def _gpu_training_instance_type(value: str) -> str:
    if value not in GPU_TRAINING_INSTANCE_TYPES:
        raise ValueError(f"not a GPU training instance type; allowed: {ALLOWED_GPU_TRAINING_INSTANCE_TYPES}")
    return _instance_type_for(InstanceUse.TRAINING)(value)


def _instance_type_for(use: InstanceUse):
    """A validator that accepts exactly the types the API accepts for this use (botocore's enum)."""

    def check(value: str) -> str:
        problem = instance_type_problem(value, use)
        if problem:
            raise ValueError(problem)
        return value

    return check


def _account_id(value: str) -> str:
    if not _ACCOUNT_ID.match(value):
        raise ValueError("not an AWS account id; expected exactly 12 digits, e.g. 123456789012")
    return value


def _region(value: str) -> str:
    if not _REGION.match(value):
        raise ValueError("not an AWS region; expected e.g. us-east-1 or eu-west-1")
    return value


def _stage_region(value: str) -> str:
    """A region the pipeline can run in: one that has every framework image (the template maps them per region)."""
    _region(value)
    if value not in supported_regions():
        raise ValueError(
            f"the pipeline's framework images ({images_described()}) are not available there; "
            f"supported regions: {', '.join(supported_regions())}"
        )
    return value


# S3 reserves these bucket-name prefixes.
_RESERVED_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
RESERVED_TAG_KEYS = ("project", "stage")


def _project_name(value: str) -> str:
    if not _PROJECT_NAME.match(value) or value.startswith(_RESERVED_BUCKET_PREFIXES):
        raise ValueError(
            "expected 3-16 characters of lowercase letters, digits and hyphens, starting with a letter "
            f"(it prefixes bucket names, which must not start with {', '.join(_RESERVED_BUCKET_PREFIXES)})"
        )
    return value


def _tags(value: dict[str, str]) -> dict[str, str]:
    for key, tag_value in value.items():
        if key in RESERVED_TAG_KEYS:
            raise ValueError(f"tag {key!r} is set from the project name and stage; choose another key")
        if not 1 <= len(key) <= 128 or key.lower().startswith("aws:"):
            raise ValueError(f"tag key {key!r}: expected 1-128 characters, not starting with 'aws:'")
        if len(tag_value) > 256:
            raise ValueError(f"tag {key!r}: value longer than 256 characters")
    return value


GpuTrainingInstanceType = Annotated[str, AfterValidator(_gpu_training_instance_type)]
ProcessingInstanceType = Annotated[str, AfterValidator(_instance_type_for(InstanceUse.PROCESSING))]
HostingInstanceType = Annotated[str, AfterValidator(_instance_type_for(InstanceUse.HOSTING))]
TransformInstanceType = Annotated[str, AfterValidator(_instance_type_for(InstanceUse.TRANSFORM))]
AccountId = Annotated[str, AfterValidator(_account_id)]
Region = Annotated[str, AfterValidator(_region)]
StageRegion = Annotated[str, AfterValidator(_stage_region)]
ProjectName = Annotated[str, AfterValidator(_project_name)]
Tags = Annotated[dict[str, str], AfterValidator(_tags)]


_SCHEDULE = re.compile(r"^(cron|rate)\(.+\)$")
_JSON_PATH = re.compile(r"^\$\S*$")
# S3 keys that may stand in an IAM resource ARN and an EventBridge prefix filter as they are.
_S3_PREFIX = re.compile(r"^(?:[a-zA-Z0-9!_.()-]+/)+$")
# SageMaker's limit on a transform job's in-flight data: MaxPayloadInMB x MaxConcurrentTransforms.
TRANSFORM_IN_FLIGHT_LIMIT_MB = TRANSFORM_PAYLOAD_LIMIT_MB
# SageMaker's limit on an asynchronous request's payload (the object InvokeEndpointAsync names in S3).
ASYNC_PAYLOAD_LIMIT_MB = 1024


def _schedule(value: str) -> str:
    if not _SCHEDULE.match(value):
        raise ValueError("expected an EventBridge schedule expression: cron(...) or rate(...)")
    return value


def _model_package_arn(value: str) -> str:
    if not MODEL_PACKAGE_ARN.match(value):
        raise ValueError(
            "not a SageMaker model package version ARN; expected "
            "arn:<partition>:sagemaker:<region>:<account>:model-package/<group>/<version>, "
            "e.g. arn:aws:sagemaker:eu-west-1:123456789012:model-package/mlopskit-prod-models/3"
        )
    return value


def _json_path(value: str) -> str:
    if not _JSON_PATH.match(value):
        raise ValueError("expected a JSONPath expression starting with '$', e.g. '$' or '$[1:]'")
    return value


def _batch_input_prefix(value: str) -> str:
    if not value.startswith(DataPrefix.BATCH_TRANSFORM) or not _S3_PREFIX.match(value):
        raise ValueError(
            f"expected a key prefix under the data bucket's {DataPrefix.BATCH_TRANSFORM} (where the SageMaker role "
            f"may read), ending in '/', of letters, digits and !_.()-, e.g. {DataPrefix.BATCH_TRANSFORM}input/"
        )
    return value


def _line_content_type(value: str) -> str:
    if value not in LINE_CONTENT_TYPES:
        allowed = ", ".join(LINE_CONTENT_TYPES)
        raise ValueError(f"not a content type batch transform can split and join by line; allowed: {allowed}")
    return value


ModelPackageArn = Annotated[str, AfterValidator(_model_package_arn)]
JsonPath = Annotated[str, AfterValidator(_json_path)]
Schedule = Annotated[str, AfterValidator(_schedule)]


_SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_SECURITY_GROUP_ID = re.compile(r"^sg-[0-9a-f]{8,17}$")


def _subnet_ids(value: list[str]) -> list[str]:
    bad = [item for item in value if not _SUBNET_ID.match(item)]
    if bad or not value:
        raise ValueError(f"expected one or more subnet ids such as subnet-0123456789abcdef0, got {bad or value}")
    return value


def _security_group_ids(value: list[str]) -> list[str]:
    bad = [item for item in value if not _SECURITY_GROUP_ID.match(item)]
    if bad or not value:
        raise ValueError(f"expected one or more security group ids such as sg-0123456789abcdef0, got {bad or value}")
    return value


def _s3_uri(value: str) -> str:
    if not value.startswith("s3://") or len(value) <= len("s3://"):
        raise ValueError("expected an S3 URI such as s3://bucket/models/model.tar.gz")
    return value


def _s3_folder(value: str) -> str:
    if not S3_FOLDER.match(value):
        raise ValueError("expected an S3 folder such as s3://bucket/pipeline-runs/run/baseline/ (ending in /)")
    return value


def _comma_list(value: Any) -> Any:
    """`-c dev.pipeline.vpc.subnet_ids=subnet-1,subnet-2` arrives as one string."""
    return [item.strip() for item in value.split(",") if item.strip()] if isinstance(value, str) else value


# Lists, which the command line (`-c`) gives as one comma-separated string.
SubnetIds = Annotated[list[str], BeforeValidator(_comma_list), AfterValidator(_subnet_ids)]
SecurityGroupIds = Annotated[list[str], BeforeValidator(_comma_list), AfterValidator(_security_group_ids)]
HostingInstanceTypes = Annotated[tuple[HostingInstanceType, ...], BeforeValidator(_comma_list)]
TransformInstanceTypes = Annotated[tuple[TransformInstanceType, ...], BeforeValidator(_comma_list)]
S3Uri = Annotated[str, AfterValidator(_s3_uri)]
BatchInputPrefix = Annotated[str, AfterValidator(_batch_input_prefix)]
S3Folder = Annotated[str, AfterValidator(_s3_folder)]
LineContentType = Annotated[str, AfterValidator(_line_content_type)]
