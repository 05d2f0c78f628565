"""Builds the whole CDK app from its context: one stage per selected stage config, security checks on all."""

from __future__ import annotations

from aws_cdk import App

from infra.config import load_stage_configs
from infra.security import enable_security_checks
from infra.stage import MlopsStage


def build_app(app: App) -> list[MlopsStage]:
    stages = [MlopsStage(app, config) for config in load_stage_configs(app.node.get_all_context())]
    enable_security_checks(app)
    return stages
