"""What every filter shares: one streaming pass that judges records, then the kept ones.

A filter is a dataclass of hyper-parameters (scikit-learn style). ``fit(source)`` reads the
pool once, rendered, and decides for each record whether it stays; learned attributes end in
``_``: ``removed_`` (input index -> :class:`Removal`), ``counts_`` (removals by reason),
``records_`` (records judged), ``rejects_`` (bad records, see :class:`Rejects`).
``filter(source)`` then streams the kept records, unchanged, in input order.

A record-level filter writes only ``judge(batch) -> [Removal | None, ...]``; a pool-level one
(dedup) also overrides ``_finish`` to decide once it has seen everything. ``apply`` (a
recipe's step) fits it on records read once and returns the positions it keeps.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Iterator, Mapping, Self, Sequence, Sized

from entrosel.formats.render import Turn
from entrosel.heap import paused_gc
from entrosel.io.records import Record, Rejects
from entrosel.io.trace import Removal, rejected_removal
from entrosel.io.writers import write_records
from entrosel.pool import InputOptions, Source, iter_records, rendered_records
from entrosel.progress import Progress
from entrosel.registry import Registry
from entrosel.scoring.base import RunSummary
from entrosel.step import Step, StepFiles, StepResult

if TYPE_CHECKING:
    from entrosel.engines.base import Engine

FILTERS: Registry = Registry("filter")

_KEPT, _REMOVED = 1, 2


Batch = list[tuple[Record, list[Turn]]]


@dataclass
class FilterSummary(RunSummary):
    """A filter's run: ``records`` kept of ``judged``; ``removed`` counts by reason."""

    judged: int = 0
    removed: dict[str, int] = field(default_factory=dict)
    removed_file: Path | None = None

    def line(self, verb: str) -> str:
        """The one-line summary every verb ends with."""
        gone = sum(self.removed.values())
        reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(self.removed.items(), key=lambda kv: -kv[1]))
        parts = [f"entrosel {verb}: {self.records:,} of {self.judged:,} records kept, {gone:,} removed"
                 + (f" ({reasons})" if reasons else "")]
        if self.rejected:
            parts.append(f"{self.rejected:,} rejected -> {self.rejects_file}")
        if self.removed_file is not None:
            parts.append(f"removed listed in {self.removed_file}")
        note = f" ({self.note})" if self.note else ""
        return ", ".join(parts) + f" in {self.seconds:.1f}s -> {self.output}{note}"


