"""Where the session's synthesized apps are deployed for access tests: each stack bound to an account and region."""

from __future__ import annotations

from tests.conftest import DELIVERY_REGION, SynthesizedApp
from tests.infra.access.deployment import Deployment, Environment

# The app without the delivery pipeline is environment-agnostic: `cdk deploy` puts every stage where the operator's
# credentials point. Here all stages share one account, so that only their policies keep them apart.
STAGES_ACCOUNT = "123456789012"
STAGES_REGION = "eu-west-1"
# With the delivery pipeline, staging and prod are synthesized for their accounts (tests/conftest.py DELIVERY_CONTEXT);
# dev stays environment-agnostic and goes to an account of its own.
DEV_ACCOUNT = "333333333333"


def stages_deployment_of(app: SynthesizedApp) -> Deployment:
    return Deployment.of(app.stacks.values(), default=Environment(STAGES_ACCOUNT, STAGES_REGION))


def delivery_deployment_of(app: SynthesizedApp) -> Deployment:
    return Deployment.of(app.stacks.values(), default=Environment(DEV_ACCOUNT, DELIVERY_REGION))
