"""What a hosting instance type allows."""

from __future__ import annotations

import re

# Families with local NVMe instance storage, which the hardware encrypts: SageMaker refuses a volume KMS key for them.
# A "d" in the suffix after the generation marks most (m5d, c6id, r5dn, g4dn, p3dn, p4d); these have none.
_LOCAL_STORAGE_FAMILY = re.compile(r"^[a-z]+[0-9]+[a-z-]*d[a-z-]*$")
_LOCAL_STORAGE_FAMILIES = frozenset({"g5", "g6", "g6e", "gr6", "p5", "p5e", "p5en", "trn1", "trn1n", "trn2"})


def supports_volume_kms_key(instance_type: str) -> bool:
    family = instance_type.split(".")[1]
    return not (family in _LOCAL_STORAGE_FAMILIES or _LOCAL_STORAGE_FAMILY.match(family))
