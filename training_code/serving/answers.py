"""Predictions to response bodies, piece by piece: a large answer is sent as it is rendered, never held whole.

CSV answers one label per row; JSON, JSON Lines and NumPy add the probability of every class. For a line-based
request (CSV or JSON Lines in) a line-based answer (CSV or JSON Lines out) has one line per input line: a blank line
for a blank line, and for a CSV header the label column's name, so that batch transform joins line with line.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from functools import cached_property

import numpy as np

from training_code.contract import CSV, JSON, NPY
from training_code.serving.payload import HEADER_LINE
from training_code.serving.predictor import softmax

PROBABILITY_DECIMALS = 6
# A JSON Lines answer to a blank line: an empty object keeps the line a JSON value.
BLANK_JSON_LINE = "{}"


class Answer:
    """One response body in the accepted type: `head()`, then `piece()` for each piece of rows in order, then
    `tail()`. `rows` is the number of rows of all pieces (the NumPy header states it first)."""

    def __init__(self, classes: Sequence[str], label_column: str, accept: str, rows: int) -> None:
        self.classes = tuple(classes)
        self.label_column = label_column
        self.accept = accept
        self.rows = rows
        self._pieces = 0

    @cached_property
    def _npy_dtype(self) -> np.dtype:
        return np.dtype(
            [("label", f"<U{max(len(name) for name in self.classes)}"), ("probabilities", "<f4", (len(self.classes),))]
        )

    def head(self) -> bytes:
        if self.accept == JSON:
            return b'{"predictions": ['
        if self.accept == NPY:
            header = io.BytesIO()
            description = {"descr": np.lib.format.dtype_to_descr(self._npy_dtype), "fortran_order": False}
            np.lib.format.write_array_header_1_0(header, {**description, "shape": (self.rows,)})
            return header.getvalue()
        return b""

    def tail(self) -> bytes:
        return b"]}" if self.accept == JSON else b""

    def piece(self, logits: np.ndarray, lines: np.ndarray | None = None) -> bytes:
        """The rows of one piece; `lines` (per input line: a row, BLANK_LINE or HEADER_LINE) where the request and
        the answer are both line-based."""
        first, self._pieces = self._pieces == 0, self._pieces + 1
        labels = [self.classes[index] for index in logits.argmax(axis=1)] if len(logits) else []
        if self.accept == CSV:
            return self._lines(labels, lines, header=self.label_column, blank="")
        probabilities = softmax(logits) if len(logits) else np.empty((0, len(self.classes)), dtype=np.float32)
        if self.accept == NPY:
            records = np.empty(len(labels), dtype=self._npy_dtype)
            records["label"] = labels
            records["probabilities"] = probabilities
            return records.tobytes()
        rounded = np.round(probabilities.astype(np.float64), PROBABILITY_DECIMALS).tolist()
        predictions = [
            json.dumps({"label": label, "probabilities": dict(zip(self.classes, row, strict=True))})
            for label, row in zip(labels, rounded, strict=True)
        ]
        if self.accept == JSON:
            text = ", ".join(predictions)
            return (", " + text if text and not first else text).encode()
        return self._lines(predictions, lines, header=json.dumps({"header": self.label_column}), blank=BLANK_JSON_LINE)

    @staticmethod
    def _lines(rows: list[str], lines: np.ndarray | None, header: str, blank: str) -> bytes:
        if lines is None:
            return "".join(f"{row}\n" for row in rows).encode()
        # Row indices are never negative; the two markers are.
        by_line = (rows[index] if index >= 0 else header if index == HEADER_LINE else blank for index in lines)
        return "".join(f"{line}\n" for line in by_line).encode()


def render(
    logits: np.ndarray,
    classes: Sequence[str],
    accept: str,
    lines: np.ndarray | None = None,
    label_column: str = "label",
) -> bytes:
    """A whole answer at once."""
    answer = Answer(classes, label_column, accept, rows=len(logits))
    return answer.head() + answer.piece(logits, lines) + answer.tail()
