#!/usr/bin/env python3
"""CDK entry point: `npx cdk synth` (every stage) or `npx cdk synth -c stage=dev`."""

import sys

from infra.node_runtime import silence_end_of_life_banner
from pipelines.sdk import collect_less_often, quiet_sdk

# `npx cdk synth` runs this file directly, without the Makefile's environment: before aws_cdk starts Node, and before
# the stacks import the SageMaker SDK, which announces itself as it is imported.
collect_less_often()
silence_end_of_life_banner()
quiet_sdk()

from aws_cdk import App  # noqa: E402

from infra.config import StageConfigError, load_app_settings  # noqa: E402


def main() -> None:
    app = App()
    try:
        settings = load_app_settings(app.node.get_all_context())
    except StageConfigError as error:
        sys.exit("\n".join(f"invalid stage config: {problem}" for problem in str(error).splitlines()))
    # Imported once the settings are valid: the stacks bring the SageMaker SDK, seconds that a typo need not wait.
    from infra.assembly import build_app

    build_app(app, settings)
    app.synth()


if __name__ == "__main__":
    main()
