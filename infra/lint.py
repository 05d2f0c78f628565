"""cfn-lint over synthesized templates; used by the test gate and by the `make run` summary alike."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cfnlint.api import lint_file
from cfnlint.config import ManualArgs

# Env-agnostic templates may be deployed to any region: lint them against regions on three continents.
LINT_REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")


@dataclass(frozen=True)
class LintFinding:
    template: str
    rule: str
    severity: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.template}:{self.line} {self.rule} ({self.severity}) {self.message}"


def lint_template(path: Path) -> list[LintFinding]:
    matches = lint_file(path, config=ManualArgs(regions=list(LINT_REGIONS)))
    return [
        LintFinding(
            template=path.name,
            rule=match.rule.id,
            severity=match.rule.severity,
            line=match.linenumber,
            message=match.message,
        )
        for match in matches
    ]
