"""A request the server cannot answer, as the JSON error body and 4xx status it is answered with."""

from __future__ import annotations

import json


class PayloadError(ValueError):
    """`status` is the HTTP status to answer with; `row` and `column` say where in the body, where known."""

    def __init__(self, message: str, status: int = 400, row: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.row = row
        self.column = column

    def body(self) -> bytes:
        error: dict[str, object] = {"error": str(self)}
        if self.row is not None:
            error["row"] = self.row
        if self.column is not None:
            error["column"] = self.column
        return json.dumps(error).encode()
