#!/usr/bin/env python3
"""CDK entry point: `npx cdk synth` (every stage) or `npx cdk synth -c stage=dev`."""

import sys

from aws_cdk import App

from infra.assembly import build_app
from infra.config import StageConfigError


def main() -> None:
    app = App()
    try:
        build_app(app)
    except StageConfigError as error:
        sys.exit("\n".join(f"invalid stage config: {problem}" for problem in str(error).splitlines()))
    app.synth()


if __name__ == "__main__":
    main()