class Filter(Step):
    """Base of the filters; subclasses are dataclasses registered in :data:`FILTERS`, their
    hyper-parameters :func:`entrosel.params.option` fields (help and allowed values there)."""

    batch_size: ClassVar[int] = 1024
    verb: ClassVar[str] = "filter"
    # set by apply() for its fit: keep the id of each record removed while judged (its rows)
    _keeps_ids = False

    def note(self) -> str:
        """What the one-line summary adds after ``fit`` (settings it derived), or ``""``."""
        return ""

    def judge(self, batch: Batch) -> list[Removal | None]:
        """For each ``(record, turns)``: why it goes, or ``None`` when it stays."""
        raise NotImplementedError

    def _start(self, source: Source, options: InputOptions) -> None:
        """Set-up before the pass (load a tokenizer, read a score file)."""

    def _finish(self) -> None:
        """Decisions that need the whole pool (dedup); record-level filters have none."""

    def fit(self, source: Source, options: InputOptions | None = None,
            progress: bool | None = None, engine: Engine | None = None) -> Self:
        """Judge every record of ``source`` (a path or dict records) in one streaming pass;
        ``engine``: where a filter with heavy work runs it (dedup's signatures; by default,
        local processes)."""
        options = options or InputOptions()
        self.validate()
        self.rejects_ = Rejects(options.on_error)
        self.removed_: dict[int, Removal] = {}
        # the id of each record removed while judged, when apply() asks for them
        self._removed_ids: dict[int, Any] | None = {} if self._keeps_ids else None
        self.records_ = 0
        self._status = bytearray()  # per input index: 0 unreadable, 1 kept, 2 removed
        self._start(source, options)
        # records held (a recipe's, a list, a table) are counted, so the bar shows an ETA
        total = len(source) if isinstance(source, Sized) and not isinstance(source, (str, bytes)) else None
        with Progress(f"filter {self.name}", total=total, unit=" records", enabled=progress) as bar, \
                paused_gc():
            batch: Batch = []
            for pair in rendered_records(source, options, self.rejects_):
                batch.append(pair)
                if len(batch) >= self.batch_size:
                    self._judge_batch(batch)
                    bar.update(len(batch))
                    batch = []
            if batch:
                self._judge_batch(batch)
                bar.update(len(batch))
            self._finish()
        self.counts_ = Counter(r.reason for r in self.removed_.values())
        return self

    def _judge_batch(self, batch: Batch) -> None:
        for (record, _), removal in zip(batch, self.judge(batch), strict=True):
            self._seen(record.index)
            if removal is not None:
                self._remove(record.index, removal)
                if self._removed_ids is not None:
                    self._removed_ids[record.index] = record.data.get("id")

    def _seen(self, index: int) -> None:
        if index >= len(self._status):  # grow by doubling: indices arrive in order
            self._status.extend(bytes(max(index + 1 - len(self._status), len(self._status))))
        self._status[index] = _KEPT
        self.records_ += 1

    def _remove(self, index: int, removal: Removal) -> None:
        self._status[index] = _REMOVED
        self.removed_[index] = removal

    def is_kept(self, index: int) -> bool:
        return index < len(self._status) and self._status[index] == _KEPT

    @property
    def kept_(self) -> int:
        """How many records stay."""
        return self.records_ - len(self.removed_)

    def filter(self, source: Source, input_format: str | None = None) -> Iterator[Record]:
        """The kept records of ``source`` (the one ``fit`` saw), unchanged, in input order."""
        for record in iter_records(source, input_format, Rejects("skip")):
            if self.is_kept(record.index):
                yield record

    def removals(self) -> dict[int, Removal]:
        """Every input record that does not stay, by input index (after :meth:`fit`): the
        removed ones (``removed_``) and the bad records met (reason ``rejected``)."""
        out = {row["index"]: rejected_removal(row) for row in self.rejects_.rejected
               if row.get("index") is not None}
        out.update(self.removed_)
        return out

    def apply(self, records: Sequence[Record], files: StepFiles, *,
              reading: Mapping[str, Any] | None = None, engine: Engine | None = None,
              progress: bool | None = None) -> StepResult:
        """Fit on ``records`` and return the positions kept, in input order (see
        :meth:`Step.apply`); writes ``files``' ``removed.jsonl.gz`` (a row per removed record)
        and ``rejects.jsonl``. The summary names ``kept.npy``, which the runner writes."""
        t0 = time.perf_counter()
        reading = reading or {}
        options = InputOptions(None, "text", reading.get("text_field"), reading.get("template"),
                               reading.get("on_error", "raise"))
        self._keeps_ids = True
        try:
            self.fit(records, options, progress, engine)
        finally:
            self._keeps_ids = False
        kept = [p for p in range(len(records)) if self.is_kept(p)]
        # a removed record's row gives its id and that of the record it repeats: the ids of
        # records removed as they were judged were kept then; the others (dedup's, decided
        # at the end) and the records named are read again, in file order (a RecordSet then
        # gives the pages behind back)
        wanted = sorted({p for p in self.removed_ if p not in self._removed_ids}
                        | {r.duplicate_of for r in self.removed_.values() if r.duplicate_of is not None})
        again = records.take(wanted) if hasattr(records, "take") else (records[p] for p in wanted)
        ids = {p: r.data.get("id") for p, r in zip(wanted, again)}
        ids.update(self._removed_ids)
        # compressed, written as they are made: on a million records the rows are 54 MB of
        # text, 7.6% of the pool
        write_records((self.removed_row(p, ids.get(p), ids) for p in sorted(self.removed_)),
                      files.path("removed.jsonl.gz"))
        s = FilterSummary(len(kept), len(self.rejects_), time.perf_counter() - t0,
                          files.path("kept.npy"), self.rejects_.write(files.path("rejects.jsonl")),
                          judged=self.records_, removed=dict(self.counts_),
                          removed_file=files.path("removed.jsonl.gz"))
        return StepResult(kept, s.line(f"{self.verb} {self.name}"), drops=self.removals)

    def removed_row(self, index: int, id_: Any, ids: Mapping[int, Any]) -> dict[str, Any]:
        """One row of ``--removed-out`` for the removed record at input ``index`` whose id is
        ``id_``; ``ids``: input index -> id of the records that duplicates name."""
        removal = self.removed_[index]
        row: dict[str, Any] = {"index": index}
        if id_ is not None:
            row["id"] = id_
        row.update(reason=removal.reason, detail=removal.detail)
        if removal.duplicate_of is not None:
            row["duplicate_of"] = removal.duplicate_of
            if ids.get(removal.duplicate_of) is not None:
                row["duplicate_of_id"] = ids[removal.duplicate_of]
            if removal.similarity is not None:
                row["similarity"] = round(removal.similarity, 4)
        return row


def split(step: Filter, records: Iterable[Record], removed_rows: list[dict[str, Any]]) -> Iterator[Record]:
    """The records of a fitted filter's input that it keeps, in input order; a row for each
    removed one (see :meth:`Filter.removed_row`) goes to ``removed_rows``."""
    referenced = {r.duplicate_of for r in step.removed_.values() if r.duplicate_of is not None}
    ids: dict[int, Any] = {}
    # the record a duplicate names comes before it, so its id is known in time
    for record in records:
        if record.index in referenced:  # kept, or itself removed later (dedup's near pass)
            ids[record.index] = record.data.get("id")
        if step.is_kept(record.index):
            yield record
        elif record.index in step.removed_:
            removed_rows.append(step.removed_row(record.index, record.data.get("id"), ids))
