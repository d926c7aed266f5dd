"""``entrosel select ...``: write the selected records, unchanged, in selection order."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from entrosel.commands.score import RunSummary
from entrosel.io.records import rejects_path
from entrosel.io.writers import write_records
from entrosel.pool import Source, pick_records
from entrosel.selection.zip import ZipSelector


def write_selection(source: Source, indices: list[int], output: str | Path,
                    input_format: str | None = None) -> int:
    """Write the records at input ``indices`` to ``output`` in that order."""
    like = source if isinstance(source, (str, Path)) else None
    return write_records(pick_records(source, indices, input_format), output, like=like)


def select_zip_to_file(input: Source, output: str | Path, *, scores_out: str | Path | None = None,
                       **options: Any) -> tuple[ZipSelector, RunSummary]:
    """Run :class:`ZipSelector` with ``options`` and write the selection (and its scores)."""
    t0 = time.perf_counter()
    selector = ZipSelector(**options)
    indices = selector.select(input)
    write_selection(input, indices, output, options.get("input_format"))
    if scores_out is not None:
        rows = []
        for rank, (index, id_, rnd, r2, r3) in enumerate(zip(
                indices, selector.ids_, selector.rounds_, selector.stage2_ratios_,
                selector.stage3_ratios_)):
            row: dict[str, Any] = {"rank": rank, "index": index}
            if id_ is not None:
                row["id"] = id_
            row.update(round=rnd, stage2_ratio=r2, stage3_ratio=r3)
            rows.append(row)
        write_records(rows, scores_out)
    rejected_file = selector.rejects_.write(rejects_path(output))
    return selector, RunSummary(len(indices), len(selector.rejects_), time.perf_counter() - t0,
                                Path(output), rejected_file)
