"""The serving image's Dockerfile: what it copies is all the server imports, its pins are the project's, root."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.distributions import installed_closure, pins, provided_by, requirements

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BUILD_CONTEXT = PROJECT_ROOT / "training_code"
DOCKERFILE = BUILD_CONTEXT / "Dockerfile"
IMAGE_REQUIREMENTS = BUILD_CONTEXT / "serving" / "requirements.txt"


def instructions() -> list[tuple[str, str]]:
    lines = re.sub(r"\\\n", " ", DOCKERFILE.read_text()).splitlines()
    return [
        (keyword.upper(), rest.strip())
        for keyword, _, rest in (line.partition(" ") for line in lines)
        if keyword and not keyword.startswith("#")
    ]


def test_image_runs_the_server_as_root_as_sagemaker_expects_with_the_serve_argument():
    """AWS (Custom Inference Code with Hosting Services): SageMaker expects containers to run as root."""
    steps = instructions()
    assert [value for keyword, value in steps if keyword == "USER"] == []
    assert ("ENTRYPOINT", '["python", "-m", "training_code.serving"]') in steps
    assert ("CMD", '["serve"]') in steps
    assert any(keyword == "ARG" and value.startswith("BASE_IMAGE=") for keyword, value in steps)


def test_image_pins_are_the_projects_pins():
    """The tests and local runs install the image's own list (requirements-training.txt includes it), and a package
    pinned elsewhere too (numpy, for the SageMaker SDK) is pinned the same there."""
    image, project = pins(IMAGE_REQUIREMENTS), pins(PROJECT_ROOT / "requirements-dev.txt")
    assert image, "the image installs its server"
    assert {name: project.get(name) for name in image} == image
    assert "torch" not in image, "the serving image loads no torch; cold starts depend on it"


def test_what_the_server_imports_is_in_the_image():
    """Import the entry point and report every module loaded: project modules must be among the copied files, and
    third-party ones must come from the image's requirements (or what those depend on)."""
    copied = [value.split()[:-1] for keyword, value in instructions() if keyword == "COPY"]
    copied_sources = {source for sources in copied for source in sources}
    probe = "import json, sys, training_code.serving.__main__; print(json.dumps({n: getattr(m, '__file__', None) or '' for n, m in sys.modules.items()}))"  # noqa: E501
    result = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True)
    loaded: dict[str, str] = json.loads(result.stdout.splitlines()[-1])

    project_files = {
        Path(file).resolve().relative_to(BUILD_CONTEXT).as_posix()
        for name, file in loaded.items()
        if name.split(".")[0] == "training_code" and file
    }
    not_copied = {
        file for file in project_files if file not in copied_sources and file.split("/")[0] not in copied_sources
    }
    assert not_copied == set(), "imported by the server but not copied into the image"

    from_image = provided_by(installed_closure(requirements(IMAGE_REQUIREMENTS)))
    allowed = set(sys.stdlib_module_names) | {"training_code"} | from_image
    outside = {name.split(".")[0] for name in loaded} - allowed
    assert {name for name in outside if not name.startswith("_")} == set()
