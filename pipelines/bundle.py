"""The code bundle (sourcedir.tar.gz) that training and processing jobs run: byte-identical for identical sources."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUNDLE_NAME = "sourcedir.tar.gz"
BUILD_DIR = PROJECT_ROOT / ".build"
TRAINING_ENTRY_POINT = "train.py"
STEP_RUNNER = PROJECT_ROOT / "pipelines" / "entrypoints" / "run_step.py"
SERVING_MODULES = ("__init__.py", "predictor.py")


def bundle_members(root: Path = PROJECT_ROOT) -> dict[str, Path]:
    """Archive name -> source file: the training package, the step scripts, the serving forward pass (the evaluation
    scores with it), and the entry point at the root."""
    members = {TRAINING_ENTRY_POINT: root / "pipelines" / "entrypoints" / "train.py"}
    for package in ("training_code", "pipelines/steps"):
        for path in sorted((root / package).glob("*.py")):
            members[path.relative_to(root).as_posix()] = path
    for module in SERVING_MODULES:
        members[f"training_code/serving/{module}"] = root / "training_code" / "serving" / module
    members["pipelines/__init__.py"] = root / "pipelines" / "__init__.py"
    return dict(sorted(members.items()))


def build_bundle(destination: Path, root: Path = PROJECT_ROOT) -> Path:
    """Write the bundle with fixed timestamps, owners and modes, so its hash changes only when the code does."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, path in bundle_members(root).items():
            data = path.read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            archive.addfile(info, io.BytesIO(data))
    destination.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename: concurrent synths (tests run two) never see a half-written bundle.
    descriptor, partial = tempfile.mkstemp(dir=destination.parent, suffix=".partial")
    with os.fdopen(descriptor, "wb") as file, gzip.GzipFile(filename="", mode="wb", fileobj=file, mtime=0) as packed:
        packed.write(buffer.getvalue())
    os.replace(partial, destination)
    return destination
