"""The record as it travels through entrosel, and what happens to bad ones."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from entrosel.errors import InputError
from entrosel.io.atomic import atomic_path

OnError = Literal["raise", "skip"]


@dataclass(slots=True)
class Record:
    """One input row: its parsed fields plus where it came from.

    ``data`` is exactly what the format's parser returned (for JSON, ``json.loads``,
    key order kept). ``raw`` holds the original bytes of a JSONL line so that a JSONL
    output repeats them verbatim.
    """

    index: int
    data: dict[str, Any]
    path: str
    line: int | None = None
    raw: bytes | None = None

    def error(self, reason: str) -> InputError:
        return record_error(reason, self.path, self.line, self.index)


def record_error(reason: str, path: str | Path, line: int | None, index: int) -> InputError:
    """A bad record, reported as ``file:line: record N: reason``."""
    return InputError(f"record {index}: {reason}", path, line, index)


@dataclass
class Rejects:
    """Policy for bad records: ``raise`` stops the run, ``skip`` remembers and goes on."""

    on_error: OnError = "raise"
    rejected: list[dict[str, Any]] = field(default_factory=list)
    # a shard reads every record but answers only for its own: errors of records outside
    # ``scope`` (a predicate on the record index) are left to the shard that owns them
    scope: Callable[[int], bool] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.on_error not in ("raise", "skip"):
            raise InputError(f"--on-error must be 'raise' or 'skip', not {self.on_error!r}")

    def reject(self, error: InputError, raw: str | None = None) -> None:
        if self.scope is not None and error.index is not None and not self.scope(error.index):
            return
        if self.on_error == "raise":
            raise error
        self.rejected.append({"index": error.index, "path": error.path, "line": error.line,
                              "reason": error.reason, "raw": raw})

    def __len__(self) -> int:
        return len(self.rejected)

    def write(self, path: str | Path) -> Path | None:
        """Write the rejected records as JSONL (nothing is written when there are none)."""
        if not self.rejected:
            return None
        with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
            for row in self.rejected:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        return Path(path)


def rejects_path(output: str | Path) -> Path:
    """Where ``--on-error skip`` writes rejected records for an output: ``OUTPUT.rejects.jsonl``."""
    return Path(f"{output}.rejects.jsonl")
