"""entrosel on a Hugging Face ``datasets.Dataset``: the rows a filter keeps or a selector picks,
as a ``Dataset`` again, every column kept (``pip install 'entrosel[hf]'``).

>>> from entrosel import LengthFilter, ZipSelector
>>> from entrosel.integrations.hf import filter_dataset, select_dataset
>>> clean = filter_dataset(ds, LengthFilter(min_chars=200))      # input order, like Dataset.filter
>>> picked = select_dataset(clean, ZipSelector(budget=1000))     # selection order, like Dataset.select

Both read the rows the way the command line reads a file (the same rendering, options and
errors), so they keep the same rows as ``entrosel filter``/``entrosel select`` on the same data.
"""
from __future__ import annotations

from typing import Any

from entrosel.filters import Filter
from entrosel.pool import InputOptions
from entrosel.selection import Selector

__all__ = ["filter_dataset", "kept_indices", "select_dataset"]


def _check(dataset: Any) -> None:
    if not (hasattr(dataset, "select") and hasattr(dataset, "features")):
        raise TypeError(f"expected a datasets.Dataset, got {type(dataset).__name__}; for a "
                        "DatasetDict pass one split (ds['train'])")


def kept_indices(dataset: Any, filter: Filter, options: InputOptions | None = None) -> list[int]:
    """The row numbers of ``dataset`` that ``filter`` keeps, in order (``filter`` is fitted:
    ``filter.removed_`` holds why each other row went)."""
    _check(dataset)
    filter.fit(dataset, options)
    return [i for i in range(len(dataset)) if filter.is_kept(i)]


def filter_dataset(dataset: Any, filter: Filter, options: InputOptions | None = None) -> Any:
    """The rows of ``dataset`` that ``filter`` (``LengthFilter``, ``Dedup``, ...) keeps, as a
    ``Dataset`` with every column, in input order. ``options``: how rows become text
    (``InputOptions(text_field="content")``; by default as the command line detects it)."""
    return dataset.select(kept_indices(dataset, filter, options))


def select_dataset(dataset: Any, selector: Selector) -> Any:
    """The rows ``selector`` (``ZipSelector``, ``TargetSelector``, ...) picks from ``dataset``,
    as a ``Dataset`` with every column, in selection order (``selector.selected_`` and the
    selector's other learned attributes are set)."""
    _check(dataset)
    return dataset.select(selector.select(dataset))
