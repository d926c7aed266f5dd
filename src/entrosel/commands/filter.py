"""``entrosel filter length|dedup|score``: write the records a filter keeps, unchanged, in
input order; with ``removed_out``, one row per removed record saying why."""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

from entrosel.engines import Engine
from entrosel.errors import InputError
from entrosel.filters import FILTERS, Dedup, Filter, LengthFilter, ScoreFilter
from entrosel.filters.base import FilterSummary, split
from entrosel.io.records import Record, Rejects, rejects_path
from entrosel.io.trace import DropLog, log_run, record_id
from entrosel.io.writers import output_format_for, write_records
from entrosel.params import flag
from entrosel.pool import InputOptions, Source, iter_records


def filter_to_file(step: Filter, input: Source, output: str | Path, *,
                   input_format: str | None = None, text_field: str | None = None,
                   template: str | None = None, on_error: str = "raise",
                   removed_out: str | Path | None = None, trace: str | Path | None = None,
                   kept_ids: str | Path | None = None, removed_ids: str | Path | None = None,
                   progress: bool | None = None, engine: Engine | None = None) -> FilterSummary:
    """Fit ``step`` on ``input`` and write the records it keeps to ``output`` (atomically);
    ``removed_out``: the removed records' index, id, reason, detail (and for duplicates the
    kept record's index and id, and the similarity); ``trace``: one row per record that does
    not stay, removed or bad, with why (see :mod:`entrosel.io.trace`); ``kept_ids`` and
    ``removed_ids``: their ids, one per row."""
    t0 = time.perf_counter()
    step.validate()
    options = InputOptions(input_format, "text", text_field, template, on_error)
    output_format_for(output, "-o")  # a bad output name fails before the work
    if removed_out is not None:
        output_format_for(removed_out, "--removed-out")
    log = DropLog(trace, kept_ids, removed_ids)
    step.fit(input, options, progress, engine)
    removed_rows: list[dict[str, Any]] = []
    like = input if isinstance(input, (str, Path)) else None
    records = iter_records(input, input_format, Rejects("skip"))
    ids: dict[int, Any] = {}
    if log.wanted:
        records = _noting_ids(records, ids)
    n = write_records(split(step, records, removed_rows), output, like=like)
    removed_file = None
    if removed_out is not None:
        write_records(removed_rows, removed_out)
        removed_file = Path(removed_out)
    if log.wanted:
        log_run(log, ids, (i for i in ids if step.is_kept(i)), step.removals(), f"filter {step.name}")
        log.write()
    rejects_file = step.rejects_.write(rejects_path(output))
    return FilterSummary(n, len(step.rejects_), time.perf_counter() - t0, Path(output),
                         rejects_file, judged=step.records_, removed=dict(step.counts_),
                         removed_file=removed_file, note=log.note())


def _noting_ids(records: Iterable[Record], ids: dict[int, Any]) -> Iterator[Record]:
    for record in records:
        ids[record.index] = record_id(record)
        yield record


def filter_length(input: Source, output: str | Path, *, min_chars: int | None = None,
                  max_chars: int | None = None, min_words: int | None = None,
                  max_words: int | None = None, min_tokens: int | None = None,
                  max_tokens: int | None = None, tokenizer: str | None = None,
                  min_response_chars: int | None = None, **io: Any) -> FilterSummary:
    """``entrosel filter length``; ``io``: the keywords of :func:`filter_to_file`."""
    return filter_to_file(LengthFilter(min_chars, max_chars, min_words, max_words, min_tokens,
                                       max_tokens, tokenizer, min_response_chars), input, output, **io)


def filter_dedup(input: Source, output: str | Path, *, near: bool = False, threshold: float = 0.7,
                 ngram: int = 3, num_perm: int = 128, bands: int | None = None, seed: int = 0,
                 lowercase: bool = False, normalize_whitespace: bool = False,
                 workers: int | None = None, work_dir: str | None = None,
                 **io: Any) -> FilterSummary:
    """``entrosel filter dedup``; ``io``: the keywords of :func:`filter_to_file`."""
    step = Dedup(near, threshold, ngram, num_perm, bands, seed, lowercase, normalize_whitespace,
                 workers, work_dir)
    return filter_to_file(step, input, output, **io)


def filter_score(input: Source, output: str | Path, *, scores: str, by: str,
                 min: float | None = None, max: float | None = None, **io: Any) -> FilterSummary:
    """``entrosel filter score``; ``io``: the keywords of :func:`filter_to_file`."""
    return filter_to_file(ScoreFilter(scores, by, min, max), input, output, **io)


# ---- command line -------------------------------------------------------------------------

def _step_from_args(a: argparse.Namespace) -> Filter:
    cls = FILTERS[a.filter]
    # unset options keep the class's defaults, defined there only
    values = {f.name: getattr(a, f.name) for f in dataclasses.fields(cls)
              if f.init and getattr(a, f.name, None) is not None}
    if not values.get("near"):
        given = [n for n in getattr(cls, "near_only", ()) if n in values]
        if given:
            raise InputError(f"{flag(given[0])} applies to near duplicates: add --near")
    return cls(**values)


def _cmd_filter(a: argparse.Namespace) -> int:
    from entrosel.commands.options import drop_outputs

    step = _step_from_args(a)
    s = filter_to_file(step, a.input, a.output, input_format=a.input_format,
                       text_field=a.text_field, template=a.template,
                       on_error=a.on_error, removed_out=a.removed_out, progress=a.progress,
                       **drop_outputs(a))
    s.note = "; ".join(x for x in (step.note(), s.note) if x)
    print(s.line(f"filter {a.filter}"), file=sys.stderr)
    return 0


def add_filter_parsers(verbs: Any) -> None:
    """``entrosel filter ...``: hooked into :func:`entrosel.cli.build_parser`."""
    from entrosel.commands.options import drop_options, input_options, progress_option, step_parsers

    for cls, p in step_parsers(verbs, "filter", FILTERS,
                               help="clean the pool: length, exact/near dedup, score bands",
                               description="Drop records from a pool before selecting; the kept "
                                           "records are written unchanged, in input order.",
                               dest="filter", metavar="FILTER",
                               output_help="kept records (format from extension)", unset_none=True):
        input_options(p)
        p.add_argument("--removed-out", metavar="FILE",
                       help="write one row per removed record: index, id, reason, detail "
                            "(duplicates: duplicate_of, duplicate_of_id, similarity)")
        drop_options(p)
        progress_option(p)
        p.set_defaults(run=_cmd_filter)
