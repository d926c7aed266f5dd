"""Select toward a target: the pool records closest to a set of examples (``docs/algorithms.md`` section 7).

``TargetSelector(method=...).fit(target)`` reads the target; ``score(pool)`` gives every
readable pool record its score (``dict``, ``ncd``: alignment, higher is closer; ``dsir``: the
log importance weight); ``select(pool)`` returns input indices in selection order:

- ``dict`` and ``ncd``: highest score first, ties to the lower input row;
- ``dsir``: Gumbel top-k on ``weight + Gumbel noise`` drawn from ``seed`` (importance
  resampling without replacement, as DSIR);
- ``diverse=True``: long-memory ZIP (:class:`~entrosel.selection.zip.ZipSelector` with zstd)
  picks the budget out of the ``candidates`` x budget best records, so a target-aligned
  subset is not also a redundant one.

The work runs over worker processes; the scores do not depend on their number.
"""
from __future__ import annotations

import functools
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from entrosel.errors import InputError
from entrosel.io.records import Rejects
from entrosel.pool import (InputOptions, Pool, PoolBytes, PoolItems, Source, load_pool,
                           pick_records, reusable)
from entrosel.params import Param, check_fields, option
from entrosel.progress import Progress
from entrosel.scoring.conditional import LongMemory
from entrosel.scoring.target import (DICT_LEVEL, DSIR_BUCKETS, NCD_LEVEL, DictionaryAlignment,
                                     HashedNgrams, NcdAlignment, bucket_log_probs,
                                     dictionary_shards, log_importance_weights)
from entrosel.scoring.tokens import count_tokens, load_tokenizer
from entrosel.selection.base import SELECTORS, EngineSelector
from entrosel.selection.by_score import _take, budget_size, top_k

METHODS = ("dict", "ncd", "dsir")
SCORE_COLUMN = {"dict": "alignment", "ncd": "alignment", "dsir": "log_importance_weight"}
# bytes of pool per unit of work: ncd compresses every record once per target record
_CHUNK_BYTES = {"dict": 1 << 20, "ncd": 1 << 16, "dsir": 1 << 20}

# One scorer per worker process, built on its first chunk (a digested dictionary, the
# target's gzip sizes, the n-gram bucket memo) and kept for the chunks that follow.
_WORKER_SCORER: tuple[tuple, Any] | None = None


def _target_key(target: PoolItems | PoolBytes | None) -> Any:
    """Which target a worker's scorer was built for: its file, or its bytes (shipped)."""
    if target is None:
        return None
    return target.path if isinstance(target, PoolItems) else hash(target.data)


def _scorer(method: str, target: PoolItems | PoolBytes | None, level: int | None,
            shard_bytes: int | None, buckets: int) -> Any:
    global _WORKER_SCORER
    key = (method, _target_key(target), level, shard_bytes, buckets)
    if _WORKER_SCORER is None or _WORKER_SCORER[0] != key:
        if method == "dsir":
            scorer: Any = HashedNgrams(buckets)
        else:
            opened = target.open()
            items = [opened[i] for i in range(len(opened))]
            scorer = (DictionaryAlignment(items, level, shard_bytes) if method == "dict"
                      else NcdAlignment(items, NCD_LEVEL if level is None else level))
        _WORKER_SCORER = (key, scorer)
    return _WORKER_SCORER[1]


def _score_range(bounds: tuple[int, int], items: PoolItems | PoolBytes, method: str,
                 target: PoolItems | PoolBytes | None,
                 level: int | None, shard_bytes: int | None, buckets: int) -> Any:
    opened = items.open()
    texts = [opened[i] for i in range(*bounds)]
    scorer = _scorer(method, target, level, shard_bytes, buckets)
    if method == "dsir":
        return [scorer.counts(t.decode("utf-8", "surrogatepass")) for t in texts]
    return scorer.alignments(texts)


def _ranges(sizes: np.ndarray, chunk_bytes: int) -> list[tuple[int, int]]:
    """Consecutive ranges of items holding about ``chunk_bytes`` each."""
    ends = np.searchsorted(np.cumsum(sizes), np.arange(chunk_bytes, int(sizes.sum()) + chunk_bytes,
                                                       chunk_bytes), side="right")
    edges = np.unique(np.concatenate([[0], np.minimum(ends, len(sizes)), [len(sizes)]]))
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


