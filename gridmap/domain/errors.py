"""Errors a user can cause. Each has a ``code`` for programs and a message a grid leader understands."""

from __future__ import annotations


class GridmapError(Exception):
    """Base of every error caused by input or state, not by a bug. Shown without a traceback."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code


class NotFound(GridmapError):
    code = "not_found"


class InvalidInput(GridmapError):
    code = "invalid_input"
