"""Deployment manifests: which approved model package version each stage serves, and what it served before.

One small JSON file per stage under infra/deployments/, committed with the code: `mlops promote` and
`mlops rollback` write it, the stage config reads its current version as `inference.model_package_arn` (a context
value still wins), and the diff of a promotion is a reviewable change. `mlops --local` keeps the manifests of the
embedded AWS in its own directory instead, which nothing on the synth side reads. CDK-free, like infra/naming.py.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

MANIFEST_DIR = Path(__file__).resolve().parent / "deployments"
MANIFEST_FORMAT_VERSION = 1
MODEL_PACKAGE_ARN = re.compile(
    r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/(?P<group>[A-Za-z0-9-]{1,63})/(?P<version>\d+)$"
)


S3_FOLDER = re.compile(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/(\S+/)?$")


BASELINE_KEYS = {"uri", "features", "model_constraints"}


class ManifestError(ValueError):
    pass


@dataclass(frozen=True)
class DriftBaseline:
    """The served version's data-quality baseline as its pipeline run wrote it: the S3 folder holding statistics.json
    and constraints.json, and the feature that each column of a captured request is (`_c0` is features[0])."""

    uri: str
    features: tuple[str, ...]
    # The model-quality constraints the version registered (accuracy below the stage's threshold is a violation);
    # None for a version registered without them.
    model_constraints: str | None = None

    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = {"uri": self.uri, "features": list(self.features)}
        if self.model_constraints is not None:
            document["model_constraints"] = self.model_constraints
        return document

    @classmethod
    def from_document(cls, document: Any) -> DriftBaseline:
        if not isinstance(document, dict) or not {"uri", "features"} <= set(document) <= BASELINE_KEYS:
            raise ManifestError("baseline must be an object of uri, features and optionally model_constraints")
        uri, features = document["uri"], document["features"]
        if not isinstance(uri, str) or not S3_FOLDER.match(uri):
            raise ManifestError(f"baseline uri {uri!r} is not an S3 folder (s3://bucket/prefix/)")
        if not isinstance(features, list) or not features or not all(isinstance(f, str) and f for f in features):
            raise ManifestError("baseline features must be a non-empty list of feature names")
        model_constraints = document.get("model_constraints")
        if model_constraints is not None and not (
            isinstance(model_constraints, str) and model_constraints.startswith("s3://")
        ):
            raise ManifestError(f"baseline model_constraints {model_constraints!r} is not an S3 URI")
        return cls(uri, tuple(features), model_constraints)


@dataclass(frozen=True)
class Deployment:
    model_package_arn: str
    action: Literal["promote", "rollback"]
    at: str
    by: str
    reason: str = ""
    # Why a promotion went ahead although it skipped a check (`mlops promote --force`); empty when it did not.
    forced: str = ""
    # What monitoring compares the version's traffic with; None for a version registered without one.
    baseline: DriftBaseline | None = None

    @property
    def version(self) -> int:
        return int(_arn_match(self.model_package_arn)["version"])

    @property
    def group(self) -> str:
        return _arn_match(self.model_package_arn)["group"]

    def document(self) -> dict[str, Any]:
        # `forced` and `baseline` only where they were: older manifests, and many entries, have neither.
        document: dict[str, Any] = {
            name: getattr(self, name) for name in TEXT_FIELDS if name != "forced" or self.forced
        }
        if self.baseline is not None:
            document["baseline"] = self.baseline.document()
        return document


# A deployment's fields that the manifest holds as text (the baseline is an object of its own).
TEXT_FIELDS = tuple(f.name for f in fields(Deployment) if f.name != "baseline")


@dataclass(frozen=True)
class Manifest:
    stage: str
    history: tuple[Deployment, ...] = field(default=())

    @property
    def current(self) -> Deployment | None:
        return self.history[-1] if self.history else None

    @property
    def replaced(self) -> Deployment | None:
        """What was served right before the current deployment (for a rollback: what it rolled back from)."""
        return self.history[-2] if len(self.history) > 1 else None

    def ever_served(self, arn: str) -> bool:
        return any(deployment.model_package_arn == arn for deployment in self.history)

    def serving_before(self) -> Deployment | None:
        """The deployment that the current one replaced, following earlier rollbacks back to what they restored."""
        arns = self._served_arns()
        return self._find(arns[-2]) if len(arns) > 1 else None

    def with_deployment(self, deployment: Deployment) -> Manifest:
        return Manifest(self.stage, (*self.history, deployment))

    def _served_arns(self) -> list[str]:
        """The stack of versions served, as promotions pushed and rollbacks popped them."""
        served: list[str] = []
        for deployment in self.history:
            if deployment.action == "rollback" and served:  # a hand-edited history may start with a rollback
                served.pop()
            # Serving the same version twice in a row is one entry: rolling back to it would change nothing.
            if not served or served[-1] != deployment.model_package_arn:
                served.append(deployment.model_package_arn)
        return served

    def _find(self, arn: str) -> Deployment:
        return next(deployment for deployment in reversed(self.history) if deployment.model_package_arn == arn)

    def to_json(self) -> str:
        document = {
            "format_version": MANIFEST_FORMAT_VERSION,
            "stage": self.stage,
            "history": [deployment.document() for deployment in self.history],
        }
        return json.dumps(document, indent=2) + "\n"


def _arn_match(arn: str) -> re.Match[str]:
    match = MODEL_PACKAGE_ARN.match(arn)
    if not match:
        raise ManifestError(f"{arn!r} is not a model package version ARN")
    return match


def manifest_path(stage: str, directory: Path | None = None) -> Path:
    return (directory or MANIFEST_DIR) / f"{stage}.json"


def load(stage: str, directory: Path | None = None) -> Manifest:
    """The stage's manifest; a stage never promoted to has an empty one."""
    path = manifest_path(stage, directory)
    if not path.exists():
        return Manifest(stage)
    try:
        document = json.loads(path.read_text())
        if not isinstance(document, dict):
            raise ManifestError("expected a JSON object")
        if document.get("format_version") != MANIFEST_FORMAT_VERSION:
            raise ManifestError(f"format_version {document.get('format_version')!r} is not {MANIFEST_FORMAT_VERSION}")
        if document.get("stage") != stage:
            raise ManifestError(f"it names stage {document.get('stage')!r}")
        if not isinstance(document["history"], list):
            raise ManifestError("history is not a list")
        history = tuple(_deployment(entry) for entry in document["history"])
        for deployment in history:
            not_text = [name for name in TEXT_FIELDS if not isinstance(getattr(deployment, name), str)]
            if not_text:
                raise ManifestError(f"{', '.join(not_text)} of a deployment must be text")
            _arn_match(deployment.model_package_arn)
            if deployment.action not in ("promote", "rollback"):
                raise ManifestError(f"action {deployment.action!r} is neither promote nor rollback")
    except (ValueError, KeyError, TypeError) as error:
        raise ManifestError(f"{path}: {error}") from None
    return Manifest(stage, history)


def _deployment(entry: Any) -> Deployment:
    if not isinstance(entry, dict) or entry.get("baseline") is None:
        return Deployment(**entry)
    return Deployment(**{**entry, "baseline": DriftBaseline.from_document(entry["baseline"])})


def save(manifest: Manifest, directory: Path | None = None) -> Path:
    path = manifest_path(manifest.stage, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(manifest.to_json())
    return path


def deployed_model_package_arn(stage: str, directory: Path | None = None) -> str | None:
    current = load(stage, directory).current
    return current.model_package_arn if current else None
