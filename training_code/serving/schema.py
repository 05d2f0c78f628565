"""What a request must provide: the model's features, in order (the label column is allowed and ignored), each cell
as training's encoding takes it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property

from training_code.features import NUMERIC, Encoding, EncodingError
from training_code.serving.errors import PayloadError


@dataclass(frozen=True)
class Schema:
    encoding: Encoding

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.encoding.feature_names

    @property
    def label_column(self) -> str:
        return self.encoding.label_column

    @cached_property
    def columns(self) -> frozenset[str]:
        return frozenset((*self.feature_names, self.label_column))

    @cached_property
    def numeric(self) -> bool:
        """Every feature a number: a cell's code is its value, which numpy's parsers may read in bulk."""
        return not self.encoding.categorical

    def describe_column(self, column: int) -> str:
        return f"column {column} ({self.feature_names[column - 1]})" if column <= len(self.feature_names) else ""

    def code(self, value: object, row: int, column: int, from_text: bool) -> float:
        """One cell's code (1-based row and column); a PayloadError names the row, the column and the problem."""
        spec = self.encoding.columns[column - 1]
        if not from_text and spec.kind == NUMERIC and value is not None and type(value) not in (int, float):
            # JSON numbers are numbers: a string or a boolean in a numeric column is a client's mistake.
            return self._refuse(f"{json.dumps(value)[:40]} is not a number", row, column)
        try:
            return spec.code(value)
        except EncodingError as error:
            return self._refuse(str(error), row, column)

    def _refuse(self, problem: str, row: int, column: int) -> float:
        raise PayloadError(f"row {row}, {self.describe_column(column)}: {problem}", row=row, column=column)
