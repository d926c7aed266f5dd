"""``entrosel measure``: the compression ratio of each data set as a whole (the entropy law's R)."""
from __future__ import annotations

import os
from typing import Any, Iterable

from entrosel.pool import Source
from entrosel.scoring.measure import measure_one

__all__ = ["measure", "measure_one"]


def measure(inputs: Iterable[Source] | Source, **options: Any) -> list[dict[str, Any]]:
    """:func:`measure_one` for each input."""
    if isinstance(inputs, (str, os.PathLike)) or not isinstance(inputs, Iterable):
        inputs = [inputs]  # one input (a name, or something measure_one will refuse)
    return [measure_one(source, **options) for source in inputs]
