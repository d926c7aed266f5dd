"""Score files: what ``entrosel score ...`` writes, one row per record with an ``index``
column naming the input record, read back by the steps that choose by a score."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from entrosel.errors import InputError
from entrosel.io.readers import read_records


def read_scores(path: str | Path, by: str | None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """A score file's ``index`` column, its ``by`` column and its ``tokens`` column (if any)."""
    if not Path(path).exists():
        raise InputError("--scores: no such score file; make it with `entrosel score ...`", path)
    rows = [r.data for r in read_records(path)]
    columns = list(rows[0])
    for needed in ["index"] + ([by] if by else []):
        if needed not in rows[0]:
            named = "--by: " if needed == by else ""
            raise InputError(f"{named}score file has no column {needed!r} (columns: "
                             f"{', '.join(columns)}); make it with `entrosel score ...`", path)
    try:
        index = np.array([int(r["index"]) for r in rows], dtype=np.int64)
        values = None if by is None else np.array(
            [np.nan if r.get(by) in (None, "") else float(r[by]) for r in rows], dtype=np.float64)
        tokens = (np.array([int(r["tokens"]) for r in rows], dtype=np.int64)
                  if "tokens" in rows[0] else None)
    except (TypeError, ValueError) as e:
        raise InputError(f"score file has a non-numeric value: {e}", path) from None
    return index, values, tokens
