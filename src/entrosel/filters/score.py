"""``filter score``: keep records whose score lies in a band (CCNet-style perplexity bands,
a compression-ratio floor, an information ceiling)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from entrosel.errors import InputError
from entrosel.filters.base import Batch, FILTERS, Filter, Removal
from entrosel.params import Param, check_range, option
from entrosel.io.readers import read_records
from entrosel.io.scores import read_scores
from entrosel.pool import InputOptions, Source


@FILTERS.register("score")
@dataclass
class ScoreFilter(Filter):
    """Keep records with ``min <= score <= max`` in column ``by`` of ``scores`` (a file with
    an ``index`` column, as ``entrosel score`` writes, for this same input). A record with an
    empty or NaN score is removed (``no_score``); a record missing from the file is an error."""

    scores: str | None = option(None, "score file with an 'index' column (from `entrosel score "
                                "...`)", param=Param(str, required=True), metavar="FILE")
    by: str | None = option(None, "score column, e.g. perplexity", param=Param(str, required=True),
                            metavar="COLUMN")
    min: float | None = option(None, "keep scores >= X", param=Param(float), metavar="X")
    max: float | None = option(None, "keep scores <= X", param=Param(float), metavar="X")

    help: ClassVar[str] = "keep records whose score lies in a band"

    @classmethod
    def example_options(cls, folder: Path) -> dict[str, Any]:
        return {"by": "compression_ratio", "max": 2.0}

    def _check(self) -> None:
        if self.min is None and self.max is None:
            raise InputError("give --min and/or --max: the band of scores to keep")
        check_range(self.get_params(), "min", "max")

    def _start(self, source: Source, options: InputOptions) -> None:
        if not Path(self.scores).exists():
            raise InputError("no such score file for --scores (make it with `entrosel score ...`)",
                             self.scores)
        rows = read_records(self.scores)
        first = next(rows, None)
        rows.close()
        if first is not None and self.by not in first.data:
            raise InputError(f"--by {self.by!r} is not a column of the score file (columns: "
                             f"{', '.join(map(str, first.data))})", self.scores)
        index, values, _ = read_scores(self.scores, self.by)
        if len(index) and index.min() < 0:
            raise InputError(f"score file has a negative index ({index.min()})", self.scores)
        size = int(index.max()) + 1 if len(index) else 0
        self.values_ = np.full(size, np.nan)
        self._present = np.zeros(size, dtype=bool)
        self.values_[index] = values
        self._present[index] = True

    def judge(self, batch: Batch) -> list[Removal | None]:
        out: list[Removal | None] = []
        for record, _ in batch:
            i = record.index
            if i >= len(self._present) or not self._present[i]:
                raise InputError(f"record {i} has no row in the score file {self.scores}; "
                                 "score this same input", record.path, record.line, i)
            value = float(self.values_[i])
            if math.isnan(value):
                out.append(Removal("no_score", f"{self.by} is empty"))
            elif self.min is not None and value < self.min:
                out.append(Removal(f"min_{self.by}", f"{self.by} {value:.6g} < --min {self.min:g}",
                                   value=value, threshold=self.min))
            elif self.max is not None and value > self.max:
                out.append(Removal(f"max_{self.by}", f"{self.by} {value:.6g} > --max {self.max:g}",
                                   value=value, threshold=self.max))
            else:
                out.append(None)
        return out
