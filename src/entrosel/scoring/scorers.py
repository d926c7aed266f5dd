"""The scorers of ``entrosel score``: compression ratio, word surprisal, description length
under a language model. Each is one registered class (see :mod:`entrosel.scoring.base`)."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Iterator

import numpy as np

from entrosel.errors import InputError
from entrosel.formats.render import RenderError, turns_text
from entrosel.formats.serialize import SERIALIZATIONS, Serialization
from entrosel.io.readers import detect_format, jsonl_lines, parse_jsonl_line
from entrosel.io.records import Record, Rejects
from entrosel.params import Param, option
from entrosel.pool import (InputOptions, Pool, PoolBytes, PoolItems, Source, iter_records,
                           rendered_records)
from entrosel.progress import Progress
from entrosel.scoring.base import SCORERS, RunSummary, Scorer, id_row
from entrosel.scoring.compression import (COMPRESSOR_HELP, COMPRESSORS, LEVEL_HELP, SERIALIZE_HELP,
                                          Compressor, compressed_sizes, ratio)
from entrosel.scoring.lm import BATCH_SIZE, MAX_LENGTH, TARGETS
from entrosel.scoring.words import WordSurprisal

if TYPE_CHECKING:
    from entrosel.engines.base import Engine
    from entrosel.engines.shards import Shard

_CHUNK_BYTES = 1 << 20


# ------------------------------------------------------------------ compression ratio

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


def _sizes_of_range(bounds: tuple[int, int], items: PoolItems | PoolBytes,
                    compressor: Compressor) -> list[int]:
    opened = items.open()
    return compressed_sizes([opened[i] for i in range(*bounds)], compressor)


def compression_scores(texts: Iterable[bytes | str], compressor: str = "zlib",
                       level: int | None = None, workers: int | None = None,
                       engine: "str | Engine" = "local") -> np.ndarray:
    """Compression ratio of each text (float64), computed on ``engine`` (``workers`` processes).

    The texts go to the workers through a shared file-backed pool, not through pipes.
    """
    from entrosel.engines.base import make_engine

    runner = make_engine(engine, workers=workers)
    encoded = (t.encode("utf-8") if isinstance(t, str) else t for t in texts)
    with Pool.from_items(encoded) as pool:
        sizes = pool.sizes
        bounds = np.searchsorted(np.cumsum(sizes), np.arange(_CHUNK_BYTES, sizes.sum() + _CHUNK_BYTES,
                                                            _CHUNK_BYTES), side="right")
        edges = np.unique(np.concatenate([[0], np.minimum(bounds, len(pool)), [len(pool)]]))
        work = functools.partial(_sizes_of_range, items=runner.portable(pool.items),
                                 compressor=Compressor(compressor, level))
        ranges = [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]
        compressed = np.fromiter((c for part in runner.map(work, ranges) for c in part),
                                 dtype=np.float64, count=len(pool))
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


def _unit_size(unit: Unit) -> int:
    return len(unit[3]) if isinstance(unit, tuple) else 1024


@SCORERS.register("compression")
@dataclass(kw_only=True)
class CompressionScorer(Scorer):
    """Each record's compression ratio as a one-sample set (``repr``: ``[record]``):
    columns ``compression_ratio``, ``bytes``, ``compressed_bytes``."""

    serialize: str = option("text", SERIALIZE_HELP, group="compression",
                            param=Param(str, choices=SERIALIZATIONS))
    compressor: str = option("zlib", COMPRESSOR_HELP, group="compression",
                             param=Param(str, choices=COMPRESSORS))
    level: int | None = option(None, LEVEL_HELP, group="compression", param=Param(int))

    help: ClassVar[str] = "compression ratio of each record"
    description: ClassVar[str] = ("Write one row per record: index, id (if any), compression_ratio, "
                                  "bytes, compressed_bytes.")
    option_groups: ClassVar[tuple[str, ...]] = ("input", "compression")
    measured: ClassVar[str | None] = "bytes"
    parallel: ClassVar[bool] = True

    def _check(self) -> None:
        Compressor(self.compressor, self.level)  # refuses a level outside the compressor's range

    def rows(self, source: Source, rejects: Rejects, *, engine: Engine, shard: Shard | None,
             loaded: Any, progress: bool | None) -> Iterator[dict[str, Any]]:
        work = functools.partial(_score_units, serialization=self.input_options().serialization,
                                 compressor=Compressor(self.compressor, self.level))
        chunks = _chunks(_units(source, self.input_format, rejects, shard), _unit_size)
        with Progress("scoring", unit="B", enabled=progress) as bar:
            for results in engine.map(work, chunks):
                for kind, *fields in results:
                    if kind == "reject":
                        reason, path, line, index, raw = fields
                        rejects.reject(InputError(reason, path, line, index), raw)
                        continue
                    index, id_, n, c = fields
                    row = {"index": index} if id_ is None else {"index": index, "id": id_}
                    yield row | {"compression_ratio": ratio(n, c), "bytes": n, "compressed_bytes": c}
                bar.update(sum(f[3] for kind, *f in results if kind == "row"))

    def summary(self, s: RunSummary) -> str:
        rate = f" ({s.bytes / 1e6 / s.seconds:.1f} MB/s)" if s.seconds > 0 else ""
        return f", {s.bytes / 1e6:.1f} MB scored{rate}"


# ------------------------------------------------------------------ description length

def combine_info(nll: np.ndarray, word_surprisal: np.ndarray, standardize: bool = False) -> np.ndarray:
    """``info = H(W, q) + H(W, f)``; with ``standardize`` each term is z-scored over the pool first."""
    def z(x: np.ndarray) -> np.ndarray:
        sd = np.nanstd(x)
        return (x - np.nanmean(x)) / sd if sd > 0 else x - np.nanmean(x)

    return z(nll) + z(word_surprisal) if standardize else nll + word_surprisal


def add_info(rows: list[dict[str, Any]], info_lm: str, standardize: bool) -> None:
    """Set each LM score row's ``info`` (standardized over all ``rows`` if asked)."""
    lm_term = np.array([r["nll_mean"] if info_lm == "mean" else r["bits"] * np.log(2) for r in rows])
    info = combine_info(lm_term, np.array([r["word_surprisal"] for r in rows]), standardize)
    for row, value in zip(rows, info.tolist()):
        row["info"] = value


