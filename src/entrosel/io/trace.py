"""What a run dropped and why (``--trace``), and the id lists other tools apply
(``--write-kept-ids``, ``--write-removed-ids``).

A record's id is stable across every verb and recipe: the input's own ``id`` field when it
has one, else its index (0-based input row). A trace has one row per dropped input record::

    {"id": "d05", "index": 5, "step": "filter length", "reason": "min_chars",
     "detail": "143 chars < --min-chars 200", "value": 143, "threshold": 200}

``duplicate_of`` (the id of the kept record it repeats) and ``similarity`` come with
duplicates, ``value`` and ``threshold`` with a bound or score cut; a recipe's rows also
carry ``step_number`` (0 for ``read``, the records that could not be read). A record that is
not in the trace was kept. An id list is a text file of one id per line (``.txt``), or a
table with one ``id`` column (``.jsonl``, ``.parquet``, ``.csv``, ...), the forms NeMo
Curator and datatrove users apply.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from entrosel.errors import InputError
from entrosel.io.atomic import atomic_path
from entrosel.io.records import Record

__all__ = ["DropLog", "Removal", "drop_row", "explain", "log_run", "record_id", "record_ids",
           "rejected_removal", "write_ids"]


@dataclass(frozen=True, slots=True)
class Removal:
    """Why a record was removed: a short ``reason`` (the summary counts by it), a ``detail``
    for people, for duplicates the input index of the kept record it repeats (and the
    similarity), and for a bound or a score cut the record's ``value`` and the ``threshold``
    it failed."""

    reason: str
    detail: str
    duplicate_of: int | None = None
    similarity: float | None = None
    value: float | None = None
    threshold: float | None = None


def record_id(record: Record) -> Any:
    """A record's stable id: its own ``id`` field, else its input index."""
    id_ = record.data.get("id")
    return record.index if id_ is None else id_


def rejected_removal(row: dict[str, Any]) -> Removal:
    """A bad record (a row of :class:`~entrosel.io.records.Rejects`) as a removal."""
    return Removal("rejected", f"bad record: {row.get('reason')}")


def drop_row(id_: Any, index: int, step: str, removal: Removal, duplicate_id: Any = None,
             step_number: int | None = None) -> dict[str, Any]:
    """One trace row; ``duplicate_id``: the id of the record ``removal.duplicate_of`` names;
    ``step_number``: the step's place in a recipe."""
    detail = removal.detail
    if removal.duplicate_of is not None:
        detail = f"{removal.reason.replace('_', ' ')} of id {duplicate_id}"
        if removal.reason != "exact_duplicate" and removal.similarity is not None:
            detail += f", Jaccard {removal.similarity:.2f}"
    row: dict[str, Any] = {"id": id_, "index": int(index), "step": step}
    if step_number is not None:
        row["step_number"] = step_number
    row.update(reason=removal.reason, detail=detail)
    if removal.duplicate_of is not None:
        row["duplicate_of"] = duplicate_id
        if removal.similarity is not None:
            row["similarity"] = round(float(removal.similarity), 4)
    if removal.value is not None:
        row["value"] = removal.value
    if removal.threshold is not None:
        row["threshold"] = removal.threshold
    return row


def record_ids(records: Iterable[Record]) -> dict[int, Any]:
    """Input index -> :func:`record_id` of each record."""
    return {r.index: record_id(r) for r in records}


def log_run(log: "DropLog", ids: Mapping[int, Any], kept: Iterable[int],
            removals: Mapping[int, Removal], step: str, step_number: int | None = None) -> None:
    """Add a step's outcome to ``log``: the ``kept`` input indices (in output order) and a
    row per removal, in input order; ``ids``: input index -> record id (an index not there,
    a record that could not be read, is its own id)."""
    for i in kept:
        log.keep(ids.get(i, i))
    for i in sorted(removals):
        r = removals[i]
        dup = None if r.duplicate_of is None else ids.get(r.duplicate_of, r.duplicate_of)
        log.drop(drop_row(ids.get(i, i), i, step, r, dup, step_number))


def _ids_format(path: str | Path, flag: str) -> str:
    from entrosel.io.writers import output_format_for

    return "txt" if Path(path).suffix.lower() == ".txt" else output_format_for(path, flag)


