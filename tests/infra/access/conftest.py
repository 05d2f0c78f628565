"""The session's synthesized apps as deployments (tests/infra/access/accounts.py says where each stack runs)."""

from __future__ import annotations

import pytest

from tests.infra.access.accounts import delivery_deployment_of, stages_deployment_of
from tests.infra.access.deployment import Deployment


@pytest.fixture(scope="session")
def stages_deployment(synthesized_app) -> Deployment:
    return stages_deployment_of(synthesized_app)


@pytest.fixture(scope="session")
def delivery_deployment(delivery_app) -> Deployment:
    return delivery_deployment_of(delivery_app)
