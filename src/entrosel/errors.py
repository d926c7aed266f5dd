"""Errors a user can cause, reported as ``file:line: reason``."""
from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad input or usage: the CLI prints it and exits with code 2.

    ``path`` and ``line`` locate the problem (either may be ``None``); ``index`` is the
    0-based record number where a record is at fault.
    """

    def __init__(self, reason: str, path: str | Path | None = None,
                 line: int | None = None, index: int | None = None) -> None:
        self.reason = reason
        self.path = None if path is None else str(path)
        self.line = line
        self.index = index
        super().__init__(self.location() + reason)

    def location(self) -> str:
        if self.path is None:
            return ""
        if self.line is None:
            return f"{self.path}: "
        return f"{self.path}:{self.line}: "
