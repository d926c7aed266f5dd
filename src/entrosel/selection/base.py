"""What every selector shares: ``select(pool)`` returns the input indices of the chosen
records, in selection order; ``subset(pool)`` returns those records as the same kind of
thing the pool was (a list of dicts, a pandas DataFrame, a Hugging Face ``Dataset``).

A selector is a dataclass of hyper-parameters (scikit-learn style) registered in
:data:`SELECTORS`; its fields made with :func:`entrosel.params.option` are its options, on
the command line (``entrosel select NAME``) and in the library alike. Learned attributes
end in ``_`` (``selected_``, ``rejects_``, ...). ``apply`` (a recipe's step) selects from
records read once and returns the positions chosen.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

from entrosel.engines import Engine, make_engine
from entrosel.errors import InputError
from entrosel.io.records import Record, Rejects, rejects_path
from entrosel.io.trace import DropLog, Removal, log_run, record_ids, rejected_removal
from entrosel.io.writers import output_format_for, write_records
from entrosel.params import Param, option
from entrosel.pool import InputOptions, Source, iter_records, pick_records, reusable, subset_of
from entrosel.registry import Registry
from entrosel.step import Step, StepFiles, StepResult
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
    verb: ClassVar[str] = "select"
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

    def drop_reason(self, index: int) -> Removal:
        """Why the readable pool record at input ``index`` was not selected (after
        :meth:`select`); a selector with per-record reasons overrides it. By default: what
        stopped the selection, read from what the selector learned (a round-based one such
        as ZIP sets ``rounds_``; one that scores every record sets ``index_`` and ``scores_``)."""
        what = f"not picked by select {self.name}"
        picked = len(self.selected_)
        rounds = getattr(self, "rounds_", None)
        if rounds is not None:
            last = max(rounds, default=0)
            budget, budget_tokens = getattr(self, "budget", None), getattr(self, "budget_tokens", None)
            if budget is not None and picked >= budget:
                return Removal("not_selected", f"{what}: budget {budget:,} reached in round {last}")
            if budget_tokens is not None and (getattr(self, "tokens_", None) or 0) >= budget_tokens:
                return Removal("not_selected", f"{what}: budget of {budget_tokens:,} tokens "
                                               f"reached in round {last}")
            return Removal("not_selected", f"{what}: the pool ran out in round {last} with "
                                           f"{picked:,} picked (each round's batch leaves it)")
        scores = getattr(self, "scores_", None)
        if scores is not None and getattr(self, "index_", None) is not None:
            if not hasattr(self, "_score_of"):
                self._score_of = dict(zip(self.index_.tolist(), scores.tolist()))
                chosen = [self._score_of[i] for i in self.selected_ if i in self._score_of]
                self._picked_range = (min(chosen), max(chosen)) if chosen else None
            value = self._score_of.get(index)
            if value is not None:
                among = "" if self._picked_range is None else \
                    " scored {:.6g} to {:.6g}".format(*self._picked_range)
                return Removal("not_selected", f"{what}: score {value:.6g}; the {picked:,} "
                                               f"picked{among}", value=value)
        return Removal("not_selected", f"{what}: {picked:,} picked")

    def removals(self, indices: Any) -> dict[int, Removal]:
        """Every record of the pool that was not selected, by input index (after
        :meth:`select`): the bad records met (reason ``rejected``), and for each other of
        ``indices`` (the pool's input indices) :meth:`drop_reason`."""
        pool_rejects = getattr(self, "rejects_", None)  # the pool's, not a target's
        out = {row["index"]: rejected_removal(row) for row in (pool_rejects or Rejects()).rejected
               if row.get("index") is not None}
        chosen = set(self.selected_)
        for name in ("_score_of", "_picked_range"):  # of an earlier selection
            self.__dict__.pop(name, None)
        for i in indices:
            if i not in chosen and i not in out:
                out[i] = self.drop_reason(i)
        return out

    def log_drops(self, source: Source, indices: list[int], log: DropLog) -> None:
        """Add this selection of ``source`` (``indices``, from :meth:`select`) to ``log``:
        one more pass over the pool for the records' ids."""
        ids = record_ids(iter_records(source, self.input_format, Rejects("skip")))
        log_run(log, ids, indices, self.removals(ids), f"select {self.name}")

    def select_file(self, source: Source, output: str | Path, *,
                    scores_out: str | Path | None = None, trace: str | Path | None = None,
                    kept_ids: str | Path | None = None,
                    removed_ids: str | Path | None = None) -> RunSummary:
        """Select from ``source`` and write the chosen records, unchanged, to ``output`` (and
        the per-record scores to ``scores_out``); ``trace``: one row per record not selected,
        with why (see :mod:`entrosel.io.trace`); ``kept_ids``/``removed_ids``: the ids of the
        selected (in selection order) and of the other records, one per row."""
        t0 = time.perf_counter()
        self.validate()
        source = reusable(source)
        output_format_for(output, "-o")  # refuse an unknown extension before any work
        if scores_out is not None:
            output_format_for(scores_out, "--scores-out")
        log = DropLog(trace, kept_ids, removed_ids)
        indices = self.select(source)
        write_selection(source, indices, output, self.input_format)
        if scores_out is not None:
            write_records(self.score_rows(indices), scores_out)
        if log.wanted:
            self.log_drops(source, indices, log)
            log.write()
        rejects = self.rejected()
        return RunSummary(len(indices), len(rejects), time.perf_counter() - t0, Path(output),
                          rejects.write(rejects_path(output)), note=log.note())

    def apply(self, records: Sequence[Record], files: StepFiles, *,
              reading: Mapping[str, Any] | None = None, engine: Engine | None = None,
              progress: bool | None = None) -> StepResult:
        """Select from ``records`` and return the positions chosen, in selection order (see
        :meth:`Step.apply`); writes ``files``' ``rejects.jsonl``. The reading options, the
        engine and ``progress`` go to a copy of this selector where its class takes them.
        The summary names ``kept.npy``, which the runner writes."""
        t0 = time.perf_counter()
        selector = self._given(reading, engine=engine, progress=progress).validate()
        kept = selector.select(records)
        rejects = selector.rejected()
        s = RunSummary(len(kept), len(rejects), time.perf_counter() - t0, files.path("kept.npy"),
                       rejects.write(files.path("rejects.jsonl")))
        return StepResult(kept, f"entrosel {self.verb} {self.name}: {s.records:,} records"
                                f"{selector.summary(s)} in {s.seconds:.1f}s -> {s.output}",
                          drops=lambda: selector.removals(range(len(records))))


@dataclass(kw_only=True)
class EngineSelector(Selector):
    """A selector whose heavy work runs on an engine, handed in by whoever runs it: a name in
    :data:`entrosel.engines.ENGINES` (with its ``workers`` and ``ray_address``) or an
    :class:`~entrosel.engines.Engine`; ``engine_`` is the engine it ran on."""

    workers: int | None = option(None, group="engine")
    engine: str | Engine = option("local", group="engine")
    ray_address: str | None = option(None, group="engine")
    progress: bool | None = option(None, cli=False)

    def _make_engine(self) -> Engine:
        """Set and return ``engine_``; a bad worker count or an option of another engine is refused."""
        self.engine_ = make_engine(self.engine, workers=self.workers, ray_address=self.ray_address)
        return self.engine_