@SCORERS.register("lm")
@dataclass(kw_only=True)
class LanguageModelScorer(Scorer):
    """Per record: ``tokens``, ``nll_mean``, ``bits``, ``perplexity`` under ``model``, plus
    ``word_surprisal`` and ``info`` (``nll_mean``, or with ``info_lm="total"`` the total NLL
    in nats, plus ``word_surprisal``). Batches are formed within blocks of consecutive
    records (``shards.block_of``), so a shard forms the same batches as a whole run."""

    model: str | None = option(None, "model folder (e.g. from `entrosel probe train`), hub name, "
                               "or .gguf file", param=Param(str, required=True), metavar="PATH_OR_NAME")
    gguf_file: str | None = option(None, "GGUF file inside the --model folder", param=Param(str),
                                   metavar="NAME")
    target: str = option("all", "score all tokens, or only the assistant turns / Alpaca output, "
                         "conditioned on the prompt", param=Param(str, choices=TARGETS),
                         group="lm")
    batch_size: int = option(BATCH_SIZE, "samples per forward pass", param=Param(int, low=1), group="lm")
    max_length: int = option(MAX_LENGTH, "longer samples are scored in sliding windows of this many "
                             "tokens", param=Param(int, low=2), group="lm")
    stride: int | None = option(None, "window step (default: max-length / 2)", param=Param(int, low=1),
                                group="lm")
    device: str = option("auto", "cpu, cuda (or cuda:N), or auto: the GPU when PyTorch sees one",
                         param=Param(str), group="lm")
    dtype: str = option("auto", "auto: bfloat16 on GPU, float32 on CPU",
                        param=Param(str, choices=("auto", "float32", "bfloat16", "float16")), group="lm")
    info_lm: str = option("mean", "the LM term of info: nll_mean or the total NLL in nats",
                          param=Param(str, choices=("mean", "total")), group="lm")
    standardize: bool = option(False, "z-score the LM term and word_surprisal over the pool "
                               "before adding them", param=Param(bool), group="lm")
    threads: int | None = option(None, "PyTorch threads on CPU (default: every core)",
                                 param=Param(int, low=1), group="lm")

    help: ClassVar[str] = "description length under a causal LM (information content)"
    description: ClassVar[str] = (
        "Write per record: tokens, nll_mean (nats/token), bits (description length), perplexity "
        "under a Hugging Face causal LM, plus word_surprisal (unigram frequencies of the pool) "
        "and info = nll_mean + word_surprisal. The options used go to SCORES.meta.json. Needs "
        "the [lm] extra.")
    option_groups: ClassVar[tuple[str, ...]] = ("input", "lm")
    measured: ClassVar[str | None] = "tokens"
    loads_model: ClassVar[bool] = True
    content_fields: ClassVar[tuple[str, ...]] = ("model",)

    def _check(self) -> None:
        from entrosel.scoring.lm import check_device

        check_device(self.device)
        if self.stride is not None and self.stride >= self.max_length:
            raise InputError(f"--stride ({self.stride}) must be below --max-length ({self.max_length})")

    def load(self) -> tuple[Any, Any]:
        from entrosel.scoring.lm import load_causal_lm, resolve_device
        return load_causal_lm(self.model, self.gguf_file, resolve_device(self.device), self.dtype)

    def wants_gpu(self) -> bool:
        return self.device == "auto" or self.device.startswith("cuda")

    def rows(self, source: Source, rejects: Rejects, *, engine: Engine, shard: Shard | None,
             loaded: Any, progress: bool | None) -> Iterator[dict[str, Any]]:
        from entrosel.engines.shards import block_of
        from entrosel.scoring.lm import set_threads
        from entrosel.scoring.lm import LMScorer, resolve_device

        options = self.input_options()
        self.device_ = resolve_device(self.device)
        set_threads(self.threads)  # here: the process that scores, wherever the model loaded
        lm, self.tokenizer_ = loaded if loaded is not None else self.load()
        self.dtype_ = str(next(lm.parameters()).dtype)
        self.scorer_ = LMScorer(lm, self.tokenizer_, batch_size=self.batch_size,
                                max_length=self.max_length, stride=self.stride, target=self.target,
                                device=self.device_)
        words = word_model(source, options)
        with Progress("scoring", unit=" tokens", enabled=progress) as bar:
            pending: list[tuple[Record, list]] = []

            def flush() -> Iterator[dict[str, Any]]:
                for (record, turns), scores in zip(pending, self.scorer_.score([t for _, t in pending], bar)):
                    ws = float(words.score([turns_text(turns)])[0])
                    yield id_row(record) | scores | {"word_surprisal": ws}
                pending.clear()

            for pair in rendered_records(source, options, rejects, shard):
                if pending and block_of(pending[0][0].index) != block_of(pair[0].index):
                    yield from flush()
                pending.append(pair)
            yield from flush()

    def merge(self, rows: list[dict[str, Any]]) -> None:
        add_info(rows, self.info_lm, self.standardize)

    def meta(self) -> dict[str, Any]:
        info = "nll_mean" if self.info_lm == "mean" else "total NLL (nats)"
        return {"model": self.model, "gguf_file": self.gguf_file, "target": self.target,
                "max_length": self.scorer_.max_length, "stride": self.scorer_.stride,
                "batch_size": self.batch_size, "device": self.device_, "dtype": self.dtype_,
                "bos_prepended": self.tokenizer_.bos_token_id is not None,
                "info": f"{info} + word_surprisal{', each z-scored over the pool' if self.standardize else ''}",
                "info_lm": self.info_lm, "standardize": self.standardize,
                "word_surprisal": WORD_SURPRISAL_DOC}

    def summary(self, s: RunSummary) -> str:
        rate = f" ({s.bytes / s.seconds:,.0f} tokens/s)" if s.seconds > 0 else ""
        return f", {s.bytes:,} tokens scored{rate}"


