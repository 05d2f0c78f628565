"""Builds the whole CDK app from its context: one stage per selected stage config, security checks on all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk import App

from infra.config import load_stage_configs
from infra.security import enable_security_checks
from infra.stage import MlopsStage

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CDK_JSON = PROJECT_ROOT / "cdk.json"


def build_app(app: App) -> list[MlopsStage]:
    stages = [MlopsStage(app, config) for config in load_stage_configs(app.node.get_all_context())]
    enable_security_checks(app)
    return stages


def cdk_json_context(path: Path = CDK_JSON) -> dict[str, Any]:
    """The context that `npx cdk` passes to app.py, for building the app in-process (tests, tools)."""
    return json.loads(path.read_text())["context"]
