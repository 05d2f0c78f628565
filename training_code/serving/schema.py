"""What a request must provide: the model's features, in order; the label column is allowed and ignored."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property


@dataclass(frozen=True)
class Schema:
    feature_names: tuple[str, ...]
    label_column: str

    @cached_property
    def columns(self) -> frozenset[str]:
        return frozenset((*self.feature_names, self.label_column))

    def describe_column(self, column: int) -> str:
        return f"column {column} ({self.feature_names[column - 1]})" if column <= len(self.feature_names) else ""