def _uniform(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Rows whose ``key`` values share one type: ids that mix numbers (indices) and strings
    are all written as strings (Parquet and CSV columns hold one type)."""
    kinds = {type(r[key]) for r in rows if r.get(key) is not None}
    if len(kinds) <= 1:
        return rows
    return [{**r, key: str(r[key])} if r.get(key) is not None else r for r in rows]


def write_ids(ids: Iterable[Any], path: str | Path) -> Path:
    """Write ``ids`` one per row: ``.txt`` one per line, else a table with an ``id`` column."""
    from entrosel.io.writers import write_records

    ids = list(ids)
    if _ids_format(path, "ids") == "txt":
        with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
            for id_ in ids:
                text = str(id_)
                if "\n" in text or "\r" in text:
                    raise InputError(f"id {id_!r} holds a line break; write the ids to a .jsonl or "
                                     ".parquet file instead", path)
                f.write(text + "\n")
    else:
        write_records(_uniform([{"id": id_} for id_ in ids], "id"), path)
    return Path(path)


class DropLog:
    """What a run keeps and drops, by record id, for the files asked for: ``trace`` (one row
    per dropped record, see :func:`drop_row`), ``kept_ids`` and ``removed_ids`` (id lists).
    The names are checked when it is made, before any work."""

    def __init__(self, trace: str | Path | None = None, kept_ids: str | Path | None = None,
                 removed_ids: str | Path | None = None) -> None:
        from entrosel.io.writers import output_format_for

        self.trace, self.kept_ids, self.removed_ids = trace, kept_ids, removed_ids
        if trace is not None:
            output_format_for(trace, "--trace")
        if kept_ids is not None:
            _ids_format(kept_ids, "--write-kept-ids")
        if removed_ids is not None:
            _ids_format(removed_ids, "--write-removed-ids")
        self.rows: list[dict[str, Any]] = []
        self.kept: list[Any] = []

    @property
    def wanted(self) -> bool:
        """Whether any file was asked for (else nothing needs collecting)."""
        return any(x is not None for x in (self.trace, self.kept_ids, self.removed_ids))

    def drop(self, row: dict[str, Any]) -> None:
        self.rows.append(row)

    def keep(self, id_: Any) -> None:
        self.kept.append(id_)

    def write(self) -> list[Path]:
        """Write the files asked for; returns them."""
        from entrosel.io.writers import write_records

        written = []
        if self.trace is not None:
            rows = _uniform(_uniform(self.rows, "id"), "duplicate_of")
            write_records(rows, self.trace)
            written.append(Path(self.trace))
        if self.kept_ids is not None:
            written.append(write_ids(self.kept, self.kept_ids))
        if self.removed_ids is not None:
            written.append(write_ids((r["id"] for r in self.rows), self.removed_ids))
        return written

    def note(self) -> str:
        """What was written, for a verb's summary line ("" when nothing was asked)."""
        if not self.wanted:
            return ""
        parts = [f"{len(self.rows):,} drops traced -> {self.trace}"] if self.trace is not None else []
        if self.kept_ids is not None:
            parts.append(f"kept ids -> {self.kept_ids}")
        if self.removed_ids is not None:
            parts.append(f"removed ids -> {self.removed_ids}")
        return ", ".join(parts)


def explain(record: str, trace: str | Path) -> str:
    """One record's story from a trace: the step that dropped it and why, or that the trace
    does not list it (kept, or never dropped). ``record``: its id, or its input index."""
    from entrosel.io.readers import read_records

    if not Path(trace).exists():
        raise InputError("no such trace file (write one with --trace FILE)", trace)
    try:
        rows = [r.data for r in read_records(trace)]
    except InputError as e:
        if "holds no records" not in e.reason:
            raise
        rows = []  # nothing was dropped
    if rows and not {"id", "step", "reason"} <= set(rows[0]):
        raise InputError("not a trace: its rows have no id, step and reason (write one with "
                         "--trace FILE)", trace)
    found = [r for r in rows if str(r.get("id")) == record]
    if not found and record.isdigit():  # an index: a record without an id, or asked by row
        found = [r for r in rows if r.get("index") == int(record)]
    if not found:
        return f"{record}: not in the trace {trace}: kept (never dropped)"
    lines = []
    for r in found:
        where = r["step"] if r.get("step_number") is None else f"step {r['step_number']} ({r['step']})"
        lines.append(f"{r['id']} (input index {r.get('index')}): dropped at {where}: "
                     f"{r['reason']}: {r.get('detail')}")
    return "\n".join(lines)
