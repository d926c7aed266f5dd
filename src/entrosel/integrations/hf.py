"""entrosel on a Hugging Face ``datasets.Dataset``: the rows a filter keeps or a selector picks,
as a ``Dataset`` again, every column kept (``pip install 'entrosel[hf]'``).

>>> from entrosel import LengthFilter, ZipSelector
>>> from entrosel.integrations.hf import filter_dataset, select_dataset
>>> clean = filter_dataset(ds, LengthFilter(min_chars=200))      # input order, like Dataset.filter
>>> picked = select_dataset(clean, ZipSelector(budget=1000))     # selection order, like Dataset.select

Both read the rows the way the command line reads a file (the same rendering, options and
errors), so they keep the same rows as ``entrosel filter``/``entrosel select`` on the same data.
``trace_dataset`` gives every row back with why it would be dropped, as columns (the
command line's ``--trace``):

>>> traced = trace_dataset(ds, LengthFilter(min_chars=200))     # + drop_reason, drop_detail
>>> traced.filter(lambda row: row["drop_reason"] is None)       # the rows filter_dataset keeps
"""
from __future__ import annotations

from typing import Any

from entrosel.filters import Filter
from entrosel.io.trace import drop_row
from entrosel.pool import InputOptions
from entrosel.selection import Selector

__all__ = ["filter_dataset", "kept_indices", "select_dataset", "trace_dataset"]


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


def trace_dataset(dataset: Any, step: Filter | Selector, options: InputOptions | None = None, *,
                  prefix: str = "drop") -> Any:
    """Every row of ``dataset``, in input order, with two more columns: ``{prefix}_reason``
    (``None`` for a row the filter keeps or the selector picks, else a reason such as
    ``min_chars``, ``near_duplicate``, ``not_selected``) and ``{prefix}_detail`` (with its
    numbers, as a ``--trace`` row says it: ``17 chars < --min-chars 40``, ``near duplicate of
    id d05, Jaccard 0.81``). ``step`` is fitted (a filter) or has selected (a selector), so
    its learned attributes are set; ``options``: a filter's reading options (a selector has
    its own fields)."""
    _check(dataset)
    if isinstance(step, Filter):
        step.fit(dataset, options)
        removals, label = step.removals(), f"filter {step.name}"
    elif isinstance(step, Selector):
        if options is not None:
            raise TypeError("a selector reads rows by its own fields (text_field=..., template=...); "
                            "pass no options")
        step.select(dataset)
        removals, label = step.removals(range(len(dataset))), f"select {step.name}"
    else:
        raise TypeError(f"expected an entrosel Filter or Selector, got {type(step).__name__}")
    own = dataset["id"] if "id" in dataset.column_names else None

    def id_of(i: int) -> Any:
        return i if own is None or own[i] is None else own[i]

    reasons: list[str | None] = [None] * len(dataset)
    details: list[str | None] = [None] * len(dataset)
    for i, removal in removals.items():
        dup = None if removal.duplicate_of is None else id_of(removal.duplicate_of)
        row = drop_row(id_of(i), i, label, removal, dup)
        reasons[i], details[i] = row["reason"], row["detail"]
    for name in (f"{prefix}_reason", f"{prefix}_detail"):
        if name in dataset.column_names:
            raise ValueError(f"the dataset has a column {name!r} already; pass another prefix=")
    return dataset.add_column(f"{prefix}_reason", reasons).add_column(f"{prefix}_detail", details)
