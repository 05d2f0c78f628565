"""Runs one of the project's step modules inside a SageMaker processing container (standard library only).

    python3 run_step.py --bundle-dir /opt/ml/processing/input/bundle MODULE [ARGUMENTS...]

The project's code arrives as the bundle the training jobs use: the one file in BUNDLE_DIR, a gzipped tar named
by its content hash (CDK keeps only the last suffix, so it ends in .gz). This unpacks it and runs MODULE as __main__.
"""

import runpy
import sys
import tarfile
import tempfile
from pathlib import Path


def main() -> None:
    if len(sys.argv) < 4 or sys.argv[1] != "--bundle-dir":
        sys.exit("usage: run_step.py --bundle-dir DIR MODULE [ARGUMENTS...]")
    bundle_dir, module, arguments = Path(sys.argv[2]), sys.argv[3], sys.argv[4:]
    bundles = sorted(path for path in bundle_dir.iterdir() if path.is_file())
    if len(bundles) != 1:
        sys.exit(f"expected one code bundle in {bundle_dir}, found {[path.name for path in bundles]}")
    code = tempfile.mkdtemp(prefix="code-")
    with tarfile.open(bundles[0]) as archive:
        archive.extractall(code, filter="data")
    sys.path.insert(0, code)
    sys.argv = [module, *arguments]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
