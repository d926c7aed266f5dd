"""``entrosel select ...``: write the selected records, unchanged, in selection order."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from entrosel.commands.score import RunSummary
from entrosel.errors import InputError
from entrosel.io.readers import read_records
from entrosel.io.records import Rejects, rejects_path
from entrosel.io.writers import write_records
from entrosel.pool import InputOptions, Source, pick_records, rendered_records
from entrosel.scoring.tokens import record_token_counts
from entrosel.selection import by_score
from entrosel.selection.zip import ZipSelector


def write_selection(source: Source, indices: list[int], output: str | Path,
                    input_format: str | None = None) -> int:
    """Write the records at input ``indices`` to ``output`` in that order."""
    like = source if isinstance(source, (str, Path)) else None
    return write_records(pick_records(source, indices, input_format), output, like=like)


def select_zip_to_file(input: Source, output: str | Path, *, scores_out: str | Path | None = None,
                       **options: Any) -> tuple[ZipSelector, RunSummary]:
    """Run :class:`ZipSelector` with ``options`` and write the selection (and its scores)."""
    t0 = time.perf_counter()
    selector = ZipSelector(**options)
    indices = selector.select(input)
    write_selection(input, indices, output, options.get("input_format"))
    if scores_out is not None:
        rows = []
        for rank, (index, id_, rnd, r2, r3) in enumerate(zip(
                indices, selector.ids_, selector.rounds_, selector.stage2_ratios_,
                selector.stage3_ratios_)):
            row: dict[str, Any] = {"rank": rank, "index": index}
            if id_ is not None:
                row["id"] = id_
            row.update(round=rnd, stage2_ratio=r2, stage3_ratio=r3)
            rows.append(row)
        write_records(rows, scores_out)
    rejected_file = selector.rejects_.write(rejects_path(output))
    return selector, RunSummary(len(indices), len(selector.rejects_), time.perf_counter() - t0,
                                Path(output), rejected_file)


def read_scores(path: str | Path, by: str | None) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """A score file's ``index`` column, its ``by`` column and its ``tokens`` column (if any)."""
    rows = [r.data for r in read_records(path)]
    columns = list(rows[0])
    for needed in ["index"] + ([by] if by else []):
        if needed not in rows[0]:
            raise InputError(f"score file has no column {needed!r} (columns: {', '.join(columns)}); "
                             "make it with `entrosel score ...`", path)
    try:
        index = np.array([int(r["index"]) for r in rows], dtype=np.int64)
        values = None if by is None else np.array(
            [np.nan if r.get(by) in (None, "") else float(r[by]) for r in rows], dtype=np.float64)
        tokens = (np.array([int(r["tokens"]) for r in rows], dtype=np.int64)
                  if "tokens" in rows[0] else None)
    except (TypeError, ValueError) as e:
        raise InputError(f"score file has a non-numeric value: {e}", path) from None
    return index, values, tokens


def _token_counts(input: Source, index: np.ndarray, file_tokens: np.ndarray | None,
                  tokenizer: str | None, options: InputOptions) -> np.ndarray | None:
    if tokenizer:
        return record_token_counts(input, index, tokenizer, options)
    return file_tokens


def _write(input: Source, output: str | Path, index: np.ndarray, chosen: np.ndarray,
           readable: set[int], input_format: str | None, rejects: Rejects, scores: Any,
           t0: float) -> RunSummary:
    indices = index[chosen].tolist()
    missing = [i for i in indices if i not in readable]
    if missing:
        raise InputError(f"the score file names {len(missing)} record(s) the input does not hold "
                         f"as readable records (first: index {missing[0]}); score this input again",
                         scores)
    write_selection(input, indices, output, input_format)
    return RunSummary(len(indices), len(rejects), time.perf_counter() - t0, Path(output),
                      rejects.write(rejects_path(output)))


def select_by_score(input: Source, output: str | Path, *, method: str, scores: str | Path | None = None,
                    by: str | None = None, keep: float | None = None, budget: int | None = None,
                    budget_tokens: int | None = None, tokenizer: str | None = None,
                    drop: str = "lowest", largest: bool = True, low: float | None = None,
                    high: float | None = None, seed: int = 0, input_format: str | None = None,
                    text_field: str | None = None, template: str | None = None,
                    on_error: str = "raise") -> RunSummary:
    """``entrosel select prune|topk|band|random``: choose records by a score column of
    ``scores`` (a file with an ``index`` column, as ``entrosel score`` writes) and write them.
    A bad input record stops the run (``on_error="raise"``) or goes to
    ``OUTPUT.rejects.jsonl`` (``"skip"``)."""
    t0 = time.perf_counter()
    options = InputOptions(input_format, "text", text_field, template, on_error)
    rejects = Rejects(on_error)
    # every input record is read (and rendered) once under the on-error policy, as by the
    # other verbs; only readable records can be selected
    readable = [r.index for r, _ in rendered_records(input, options, rejects)]
    if method == "random" and scores is None:
        index = np.array(readable, dtype=np.int64)
        values, file_tokens = None, None
    else:
        if scores is None or (by is None and method != "random"):
            raise InputError(f"select {method} needs --scores FILE and --by COLUMN")
        index, values, file_tokens = read_scores(scores, by)
    tokens = _token_counts(input, index, file_tokens, tokenizer, options) if budget_tokens is not None else None
    budgets = dict(keep=keep, budget=budget, budget_tokens=budget_tokens, tokens=tokens)
    if method == "prune":
        chosen = by_score.prune(values, drop=drop, **budgets)
    elif method == "topk":
        chosen = by_score.top_k(values, largest=largest, **budgets)
    elif method == "band":
        if low is None or high is None:
            raise InputError("select band needs --low and --high (percentiles, e.g. 30 and 60)")
        chosen = by_score.band(values, low, high)
    elif method == "random":
        chosen = by_score.random_subset(len(index), seed=seed, **budgets)
    else:
        raise ValueError(f"unknown method {method!r}")
    return _write(input, output, index, chosen, set(readable), input_format, rejects, scores, t0)
