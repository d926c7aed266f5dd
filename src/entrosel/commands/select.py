"""``entrosel select NAME`` as functions on paths: thin wrappers over the registered
selectors (:data:`entrosel.selection.SELECTORS`), which write the selected records,
unchanged, in selection order."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from entrosel.pool import Source
from entrosel.scoring.base import RunSummary
from entrosel.selection import SELECTORS, ZipSelector, write_selection
from entrosel.io.scores import read_scores

__all__ = ["read_scores", "select_by_score", "select_zip_to_file", "write_selection"]


def select_zip_to_file(input: Source, output: str | Path, *, scores_out: str | Path | None = None,
                       **options: Any) -> tuple[ZipSelector, RunSummary]:
    """Run :class:`ZipSelector` with ``options`` and write the selection (and its scores)."""
    selector = ZipSelector(**options)
    return selector, selector.select_file(input, output, scores_out=scores_out)


def select_by_score(input: Source, output: str | Path, *, method: str, **options: Any) -> RunSummary:
    """``entrosel select prune|topk|band|random``: the selector ``method`` with ``options``
    (``scores``: a file with an ``index`` column, as ``entrosel score`` writes; ``by``: its
    column), written to ``output``."""
    return SELECTORS[method](**options).select_file(input, output)
