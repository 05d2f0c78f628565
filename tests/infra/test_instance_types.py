"""Which hosting instance types take a volume KMS key."""

from __future__ import annotations

import pytest

from infra.instance_types import supports_volume_kms_key


@pytest.mark.parametrize(
    "instance_type",
    ["ml.m5.large", "ml.c5.xlarge", "ml.r6g.2xlarge", "ml.p3.2xlarge", "ml.inf2.xlarge", "ml.t2.medium"],
)
def test_ebs_backed_types_take_a_volume_key(instance_type):
    assert supports_volume_kms_key(instance_type)


@pytest.mark.parametrize(
    "instance_type",
    [
        "ml.m5d.large",
        "ml.c6id.xlarge",
        "ml.r5dn.large",
        "ml.g4dn.xlarge",
        "ml.p3dn.24xlarge",
        "ml.p4d.24xlarge",
        "ml.g5.xlarge",
        "ml.g6e.2xlarge",
        "ml.p5.48xlarge",
    ],
)
def test_types_with_local_nvme_storage_do_not(instance_type):
    assert not supports_volume_kms_key(instance_type)
