"""Where local runs keep their state: one directory (default `.local/` in the project, or $MLOPS_LOCAL_DIR)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pipelines.bundle import PROJECT_ROOT

LOCAL_DIR_VARIABLE = "MLOPS_LOCAL_DIR"
DEFAULT_LOCAL_DIR = PROJECT_ROOT / ".local"


@dataclass(frozen=True)
class LocalLayout:
    root: Path

    @classmethod
    def from_environment(cls) -> LocalLayout:
        configured = os.environ.get(LOCAL_DIR_VARIABLE)
        return cls(Path(configured).resolve() if configured else DEFAULT_LOCAL_DIR)

    @property
    def aws_state_file(self) -> Path:
        """The embedded AWS's buckets, objects and registry, between commands."""
        return self.root / "aws-state.pickle"

    @property
    def lock_file(self) -> Path:
        return self.root / "aws-state.lock"

    @property
    def endpoint_file(self) -> Path:
        """Written while `mlops local aws` runs: its URL and process id."""
        return self.root / "aws-endpoint.json"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    def run_dir(self, execution_id: str) -> Path:
        """A local execution's record (run.json) and jobs: each job's /opt/ml tree, its log and its failure reason."""
        return self.runs_dir / execution_id

    @property
    def samples_dir(self) -> Path:
        """The bundled sample data as runs upload it: one file per row count, written again by each run."""
        return self.root / "samples"
