"""MinHash signatures of word n-grams, hashed in bulk with NumPy, and LSH banding.

Shingling builds no Python string per shingle: a chunk of texts is encoded once, word
boundaries are found on the byte array, each word is hashed with a positional polynomial
hash over prefix sums (uint64 arithmetic wraps, so every step is one NumPy operation), and
each n-gram's hash is a mix of its words' hashes, each weighted by its position. The signatures are computed from the flat
hash buffer by ``rensa`` (Rust), which measured faster than ``datasketch`` on the same
hashes (``benchmarks/bench_dedup.py --part backends``).

Words are runs of ASCII letters, digits and ``_`` plus any non-ASCII byte (so accented and
non-Latin words stay whole); the text is lower-cased first. A text with fewer than ``n``
words has one shingle (its words); a text with no word has none.
"""
from __future__ import annotations

import itertools
import os

import numpy as np

from entrosel.errors import InputError

_U64 = np.uint64
_BASE = 0x100000001B3  # odd, so invertible modulo 2**64
_BASE_INV = pow(_BASE, -1, 1 << 64)
# distinct odd multipliers for the words of an n-gram (position matters: "a b" != "b a")
_POSITION = np.array([(0x9E3779B97F4A7C15 * (2 * i + 1)) % (1 << 64) | 1 for i in range(64)], dtype=_U64)
_powers_cache: dict[str, np.ndarray] = {"pow": np.ones(1, dtype=_U64), "inv": np.ones(1, dtype=_U64)}


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer, element-wise (a bijection on uint64 that spreads every bit)."""
    x = x ^ (x >> _U64(30))
    x = x * _U64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> _U64(27))
    x = x * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


def _word_bytes(buf: np.ndarray) -> np.ndarray:
    """Which bytes of lower-cased UTF-8 belong to words (comparisons beat a lookup table)."""
    return ((buf - np.uint8(97) < 26) | (buf >= 128) | (buf - np.uint8(48) < 10)
            | (buf == 95))


def _power_table(base: int, n: int) -> np.ndarray:
    """``base**i`` modulo 2**64 for i < n: an outer product of two short cumulative products
    (one long ``cumprod`` is many times slower)."""
    block = 4096
    with np.errstate(over="ignore"):
        low = np.ones(block, dtype=_U64)  # base**0 .. base**(block - 1)
        low[1:] = np.cumprod(np.full(block - 1, base, dtype=_U64))
        step = pow(base, block, 1 << 64)
        high = np.ones(-(-n // block), dtype=_U64)
        high[1:] = np.cumprod(np.full(len(high) - 1, step, dtype=_U64))
        return np.multiply.outer(high, low).ravel()[:n]


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``BASE**i`` and ``BASE**-i`` modulo 2**64 for i < n (cached, grown on demand)."""
    if len(_powers_cache["pow"]) < n:
        size = max(n, 2 * len(_powers_cache["pow"]))
        _powers_cache["pow"] = _power_table(_BASE, size)
        _powers_cache["inv"] = _power_table(_BASE_INV, size)
    return _powers_cache["pow"][:n], _powers_cache["inv"][:n]


