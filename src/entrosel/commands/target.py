"""``entrosel select target``: the pool records closest to a target set, written unchanged."""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from entrosel.commands.score import RunSummary
from entrosel.commands.select import write_selection
from entrosel.io.records import Rejects, rejects_path
from entrosel.io.writers import output_format_for, write_records
from entrosel.pool import Source
from entrosel.scoring.target import DSIR_BUCKETS
from entrosel.selection.target import METHODS, SCORE_COLUMN, TargetSelector


def select_target(input: Source, output: str | Path, *, target: Source,
                  scores_out: str | Path | None = None,
                  **options: Any) -> tuple[TargetSelector, RunSummary]:
    """Fit :class:`TargetSelector` (``options``) on ``target``, select from ``input`` and write
    the selected records in selection order; ``scores_out`` gets every scored record's
    ``index``, ``id`` (if any), score and ``rank`` in the selection (empty when not picked)."""
    t0 = time.perf_counter()
    selector = TargetSelector(**options)
    selector._validate(selecting=True)
    for path in (output, scores_out):
        if path is not None:
            output_format_for(path)  # refuse an unknown extension before any work
    selector.fit(target)
    indices = selector.select(input)
    write_selection(input, indices, output, options.get("input_format"))
    if scores_out is not None:
        rank = {index: r for r, index in enumerate(indices)}
        column = SCORE_COLUMN[selector.method]
        rows = []
        for index, id_, value in zip(selector.index_.tolist(), selector.ids_, selector.scores_.tolist()):
            row: dict[str, Any] = {"index": index}
            if id_ is not None:
                row["id"] = id_
            row[column] = value
            row["rank"] = rank.get(index)
            rows.append(row)
        write_records(rows, scores_out)
    rejects = Rejects("skip", selector.target_rejects_.rejected + selector.rejects_.rejected)
    rejected_file = rejects.write(rejects_path(output))
    return selector, RunSummary(len(indices), len(rejects), time.perf_counter() - t0,
                                Path(output), rejected_file)


def _cmd_select_target(a: argparse.Namespace) -> int:
    from entrosel.cli import _summary, _unescape

    selector, s = select_target(
        a.input, a.output, target=a.target, scores_out=a.scores_out, method=a.method_,
        budget=a.budget, budget_tokens=a.budget_tokens, keep=a.keep, tokenizer=a.tokenizer,
        seed=a.seed, diverse=a.diverse, candidates=a.candidates, level=a.level,
        shard_bytes=a.shard_bytes, buckets=a.buckets, workers=a.workers,
        input_format=a.input_format, target_format=a.target_format, text_field=a.text_field,
        template=_unescape(a.template), on_error=a.on_error, progress=a.progress)
    extra = (f" selected ({selector.method}{', diverse' if selector.diverse else ''}) of "
             f"{len(selector.index_):,} toward a target of {selector.target_records_:,}")
    if selector.dictionaries_ > 1:
        extra += f" cut into {selector.dictionaries_} dictionaries"
    if selector.tokens_ is not None:
        extra += f", {selector.tokens_:,} tokens"
    _summary("select target", s, extra)
    return 0


def add_select_target(methods: Any) -> argparse.ArgumentParser:
    """Add ``target`` to the ``select`` sub-commands (``methods``, argparse sub-parsers)."""
    from entrosel.cli import _input_options, _input_output, _run_options

    p = methods.add_parser(
        "target", help="the records closest to a target set (dict, ZIP-FIT's ncd, DSIR)",
        description="Select the pool records most like a target set (a few hundred examples of "
                    "what the model should get better at). dict (default): alignment = "
                    "1 - C(x|T)/C(x), each record compressed once with the whole target as a "
                    "zstd dictionary. ncd: ZIP-FIT's mean 1 - NCD to every target record (gzip "
                    "level 9; N x M compressions). dsir: hashed-n-gram importance weights, "
                    "resampled by Gumbel top-k with --seed. Output: the selected records, "
                    "unchanged, best first.")
    _input_output(p, input_help="the pool", output_help="selected records (format from extension)")
    p.add_argument("--target", required=True, metavar="TARGET",
                   help="the target set (any input format; records rendered as the pool's)")
    p.add_argument("--method", dest="method_", choices=METHODS, default="dict",
                   help="dict (default), ncd or dsir")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--budget", type=int, metavar="N", help="select N records")
    g.add_argument("--budget-tokens", type=int, metavar="N",
                   help="select records until they hold N tokens (needs --tokenizer)")
    g.add_argument("--keep", type=float, metavar="FRACTION", help="select this fraction of the pool")
    p.add_argument("--tokenizer", metavar="PATH_OR_NAME", help="count tokens with this HF tokenizer")
    p.add_argument("--scores-out", metavar="FILE",
                   help="write every record's index, id, score (alignment, or dsir's "
                        "log_importance_weight) and rank in the selection")
    p.add_argument("--seed", type=int, default=0, help="dsir's resampling seed (default: 0)")
    p.add_argument("--diverse", action="store_true",
                   help="run long-memory ZIP (zstd) over the best --candidates x budget records, "
                        "so the selection is aligned and not redundant")
    p.add_argument("--candidates", type=float, default=4.0, metavar="X",
                   help="with --diverse: ZIP's shortlist, X times the budget (default: 4)")
    g = p.add_argument_group("method settings")
    g.add_argument("--level", type=int, help="dict: zstd level (default: 9); ncd: gzip level (default: 9)")
    g.add_argument("--shard-bytes", type=int, metavar="B",
                   help="dict: target bytes per dictionary (default: as far as zstd's dictionary "
                        "reaches: 32 MiB at level 5 and up, 16 MiB at levels 1-4); a larger "
                        "target is cut into several")
    g.add_argument("--buckets", type=int, default=DSIR_BUCKETS,
                   help=f"dsir: hash buckets (default: {DSIR_BUCKETS})")
    g.add_argument("--target-format", help="the target's format (default: from its extension)")
    _input_options(p)
    _run_options(p)
    p.set_defaults(run=_cmd_select_target)
    return p
