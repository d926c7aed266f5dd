"""How close pool records are to a target set: three scores (``docs/algorithms.md`` section 7).

- **dict** (entrosel's): ``alignment(x) = 1 - C(x | T) / C(x)``, the target ``T`` digested
  once as a raw-content zstd dictionary (:mod:`entrosel.scoring.conditional`): one
  compression per pool record. A target over the dictionary's reach is cut into several
  dictionaries of consecutive target records; a record takes the best of them.
- **ncd** (ZIP-FIT, Obbad et al. 2024): ``mean over t in T of 1 - NCD(x, t)`` with
  ``NCD(x, t) = (C(xt) - min(C(x), C(t))) / max(C(x), C(t))``, ``C`` the size of gzip's
  output (header and trailer included, as ``zip-fit`` counts) and ``xt`` the two texts
  concatenated: ``N x M`` compressions.
- **dsir** (Xie et al. 2023): unigrams and bigrams of the lower-cased text (NLTK's
  ``wordpunct`` split, ``\\w+|[^\\w\\s]+``) hashed into ``buckets`` buckets by sha256, as
  ``data-selection`` does; add-one smoothed bucket models of target and pool; a record's
  log importance weight is the sum over its n-grams of ``log p_T - log p_pool``.
  (``data-selection`` smooths by ``log(p + 1e-8)`` instead, and NLTK runs the split with
  the ``regex`` engine, whose ``\\w`` differs from ``re``'s on a few characters: emoji
  variation selectors, zero-width joiners, superscript digits; stdlib ``re`` keeps the
  core free of that dependency.)

The functions here score the byte strings of one chunk; :mod:`entrosel.selection.target`
runs them over worker processes.
"""
from __future__ import annotations

import hashlib
import re
import zlib
from typing import Iterable, Sequence

import numpy as np

from entrosel.scoring.conditional import DigestedAnchor, LongMemory

# zstd level of the dict method: on a 10,000-record pool of three real sources, level 9 put
# 97.7% of the first 300 picks in the target's source where level 3 put 94.3% (docstrings
# target; Shakespeare: 90.3% against 82.0%), for 1.4-1.9x the scoring time
DICT_LEVEL = 9
NCD_LEVEL = 9  # ZIP-FIT's paper; zip-fit as installed defaults to 0 (stored, no compression)
DSIR_BUCKETS = 10_000
_GZIP = 31  # zlib wbits for a gzip container: the same bytes as gzip.compress(..., mtime=0)
_WORDPUNCT = re.compile(r"\w+|[^\w\s]+")
SEPARATOR = b"\n\n"  # between target records inside a dictionary (the text serialization's)


def dictionary_shards(items: Sequence[bytes], limit: int) -> list[bytes]:
    """The target's records, in order, joined into dictionaries of at most ``limit`` bytes
    (a record longer than ``limit`` on its own); one dictionary when all fit."""
    shards: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for item in items:
        extra = len(item) + (len(SEPARATOR) if current else 0)
        if current and size + extra > limit:
            shards.append(SEPARATOR.join(current))
            current, size = [], 0
            extra = len(item)
        current.append(item)
        size += extra
    if current:
        shards.append(SEPARATOR.join(current))
    return shards


class DictionaryAlignment:
    """``1 - C(x | T) / C(x)`` for many ``x`` against one target, its dictionaries built once."""

    def __init__(self, target: Sequence[bytes], level: int | None = None,
                 shard_bytes: int | None = None) -> None:
        self.memory = LongMemory(DICT_LEVEL if level is None else level)
        limit = self.memory.reach_bytes if shard_bytes is None else shard_bytes
        self.shards: list[DigestedAnchor] = [self.memory.digest(s) for s in dictionary_shards(target, limit)]

    def alignments(self, items: Iterable[bytes]) -> np.ndarray:
        items = list(items)
        alone = np.array([self.memory.size(x) for x in items], dtype=np.float64)
        given = np.min([d.sizes(items) for d in self.shards], axis=0).astype(np.float64)
        # an empty text costs nothing either way: no evidence for or against the target
        out = np.zeros(len(items), dtype=np.float64)
        np.divide(given, alone, out=out, where=alone > 0)
        return np.where(alone > 0, 1.0 - out, 0.0)


def gzip_size(data: bytes, level: int = NCD_LEVEL) -> int:
    """Bytes of ``gzip.compress(data, level)``: what ZIP-FIT calls the compressed size."""
    return len(zlib.compress(data, level, _GZIP))


class NcdAlignment:
    """ZIP-FIT's alignment: mean over the target of ``1 - NCD(x, t)``, gzip at ``level``."""

    def __init__(self, target: Sequence[bytes], level: int = NCD_LEVEL) -> None:
        self.level = level
        self.target = list(target)
        self.target_sizes = [gzip_size(t, level) for t in self.target]

    def alignment(self, x: bytes) -> float:
        cx = gzip_size(x, self.level)
        total = 0.0
        for t, ct in zip(self.target, self.target_sizes):
            low, high = (cx, ct) if cx < ct else (ct, cx)
            total += 1.0 - (gzip_size(x + t, self.level) - low) / high
        return total / len(self.target)

    def alignments(self, items: Iterable[bytes]) -> np.ndarray:
        return np.asarray([self.alignment(x) for x in items], dtype=np.float64)


class HashedNgrams:
    """Bag of hashed unigrams and bigrams, bucketed as ``data-selection``'s ``get_ngram_counts``.

    Buckets of strings already seen are remembered (n-grams repeat a lot), which is where
    the speed over hashing every occurrence comes from; the buckets are the same.
    """

    def __init__(self, buckets: int = DSIR_BUCKETS) -> None:
        self.buckets = buckets
        self._known: dict[str, int] = {}

    def _bucket(self, s: str) -> int:
        b = self._known.get(s)
        if b is None:
            b = int.from_bytes(hashlib.sha256(s.encode("utf-8")).digest(), "big") % self.buckets
            self._known[s] = b
        return b

    def ids(self, text: str) -> np.ndarray:
        """The bucket of every unigram and bigram occurrence of ``text``."""
        words = _WORDPUNCT.findall(text.lower())
        bucket = self._bucket
        ids = [bucket(w) for w in words]
        ids += [bucket(f"{a} {b}") for a, b in zip(words, words[1:])]
        return np.asarray(ids, dtype=np.int64)

    def counts(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """``text``'s features, sparse: the buckets present and how often each occurs."""
        buckets, counts = np.unique(self.ids(text), return_counts=True)
        return buckets.astype(np.int32), counts.astype(np.int32)


def bucket_log_probs(counts: np.ndarray, smoothing: float = 1.0) -> np.ndarray:
    """``log p(f)`` of an add-``smoothing`` bag-of-buckets model from its bucket ``counts``."""
    counts = np.asarray(counts, dtype=np.float64)
    return np.log(counts + smoothing) - np.log(counts.sum() + smoothing * len(counts))


def log_importance_weights(features: Sequence[tuple[np.ndarray, np.ndarray]],
                           log_ratio: np.ndarray) -> np.ndarray:
    """``sum over a record's n-grams of log p_T(f) - log p_pool(f)``, one per record."""
    return np.asarray([float(counts @ log_ratio[buckets]) for buckets, counts in features],
                      dtype=np.float64)