def shingle_hashes(texts: list[str], ngram: int) -> tuple[np.ndarray, np.ndarray]:
    """The word ``ngram``-gram hashes of each text, flat (uint64), and row offsets (uint64,
    ``len(texts) + 1``): text ``i`` owns ``hashes[offsets[i]:offsets[i + 1]]``."""
    encoded = [t.lower().encode("utf-8", "surrogatepass") for t in texts]
    m = len(encoded)
    # a 0 byte between texts is not a word byte, so no word spans two texts
    buf = np.frombuffer(b"\x00".join(encoded), dtype=np.uint8)
    n = len(buf)
    text_start = np.zeros(m, dtype=np.int64)
    if m > 1:
        text_start[1:] = np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=m)[:-1] + 1)
    is_word = np.zeros(n + 2, dtype=bool)
    is_word[1:-1] = _word_bytes(buf)
    edges = np.flatnonzero(is_word[1:] != is_word[:-1])
    starts, ends = edges[0::2], edges[1::2]
    power, inverse = _powers(n + 1)
    # word hash = sum over its bytes of (byte + 1) * BASE**(offset in the word), mod 2**64
    prefix = np.zeros(n + 1, dtype=_U64)
    step = buf.astype(_U64)
    step += _U64(1)
    step *= power[:n]
    np.cumsum(step, out=prefix[1:])
    del step
    # not mixed here: each n-gram's combination of them is mixed once below
    words = (prefix[ends] - prefix[starts]) * inverse[starts]
    counts = np.diff(np.searchsorted(starts, text_start), append=len(starts))
    owner = np.repeat(np.arange(m), counts)

    parts, owners = [], []
    if len(words) >= ngram:  # full n-grams that stay within one text
        k = len(words) - ngram + 1
        h = words[:k] * _POSITION[0]
        for t in range(1, ngram):
            h = h + words[t:t + k] * _POSITION[t]
        inside = owner[:k] == owner[ngram - 1:]
        parts.append(mix64(h[inside]))
        owners.append(owner[:k][inside])
    short = np.flatnonzero((counts > 0) & (counts < ngram))
    if len(short):  # fewer words than n: one shingle of all of them
        first = np.cumsum(counts) - counts
        h = np.zeros(len(short), dtype=_U64)
        for t in range(ngram - 1):
            has = counts[short] > t
            h[has] = h[has] + words[first[short][has] + t] * _POSITION[t]
        parts.append(mix64(h))
        owners.append(short)
    if not parts:
        return np.zeros(0, dtype=_U64), np.zeros(m + 1, dtype=_U64)
    hashes, owner_of = np.concatenate(parts), np.concatenate(owners)
    order = np.argsort(owner_of, kind="stable")
    offsets = np.zeros(m + 1, dtype=_U64)
    offsets[1:] = np.cumsum(np.bincount(owner_of, minlength=m))
    return hashes[order], offsets


# the processes that have signed here: rensa may have started its Rust thread pool in them
_SIGNED_IN: set[int] = set()


def threads_started_here() -> bool:
    """Whether this process has computed signatures, and so may hold rensa's thread pool: a
    process forked from it gets the pool's state without its threads, and its first
    signature waits on them for ever."""
    return os.getpid() in _SIGNED_IN


def signatures(hashes: np.ndarray, offsets: np.ndarray, num_perm: int, seed: int) -> np.ndarray:
    """MinHash signature of each row (``rensa``'s RMinHash): shape (rows, num_perm), uint32.
    A row with no hash gets all 0xFFFFFFFF."""
    try:
        import rensa
    except ImportError:
        raise InputError("near-duplicate detection needs the [dedup] extra: "
                         "pip install 'entrosel[dedup]'") from None
    rows = len(offsets) - 1
    if rows == 0:
        return np.zeros((0, num_perm), dtype=np.uint32)
    _SIGNED_IN.add(os.getpid())
    matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(hashes, offsets, num_perm, seed)
    flat = np.fromiter(itertools.chain.from_iterable(matrix.to_rows()), dtype=np.uint32,
                       count=rows * num_perm)
    return flat.reshape(rows, num_perm)


def lsh_params(threshold: float, num_perm: int, false_positive_weight: float = 0.5,
               false_negative_weight: float = 0.5) -> tuple[int, int]:
    """Bands and rows per band minimising the weighted false positive and false negative
    probability mass around ``threshold`` (datasketch's ``_optimal_param``, integrated on a
    fine grid instead of with SciPy)."""
    s = np.linspace(0.0, 1.0, 4001)
    pairs = np.array([(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)])
    with np.errstate(divide="ignore"):
        # log(1 - s**r) for every r, then (1 - s**r)**b = exp(b log(1 - s**r)): no float pow
        log_miss = np.log1p(-np.cumprod(np.tile(s, (num_perm, 1)), axis=0))
    miss = np.exp(pairs[:, :1] * log_miss[pairs[:, 1] - 1])  # P(not a candidate | s), per (b, r)
    below, above = s <= threshold, s >= threshold
    fp = np.trapezoid(1.0 - miss[:, below], s[below], axis=1)
    fn = np.trapezoid(miss[:, above], s[above], axis=1)
    best = int(np.argmin(fp * false_positive_weight + fn * false_negative_weight))  # first of ties
    return int(pairs[best, 0]), int(pairs[best, 1])


def band_hashes(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One uint64 hash per band of each signature: shape (len(sig), bands)."""
    parts = sig[:, :bands * rows].astype(_U64).reshape(len(sig), bands, rows)
    h = np.zeros((len(sig), bands), dtype=_U64)
    for j in range(rows):
        h = mix64(h * _POSITION[j] + parts[:, :, j] + _U64(1))
    return h