# ------------------------------------------------------------------ word surprisal

WORD_SURPRISAL_DOC = "-(1/m) sum log f(w); f = add-one smoothed unigram frequency of the pool; words = \\w+ lower-cased"


def word_model(source: Source, options: InputOptions) -> WordSurprisal:
    """Unigram frequencies of the whole pool (also when one shard is scored)."""
    return WordSurprisal().fit(turns_text(turns)
                               for _, turns in rendered_records(source, options, Rejects("skip")))


@SCORERS.register("words")
@dataclass(kw_only=True)
class WordSurprisalScorer(Scorer):
    """``word_surprisal`` per record under the unigram frequencies of the whole input."""

    help: ClassVar[str] = "word surprisal under the pool's unigram frequencies"
    description: ClassVar[str] = ("Write per record: word_surprisal = -(1/m) sum log f(w) over its "
                                  "m words, f = add-one smoothed unigram frequencies of the whole input.")

    def rows(self, source: Source, rejects: Rejects, *, engine: Engine, shard: Shard | None,
             loaded: Any, progress: bool | None) -> Iterator[dict[str, Any]]:
        options = self.input_options()
        self.model_ = word_model(source, options)
        with Progress("scoring words", unit=" records", enabled=progress) as bar:
            for record, turns in rendered_records(source, options, rejects, shard):
                [ws] = self.model_.score([turns_text(turns)])
                yield id_row(record) | {"word_surprisal": float(ws)}
                bar.update()

    def meta(self) -> dict[str, Any]:
        return {"word_surprisal": WORD_SURPRISAL_DOC, "vocabulary": len(self.model_.counts_),
                "pool_words": self.model_.total_}
