"""``entrosel score compression``: one compression ratio per input record."""
from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from entrosel.engines.local import ordered_map, resolve_workers
from entrosel.engines.shards import Shard, block_of
from entrosel.errors import InputError
from entrosel.formats.render import RenderError, turns_text
from entrosel.formats.serialize import Serialization
from entrosel.io.atomic import atomic_path
from entrosel.io.readers import detect_format, jsonl_lines, parse_jsonl_line
from entrosel.io.records import Record, Rejects, rejects_path
from entrosel.io.writers import write_records
from entrosel.pool import InputOptions, Pool, PoolItems, Source, iter_records, rendered_records
from entrosel.progress import Progress
from entrosel.scoring.compression import Compressor, compressed_sizes, ratio
from entrosel.scoring.words import WordSurprisal

_CHUNK_BYTES = 1 << 20


@dataclass
class RunSummary:
    """What a command did, for its one-line summary."""

    records: int
    rejected: int
    seconds: float
    output: Path | None
    rejects_file: Path | None = None
    bytes: int = 0
    note: str = ""  # e.g. which shard ran, whether the shards were merged


def _chunks(units: Iterable[Any], size_of, limit: int = _CHUNK_BYTES) -> Iterator[list]:
    chunk, size = [], 0
    for unit in units:
        chunk.append(unit)
        size += size_of(unit)
        if size >= limit:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def _sizes_of_range(bounds: tuple[int, int], items: PoolItems, compressor: Compressor) -> list[int]:
    opened = items.open()
    return compressed_sizes([opened[i] for i in range(*bounds)], compressor)


def compression_scores(texts: Iterable[bytes | str], compressor: str = "zlib",
                       level: int | None = None, workers: int | None = None) -> np.ndarray:
    """Compression ratio of each text (float64), computed over ``workers`` processes.

    The texts go to the workers through a shared file-backed pool, not through pipes.
    """
    encoded = (t.encode("utf-8") if isinstance(t, str) else t for t in texts)
    with Pool.from_items(encoded) as pool:
        sizes = pool.sizes
        bounds = np.searchsorted(np.cumsum(sizes), np.arange(_CHUNK_BYTES, sizes.sum() + _CHUNK_BYTES,
                                                            _CHUNK_BYTES), side="right")
        edges = np.unique(np.concatenate([[0], np.minimum(bounds, len(pool)), [len(pool)]]))
        work = functools.partial(_sizes_of_range, items=pool.items,
                                 compressor=Compressor(compressor, level))
        ranges = [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]
        compressed = np.fromiter((c for part in ordered_map(work, ranges, resolve_workers(workers))
                                  for c in part), dtype=np.float64, count=len(pool))
    out = np.zeros(len(sizes), dtype=np.float64)
    np.divide(sizes, compressed, out=out, where=sizes > 0)
    return out


# A unit of input is a parsed Record, or for JSONL an unparsed line (path, index, line, raw)
# so that JSON parsing runs in the workers too and the main process only reads.
Unit = Record | tuple[str, int, int, bytes]


def _score_units(units: list[Unit], serialization: Serialization, compressor: Compressor) -> list[tuple]:
    """Parse, render and compress a chunk; bad records come back as ``("reject", ...)``."""
    framing = serialization.framing
    out: list[tuple] = []
    for unit in units:
        try:
            record = unit if isinstance(unit, Record) else parse_jsonl_line(*unit)
            item = framing.open + serialization.item(record.data) + framing.close
        except InputError as e:
            out.append(("reject", e.reason, e.path, e.line, e.index, unit[3].decode("utf-8", "replace")))
            continue
        except RenderError as e:
            err = record.error(str(e))
            out.append(("reject", err.reason, err.path, err.line, err.index, repr(record.data)[:10_000]))
            continue
        out.append(("row", record.index, record.data.get("id"), len(item), compressor.compressed_size(item)))
    return out


def _units(source: Source, input_format: str | None, rejects: Rejects,
           shard: Shard | None = None) -> Iterator[Unit]:
    if isinstance(source, (str, Path)) and (input_format or detect_format(source)) == "jsonl":
        if not Path(source).exists():
            raise InputError("no such file or folder", source)
        path = str(source)
        empty = True
        for index, line, raw in jsonl_lines(path):
            empty = False
            if shard is None or shard.owns(index):
                yield path, index, line, raw
        if empty:
            raise InputError("input holds no records", source)
        return
    yield from iter_records(source, input_format, rejects, shard)


