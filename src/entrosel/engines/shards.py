"""Split one scoring run into shards that run anywhere and merge into the same file.

A shard is a fixed slice of the input: blocks of ``BLOCK`` consecutive records, dealt out
round-robin (block ``b`` belongs to shard ``b % N``). The LM scorer batches within the
same blocks, so a sharded run forms the very batches a single run forms and writes the
same bytes. ``--shard I/N`` runs one shard (a Slurm array task); the Ray engine runs all N.

On disk, beside ``SCORES``::

    SCORES.shards/00003-of-00008.jsonl   the shard's rows (input index in column "index")
    SCORES.shards/00003-of-00008.done    completion marker: what ran, how many rows, options,
                                         and the input's and model's fingerprint
    SCORES                               merged by index once every marker is there

A marker's fingerprint of the input (and model) is :func:`entrosel.io.fingerprint.path_fingerprint`
(size, modification time, sampled hash per file): a shard whose input was rewritten since is
scored again, and shards from different versions are never merged.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from entrosel.errors import InputError

BLOCK = 4096


def block_of(record_index: int) -> int:
    """The block a record belongs to; the LM scorer never batches across blocks."""
    return record_index // BLOCK


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0-based)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise InputError(f"--shard I/N needs 0 <= I < N, not {self.index}/{self.count}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"I/N"`` as on the command line."""
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not m:
            raise InputError(f"--shard takes I/N (e.g. 3/8, or $SLURM_ARRAY_TASK_ID/8), not {text!r}")
        return cls(int(m.group(1)), int(m.group(2)))

    def owns(self, record_index: int) -> bool:
        return block_of(record_index) % self.count == self.index

    @property
    def name(self) -> str:
        return f"{self.index:05d}-of-{self.count:05d}"


def shard_folder(output: str | Path) -> Path:
    return Path(f"{output}.shards")


def shard_output(output: str | Path, shard: Shard) -> Path:
    """Where a shard writes its rows: JSONL whatever ``output`` is, as floats survive it
    exactly; the merge writes ``output``'s format."""
    return shard_folder(output) / f"{shard.name}.jsonl"


def marker_path(output: str | Path, shard: Shard) -> Path:
    return shard_folder(output) / f"{shard.name}.done"


def read_marker(output: str | Path, shard: Shard) -> dict[str, Any] | None:
    path = marker_path(output, shard)
    return json.loads(path.read_text()) if path.exists() else None


# keys of a marker's options that say which content was read: when only they differ, the
# input (or model) was rewritten since, and the shard is scored again
CONTENT_KEYS = ("input_content", "model_content")


def finished_marker(output: str | Path, shard: Shard, options: dict[str, Any]) -> dict[str, Any] | None:
    """The shard's marker when it already finished with these ``options`` (a rerun skips
    it), else None: also when only the content it read has changed since (its rows are
    stale and are scored again). A marker left by other options is an error: their rows
    must not be mixed."""
    marker = read_marker(output, shard)
    if marker is None:
        return None
    if marker["options"] != options:
        changed = sorted(k for k in set(marker["options"]) | set(options)
                         if marker["options"].get(k) != options.get(k))
        if set(changed) <= set(CONTENT_KEYS):
            return None
        raise InputError(f"shard {shard.index}/{shard.count} was scored with other options "
                         f"({', '.join(changed)}); use the same options, or delete "
                         f"{shard_folder(output)} to start over", marker_path(output, shard))
    return marker


def finished_count(output: str | Path, count: int, options: dict[str, Any]) -> int:
    """How many of the ``count`` shards of ``output`` have finished with these ``options``
    (input and model content included)."""
    markers = (read_marker(output, Shard(i, count)) for i in range(count))
    return sum(m is not None and m["options"] == options for m in markers)
