"""SageMaker Pipeline builder, step scripts, operator CLI and local runner."""

import os

# SDK v2 is pinned on purpose (it builds definitions offline; see shared DESIGN.md section 2): skip its v3 banner.
os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")

import logging  # noqa: E402

# The SDK logs at import that it found no defaults files: it is given its whole config explicitly instead.
logging.getLogger("sagemaker.config").setLevel(logging.WARNING)