def _rejects(on_error: str, shard: Shard | None) -> Rejects:
    return Rejects(on_error, scope=shard.owns if shard is not None else None)


def _unit_size(unit: Unit) -> int:
    return len(unit[3]) if isinstance(unit, tuple) else 1024


def score_compression(input: Source, output: str | Path, *, input_format: str | None = None,
                      serialize: str = "text", text_field: str | None = None,
                      template: str | None = None, compressor: str = "zlib",
                      level: int | None = None, workers: int | None = None,
                      on_error: str = "raise", progress: bool | None = None,
                      shard: Shard | None = None) -> RunSummary:
    """Write one row per record: ``index``, ``id`` (if any), ``compression_ratio``, ``bytes``,
    ``compressed_bytes``. Each record is framed as a one-sample set (``repr``: ``[record]``).
    With ``shard``, only that shard's records (see :mod:`entrosel.engines.shards`)."""
    t0 = time.perf_counter()
    workers = resolve_workers(workers)  # a bad count is refused before any work
    options = InputOptions(input_format, serialize, text_field, template, on_error)
    rejects = _rejects(on_error, shard)
    work = functools.partial(_score_units, serialization=options.serialization,
                             compressor=Compressor(compressor, level))
    totals = {"records": 0, "bytes": 0}

    def rows() -> Iterator[dict[str, Any]]:
        chunks = _chunks(_units(input, input_format, rejects, shard), _unit_size)
        with Progress("scoring", unit="B", enabled=progress) as bar:
            for results in ordered_map(work, chunks, workers):
                for kind, *fields in results:
                    if kind == "reject":
                        reason, path, line, index, raw = fields
                        rejects.reject(InputError(reason, path, line, index), raw)
                        continue
                    index, id_, n, c = fields
                    totals["records"] += 1
                    totals["bytes"] += n
                    if id_ is None:
                        yield {"index": index, "compression_ratio": ratio(n, c), "bytes": n,
                               "compressed_bytes": c}
                    else:
                        yield {"index": index, "id": id_, "compression_ratio": ratio(n, c),
                               "bytes": n, "compressed_bytes": c}
                bar.update(sum(f[3] for kind, *f in results if kind == "row"))

    write_records(rows(), output)
    rejected_file = rejects.write(rejects_path(output))
    return RunSummary(totals["records"], len(rejects), time.perf_counter() - t0, Path(output),
                      rejected_file, totals["bytes"])


def _write_meta(output: str | Path, meta: dict[str, Any]) -> None:
    with atomic_path(f"{output}.meta.json") as tmp:
        tmp.write_text(json.dumps(meta, indent=1) + "\n")


def _word_model(input: Source, options: InputOptions) -> WordSurprisal:
    return WordSurprisal().fit(turns_text(turns)
                               for _, turns in rendered_records(input, options, Rejects("skip")))


def score_words(input: Source, output: str | Path, *, input_format: str | None = None,
                text_field: str | None = None, template: str | None = None,
                on_error: str = "raise", progress: bool | None = None,
                shard: Shard | None = None) -> RunSummary:
    """Write ``index``, ``id``, ``word_surprisal`` per record (unigram frequencies of this
    pool: the whole input, also when ``shard`` scores only a slice of it)."""
    t0 = time.perf_counter()
    options = InputOptions(input_format, "text", text_field, template, on_error)
    rejects = _rejects(on_error, shard)
    model = _word_model(input, options)

    def rows() -> Iterator[dict[str, Any]]:
        with Progress("scoring words", unit=" records", enabled=progress) as bar:
            for record, turns in rendered_records(input, options, rejects, shard):
                [ws] = model.score([turns_text(turns)])
                yield _id_row(record) | {"word_surprisal": float(ws)}
                bar.update()

    n = write_records(rows(), output)
    _write_meta(output, {"scorer": "words", "word_surprisal": WORD_SURPRISAL_DOC,
                         "vocabulary": len(model.counts_), "pool_words": model.total_})
    return RunSummary(n, len(rejects), time.perf_counter() - t0, Path(output),
                      rejects.write(rejects_path(output)))


WORD_SURPRISAL_DOC = "-(1/m) sum log f(w); f = add-one smoothed unigram frequency of the pool; words = \\w+ lower-cased"


def _id_row(record: Record) -> dict[str, Any]:
    id_ = record.data.get("id")
    return {"index": record.index} if id_ is None else {"index": record.index, "id": id_}


