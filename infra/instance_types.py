"""Which instance types each SageMaker API accepts, read from botocore's service model (what AWS itself validates
requests against), and what a type allows. CDK-free: the stage config validates with it."""

from __future__ import annotations

import difflib
import re
from enum import StrEnum
from functools import cache

import botocore.session


class InstanceUse(StrEnum):
    """The API shape that lists the instance types of one kind of job or endpoint."""

    PROCESSING = "ProcessingInstanceType"
    TRAINING = "TrainingInstanceType"
    HOSTING = "ProductionVariantInstanceType"
    TRANSFORM = "TransformInstanceType"


USE_WORDS = {
    InstanceUse.PROCESSING: "processing",
    InstanceUse.TRAINING: "training",
    InstanceUse.HOSTING: "endpoint",
    InstanceUse.TRANSFORM: "batch transform",
}


@cache
def accepted_instance_types(use: InstanceUse) -> tuple[str, ...]:
    """The enum of the API shape, in the model's order."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    return tuple(model.shape_for(use).enum)


def instance_type_problem(instance_type: str, use: InstanceUse) -> str | None:
    """Why the API refuses this type for this use (with the closest accepted types), or None when it accepts it."""
    accepted = accepted_instance_types(use)
    if instance_type in accepted:
        return None
    close = difflib.get_close_matches(instance_type, accepted, n=3, cutoff=0.8)
    hint = f"; did you mean {' or '.join(close)}?" if close else f"; e.g. {', '.join(accepted[:3])}"
    return f"not a SageMaker {USE_WORDS[use]} instance type (botocore {use} accepts {len(accepted)} types){hint}"


# Families with local NVMe instance storage, which the hardware encrypts: SageMaker refuses a volume KMS key for them.
# A "d" in the suffix after the generation marks most (m5d, c6id, r5dn, g4dn, p3dn, p4d); these have none.
_LOCAL_STORAGE_FAMILY = re.compile(r"^[a-z]+[0-9]+[a-z-]*d[a-z-]*$")
_LOCAL_STORAGE_FAMILIES = frozenset({"g5", "g6", "g6e", "gr6", "p5", "p5e", "p5en", "trn1", "trn1n", "trn2"})


def supports_volume_kms_key(instance_type: str) -> bool:
    family = instance_type.split(".")[1]
    return not (family in _LOCAL_STORAGE_FAMILIES or _LOCAL_STORAGE_FAMILY.match(family))


def same_volume_encryption(instance_type: str, use: InstanceUse) -> tuple[str, ...]:
    """The accepted types whose volume takes a KMS key exactly when this one's does: a job definition that names a
    volume key (or none) is valid for each of them."""
    wanted = supports_volume_kms_key(instance_type)
    return tuple(other for other in accepted_instance_types(use) if supports_volume_kms_key(other) == wanted)
