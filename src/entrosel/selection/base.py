"""What every selector shares: ``select(pool)`` returns the input indices of the chosen
records, in selection order; ``subset(pool)`` returns those records as the same kind of
thing the pool was (a list of dicts, a pandas DataFrame, a Hugging Face ``Dataset``).

A selector is a dataclass of hyper-parameters (scikit-learn style) registered in
:data:`SELECTORS`; its fields made with :func:`entrosel.params.option` are its options, on
the command line (``entrosel select NAME``) and in the library alike. Learned attributes
end in ``_`` (``selected_``, ``rejects_``, ...).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from entrosel.errors import InputError
from entrosel.io.records import Rejects, rejects_path
from entrosel.io.writers import output_format_for, write_records
from entrosel.params import Param, option
from entrosel.pool import InputOptions, Source, pick_records, reusable, subset_of
from entrosel.registry import Registry
from entrosel.step import Step
from entrosel.scoring.base import RunSummary

SELECTORS: Registry = Registry("selector")


def write_selection(source: Source, indices: list[int], output: str | Path,
                    input_format: str | None = None) -> int:
    """Write the records at input ``indices`` to ``output`` in that order."""
    like = source if isinstance(source, (str, Path)) else None
    return write_records(pick_records(source, indices, input_format), output, like=like)


@dataclass(kw_only=True)
class Selector(Step):
    """Base of the selectors. A subclass is a dataclass, sets ``help`` and ``description``
    (for ``entrosel select --help``), adds its hyper-parameters as fields and writes
    :meth:`select`. Every selector reads its pool the same way (the ``input`` fields)."""

    input_format: str | None = option(None, group="input")
    text_field: str | None = option(None, group="input")
    template: str | None = option(None, group="input")
    on_error: str = option("raise", param=Param(str, choices=("raise", "skip")), group="input")

    option_groups: ClassVar[tuple[str, ...]] = ("budget", "input")
    # what --scores-out writes, when the selector has per-record scores to give
    scores_out_help: ClassVar[str | None] = None

    def _check_budget(self, available: int) -> None:
        """Refuse a ``budget`` above the ``available`` readable records: a selection is never
        silently shorter than asked."""
        budget = getattr(self, "budget", None)
        if budget is not None and budget > available:
            raise InputError(f"--budget ({budget}) is above the pool's {available} readable "
                             f"records; give at most {available}")

    def input_options(self, serialize: str = "text") -> InputOptions:
        """How the pool is read and rendered (``serialize``: how a record becomes bytes)."""
        return InputOptions(self.input_format, serialize, self.text_field, self.template, self.on_error)

    def select(self, pool: Source) -> list[int]:
        """The input indices of the chosen records of ``pool``, in selection order; sets
        ``selected_``."""
        raise NotImplementedError

    def subset(self, pool: Any) -> Any:
        """The chosen records of ``pool``, as the same kind of thing (a path gives a list of dicts)."""
        pool = reusable(pool)
        return subset_of(pool, self.select(pool), self.input_format)

    def score_rows(self, indices: list[int]) -> list[dict[str, Any]]:
        """The rows of ``--scores-out`` after :meth:`select` (selectors with ``scores_out_help``)."""
        raise NotImplementedError

    def rejected(self) -> Rejects:
        """The bad records met (written to ``OUTPUT.rejects.jsonl``)."""
        return getattr(self, "rejects_", Rejects("skip"))

    def summary(self, s: RunSummary) -> str:
        """The part of the command's one-line summary after the record count."""
        return " selected"

    def select_file(self, source: Source, output: str | Path, *,
                    scores_out: str | Path | None = None) -> RunSummary:
        """Select from ``source`` and write the chosen records, unchanged, to ``output`` (and
        the per-record scores to ``scores_out``)."""
        t0 = time.perf_counter()
        self.validate()
        source = reusable(source)
        output_format_for(output, "-o")  # refuse an unknown extension before any work
        if scores_out is not None:
            output_format_for(scores_out, "--scores-out")
        indices = self.select(source)
        write_selection(source, indices, output, self.input_format)
        if scores_out is not None:
            write_records(self.score_rows(indices), scores_out)
        rejects = self.rejected()
        return RunSummary(len(indices), len(rejects), time.perf_counter() - t0, Path(output),
                          rejects.write(rejects_path(output)))