@SELECTORS.register("target")
@dataclass(kw_only=True)
class TargetSelector(EngineSelector):
    """Select the pool records closest to a target set (see the module docstring).

    After ``fit``: ``target_records_``, ``target_bytes_``, ``dictionaries_`` (dict: how many
    the target was cut into to stay within ``reach_bytes_``), ``target_counts_`` (dsir).
    After ``score``: ``index_`` (input rows scored), ``ids_``, ``scores_``, ``rejects_``,
    ``score_seconds_``; after ``select``: ``selected_`` and ``tokens_`` (with a token budget).
    ``notes_``: what was said on stderr.
    """

    target: Source | None = option(None, "the target set (any input format; records rendered as "
                                   "the pool's)", metavar="TARGET", required=True)
    method: str = option("dict", "dict (default), ncd or dsir", param=Param(str, choices=METHODS))
    budget: int | None = option(None, "select N records", param=Param(int, low=1), metavar="N",
                                group="budget")
    budget_tokens: int | None = option(None, "select records until they hold N tokens (needs "
                                       "--tokenizer)", param=Param(int, low=1), metavar="N",
                                       group="budget")
    keep: float | None = option(None, "select this fraction of the pool",
                                param=Param(float, low=0, high=1, low_open=True), metavar="FRACTION",
                                group="budget")
    tokenizer: str | None = option(None, "count tokens with this HF tokenizer", param=Param(str),
                                   metavar="PATH_OR_NAME")
    seed: int = option(0, "dsir's resampling seed", param=Param(int, low=0))
    diverse: bool = option(False, "run long-memory ZIP (zstd) over the best --candidates x budget "
                           "records, so the selection is aligned and not redundant", param=Param(bool))
    candidates: float = option(4.0, "with --diverse: ZIP's shortlist, X times the budget",
                               param=Param(float, low=1), metavar="X")
    level: int | None = option(None, "dict: zstd level (default: 9); ncd: gzip level (default: 9)",
                               param=Param(int), group="method")
    shard_bytes: int | None = option(
        None, "dict: target bytes per dictionary (default: as far as zstd's dictionary reaches: "
        "32 MiB at level 5 and up, 16 MiB at levels 1-4); a larger target is cut into several",
        param=Param(int, low=1), metavar="B", group="method")
    buckets: int = option(DSIR_BUCKETS, "dsir: hash buckets", param=Param(int, low=2, high=1 << 24),
                          group="method")
    target_format: str | None = option(None, "the target's format (default: from its extension)",
                                       group="method")

    selected_: list[int] = field(default_factory=list, init=False, repr=False)

    # -- checks -------------------------------------------------------------------------

    help: ClassVar[str] = "the records closest to a target set (dict, ZIP-FIT's ncd, DSIR)"
    description: ClassVar[str] = (
        "Select the pool records most like a target set (a few hundred examples of what the "
        "model should get better at). dict (default): alignment = 1 - C(x|T)/C(x), each record "
        "compressed once with the whole target as a zstd dictionary. ncd: ZIP-FIT's mean "
        "1 - NCD to every target record (gzip level 9; N x M compressions). dsir: "
        "hashed-n-gram importance weights, resampled by Gumbel top-k with --seed. Output: the "
        "selected records, unchanged, best first.")
    option_groups: ClassVar[tuple[str, ...]] = ("budget", "method", "input", "engine")
    content_fields: ClassVar[tuple[str, ...]] = ("target", "tokenizer")
    scores_out_help: ClassVar[str | None] = ("write every record's index, id, score (alignment, or "
                                             "dsir's log_importance_weight) and rank in the selection")

    @classmethod
    def example_options(cls, folder: Path) -> dict[str, Any]:
        target = folder / "target.jsonl"
        target.write_text('{"text": "Tell me about the moon and volcanoes, in a few sentences."}\n'
                          '{"text": "What is worth remembering about prime numbers?"}\n')
        return {"target": str(target), "budget": 6, "workers": 1}

    def _validate(self, selecting: bool = False) -> None:
        check_fields(self)
        if self.level is not None:
            if self.method == "dict":
                LongMemory(self.level)  # refuses a level outside zstd's 1..22
            elif self.method == "ncd" and not 0 <= self.level <= 9:
                raise InputError(f"--level for ncd (gzip) must be in 0..9, not {self.level}")
        self._make_engine()
        if not selecting:
            return
        given = sum(x is not None for x in (self.budget, self.budget_tokens, self.keep))
        if given != 1:
            raise InputError("give one of --budget N, --budget-tokens N or --keep FRACTION")
        if self.budget_tokens is not None and not self.tokenizer:
            raise InputError("--budget-tokens needs --tokenizer PATH_OR_NAME")
        if self.target is None and not hasattr(self, "target_records_"):
            raise InputError("give the target: --target TARGET (or fit(target) first)")

    def validate(self) -> "TargetSelector":
        self._validate(selecting=True)
        return self

    def rejected(self) -> Rejects:
        return Rejects("skip", self.target_rejects_.rejected + self.rejects_.rejected)

    def score_rows(self, indices: list[int]) -> list[dict[str, Any]]:
        rank = {index: r for r, index in enumerate(indices)}
        column = SCORE_COLUMN[self.method]
        rows = []
        for index, id_, value in zip(self.index_.tolist(), self.ids_, self.scores_.tolist()):
            row: dict[str, Any] = {"index": index}
            if id_ is not None:
                row["id"] = id_
            row[column] = value
            row["rank"] = rank.get(index)
            rows.append(row)
        return rows

    def summary(self, s: Any) -> str:
        extra = (f" selected ({self.method}{', diverse' if self.diverse else ''}) of "
                 f"{len(self.index_):,} toward a target of {self.target_records_:,}")
        if self.dictionaries_ > 1:
            extra += f" cut into {self.dictionaries_} dictionaries"
        if self.tokens_ is not None:
            extra += f", {self.tokens_:,} tokens"
        return extra

    def _options(self, input_format: str | None) -> InputOptions:
        return InputOptions(input_format, "text", self.text_field, self.template, self.on_error)

    def _say(self, note: str) -> None:
        self.notes_.append(note)
        print(f"entrosel: {note}", file=sys.stderr)

    # -- the estimator ------------------------------------------------------------------

    def fit(self, target: Source) -> "TargetSelector":
        """Read ``target`` (a path or dict records) and prepare the method's model of it."""
        self._validate()
        self.notes_: list[str] = []
        self.target_rejects_ = Rejects(self.on_error)
        where = target if isinstance(target, (str, Path)) else None
        if where is not None and not Path(where).exists():
            raise InputError("--target: no such file or folder", where)
        with load_pool(target, self._options(self.target_format), self.target_rejects_,
                       progress=False) as pool:
            items = [pool[i] for i in range(len(pool))]
        if not any(items):
            raise InputError("the target holds no text (no records, all rejected, or all empty)", where)
        self.target_records_ = len(items)
        self.target_bytes_ = sum(map(len, items))
        self._target_items = items
        self.dictionaries_ = 1
        if self.method == "dict":
            memory = LongMemory(DICT_LEVEL if self.level is None else self.level)
            self.reach_bytes_ = memory.reach_bytes
            limit = self.reach_bytes_ if self.shard_bytes is None else self.shard_bytes
            self.dictionaries_ = len(dictionary_shards(items, limit))
            if self.target_bytes_ > self.reach_bytes_:
                self._say(f"the target ({self.target_bytes_ / 2**20:.1f} MiB) is more than zstd level "
                          f"{memory.level} reaches into one dictionary ({self.reach_bytes_ / 2**20:.0f} MiB): "
                          f"cut into {self.dictionaries_} dictionaries, each record scored "
                          f"against its best one ({self.dictionaries_}x the work)")
        if self.method == "dsir":
            with Pool.from_items(items) as pool:
                features = self._map(pool, None, "reading the target")
            self.target_counts_ = self._bucket_counts(features)
        return self

    def _bucket_counts(self, features: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        counts = np.zeros(self.buckets, dtype=np.int64)
        for buckets, n in features:
            np.add.at(counts, buckets, n)
        return counts

    def _map(self, pool: Pool, target: PoolItems | None, what: str) -> Any:
        """The method's per-record work over ``pool``, in worker processes, in order."""
        portable = self.engine_.portable  # the workers may be on other machines
        work = functools.partial(_score_range, items=portable(pool.items), method=self.method,
                                 target=None if target is None else portable(target),
                                 level=self.level, shard_bytes=self.shard_bytes, buckets=self.buckets)
        sizes = pool.sizes
        ranges = _ranges(sizes, _CHUNK_BYTES[self.method])
        parts = []
        with Progress(what, total=float(sizes.sum()), unit="B", enabled=self.progress) as bar:
            for (a, b), part in zip(ranges, self.engine_.map(work, ranges)):
                parts.append(part)
                bar.update(float(sizes[a:b].sum()))
        global _WORKER_SCORER
        _WORKER_SCORER = None  # with one worker it lived here: let its memory go
        if self.method == "dsir":
            return [f for part in parts for f in part]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float64)

    def score(self, pool: Source) -> np.ndarray:
        """Every readable pool record's score, in input order (``index_`` says which rows)."""
        return self._score(pool, None)

    def _score(self, pool: Source, tokenizer: Any, selecting: bool = False) -> np.ndarray:
        # with a tokenizer, also count each record's tokens while its text is at hand
        if not hasattr(self, "target_records_"):
            if self.target is None:
                raise InputError("give the target: TargetSelector(target=...) or fit(target) first")
            self.fit(self.target)
        t0 = time.perf_counter()
        self.rejects_ = Rejects(self.on_error)
        with load_pool(pool, self._options(self.input_format), self.rejects_, self.progress) as p:
            if len(p) == 0:
                raise InputError("no usable records in the pool (all were rejected)",
                                 pool if isinstance(pool, (str, Path)) else None)
            if selecting:
                self._check_budget(len(p))
            self.index_ = p.index.copy()
            self.ids_ = list(p.ids)
            if self.method == "dsir":
                features = self._map(p, None, "scoring toward the target")
                self.pool_counts_ = self._bucket_counts(features)
                log_ratio = bucket_log_probs(self.target_counts_) - bucket_log_probs(self.pool_counts_)
                self.scores_ = log_importance_weights(features, log_ratio)
            else:
                with Pool.from_items(self._target_items) as t:
                    self.scores_ = self._map(p, t.items, "scoring toward the target")
            self._tokens = None if tokenizer is None else count_tokens(
                (p[i].decode("utf-8", "surrogatepass") for i in range(len(p))), tokenizer)
        self.score_seconds_ = time.perf_counter() - t0
        return self.scores_

    def _order(self) -> np.ndarray:
        """Positions of the scored records, first pick first."""
        if self.method == "dsir":
            noisy = self.scores_ + np.random.default_rng(self.seed).gumbel(size=len(self.scores_))
            return np.argsort(-noisy, kind="stable")
        return top_k(self.scores_, budget=len(self.scores_))

    def select(self, pool: Source) -> list[int]:
        """Score ``pool`` and return the input indices of the selection, in selection order
        (fitted on ``target`` first when not fitted yet)."""
        self._validate(selecting=True)
        pool = reusable(pool)
        if not hasattr(self, "target_records_"):
            self.fit(self.target)
        # a tokenizer that does not load is a bad option: found out before the work
        tokenizer = load_tokenizer(self.tokenizer) if self.budget_tokens is not None else None
        self._score(pool, tokenizer, selecting=True)
        tokens = self._tokens
        order = self._order()
        if not self.diverse:
            chosen = _take(order, keep=self.keep, budget=self.budget,
                           budget_tokens=self.budget_tokens, tokens=tokens)
            self.selected_ = self.index_[chosen].tolist()
            self.tokens_ = None if tokens is None else int(tokens[chosen].sum())
            return self.selected_
        return self._select_diverse(pool, order, tokens)

    def _select_diverse(self, pool: Source, order: np.ndarray, tokens: np.ndarray | None) -> list[int]:
        from entrosel.selection.zip import ZipSelector

        if self.budget_tokens is not None:
            wanted = dict(budget_tokens=self.budget_tokens, tokenizer=self.tokenizer)
            shortlist = _take(order, keep=None, budget=None, tokens=tokens,
                              budget_tokens=math.ceil(self.candidates * self.budget_tokens))
        else:
            k = budget_size(len(order), keep=self.keep, budget=self.budget)
            wanted = dict(budget=k)
            shortlist = order[: math.ceil(self.candidates * k)]
        rows = self.index_[shortlist].tolist()
        if not rows or not (self.budget_tokens or wanted.get("budget")):
            self.selected_, self.tokens_ = [], (0 if self.budget_tokens is not None else None)
            return self.selected_
        records = [r.data for r in pick_records(pool, rows, self.input_format)]
        zip_ = ZipSelector(compressor="zstd", engine=self.engine_, text_field=self.text_field,
                           template=self.template, progress=self.progress, **wanted)
        picked = zip_.select(records)
        self.selected_ = [rows[i] for i in picked]
        self.tokens_ = zip_.tokens_ if self.budget_tokens is not None else None
        return self.selected_
