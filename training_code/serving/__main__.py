"""The container entry point: SageMaker runs the image with the argument `serve`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from training_code.contract import SERVE_COMMAND
from training_code.serving.predictor import ModelLoadError
from training_code.serving.server import ServerSettings, SettingsError, serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training_code.serving", description=__doc__)
    parser.add_argument("command", nargs="?", choices=[SERVE_COMMAND], default=SERVE_COMMAND)
    parser.add_argument("--model-dir", type=Path, help="the model artifact directory (default /opt/ml/model)")
    parser.add_argument("--host", help="default: 0.0.0.0, every interface of the container")
    parser.add_argument("--port", type=int, help="default: SAGEMAKER_BIND_TO_PORT or 8080")
    parser.add_argument("--workers", type=int, help="default: SAGEMAKER_MODEL_SERVER_WORKERS or one per core")
    parser.add_argument("--max-payload-mb", type=int, help="default: SAGEMAKER_MAX_PAYLOAD_IN_MB or 6")
    arguments = parser.parse_args(argv)
    try:
        settings = ServerSettings.from_environment(
            model_dir=arguments.model_dir,
            host=arguments.host,
            port=arguments.port,
            workers=arguments.workers,
            max_payload_mb=arguments.max_payload_mb,
        )
        serve(settings)
    except (SettingsError, ModelLoadError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