def add_info(rows: list[dict[str, Any]], info_lm: str, standardize: bool) -> None:
    """Set each LM score row's ``info`` (standardized over all ``rows`` if asked)."""
    lm_term = np.array([r["nll_mean"] if info_lm == "mean" else r["bits"] * np.log(2) for r in rows])
    info = combine_info(lm_term, np.array([r["word_surprisal"] for r in rows]), standardize)
    for row, value in zip(rows, info.tolist()):
        row["info"] = value


def combine_info(nll: np.ndarray, word_surprisal: np.ndarray, standardize: bool = False) -> np.ndarray:
    """``info = H(W, q) + H(W, f)``; with ``standardize`` each term is z-scored over the pool first."""
    def z(x: np.ndarray) -> np.ndarray:
        sd = np.nanstd(x)
        return (x - np.nanmean(x)) / sd if sd > 0 else x - np.nanmean(x)

    return z(nll) + z(word_surprisal) if standardize else nll + word_surprisal


def score_lm(input: Source, output: str | Path, *, model: str, gguf_file: str | None = None,
             target: str = "all", batch_size: int = 16, max_length: int = 1024,
             stride: int | None = None, device: str = "auto", dtype: str = "auto",
             info_lm: str = "mean", standardize: bool = False, input_format: str | None = None,
             text_field: str | None = None, template: str | None = None, on_error: str = "raise",
             progress: bool | None = None, shard: Shard | None = None,
             loaded: tuple[Any, Any] | None = None) -> RunSummary:
    """Write per record: ``index``, ``id``, ``tokens``, ``nll_mean``, ``bits``, ``perplexity``
    under ``model``, plus ``word_surprisal`` and ``info`` (``nll_mean`` or, with
    ``info_lm="total"``, the total NLL in nats, plus ``word_surprisal``). The options used
    are written to ``OUTPUT.meta.json``.

    Batches are formed within blocks of consecutive records (``shards.block_of``), so a
    ``shard`` forms the same batches as a whole run. ``loaded``: the ``(model, tokenizer)``
    pair already loaded from ``model`` (a Ray actor loads it once for many shards).
    """
    from entrosel.scoring.lm import LMScorer, load_causal_lm, resolve_device

    if info_lm not in ("mean", "total"):
        raise InputError(f"--info-lm must be 'mean' or 'total', not {info_lm!r}")
    t0 = time.perf_counter()
    options = InputOptions(input_format, "text", text_field, template, on_error)
    rejects = _rejects(on_error, shard)
    dev = resolve_device(device)
    lm, tokenizer = loaded if loaded is not None else load_causal_lm(model, gguf_file, dev, dtype)
    scorer = LMScorer(lm, tokenizer, batch_size=batch_size, max_length=max_length, stride=stride,
                      target=target, device=dev)
    words = _word_model(input, options)
    rows: list[dict[str, Any]] = []
    with Progress("scoring", unit=" tokens", enabled=progress) as bar:
        pending: list[tuple[Record, list]] = []

        def flush() -> None:
            for (record, turns), scores in zip(pending, scorer.score([t for _, t in pending], bar)):
                text = turns_text(turns)
                rows.append(_id_row(record) | scores | {"word_surprisal": float(words.score([text])[0])})
            pending.clear()

        for pair in rendered_records(input, options, rejects, shard):
            if pending and block_of(pending[0][0].index) != block_of(pair[0].index):
                flush()
            pending.append(pair)
        flush()
    add_info(rows, info_lm, standardize)
    write_records(rows, output)
    _write_meta(output, {"scorer": "lm", "model": model, "gguf_file": gguf_file, "target": target,
                         "max_length": scorer.max_length, "stride": scorer.stride, "batch_size": batch_size,
                         "device": dev, "dtype": str(next(lm.parameters()).dtype),
                         "bos_prepended": tokenizer.bos_token_id is not None,
                         "info": f"{'nll_mean' if info_lm == 'mean' else 'total NLL (nats)'} + "
                                 f"word_surprisal{', each z-scored over the pool' if standardize else ''}",
                         "info_lm": info_lm, "standardize": standardize,
                         "word_surprisal": WORD_SURPRISAL_DOC})
    return RunSummary(len(rows), len(rejects), time.perf_counter() - t0, Path(output),
                      rejects.write(rejects_path(output)), sum(r["tokens"] for r in rows))
