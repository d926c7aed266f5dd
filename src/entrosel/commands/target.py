"""``entrosel select target``: the pool records closest to a target set, written unchanged."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from entrosel.pool import Source
from entrosel.scoring.base import RunSummary
from entrosel.selection.target import TargetSelector


def select_target(input: Source, output: str | Path, *, target: Source,
                  scores_out: str | Path | None = None,
                  **options: Any) -> tuple[TargetSelector, RunSummary]:
    """Fit :class:`TargetSelector` (``options``) on ``target``, select from ``input`` and write
    the selected records in selection order; ``scores_out`` gets every scored record's
    ``index``, ``id`` (if any), score and ``rank`` in the selection (empty when not picked)."""
    selector = TargetSelector(target=target, **options)
    return selector, selector.select_file(input, output, scores_out=scores_out)
