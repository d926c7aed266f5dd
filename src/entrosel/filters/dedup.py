"""``filter dedup``: exact duplicates, and with ``near`` MinHash LSH near duplicates.

Keep-first: a record is removed when it repeats an earlier record, which it names
(``duplicate_of``), so the first of each group stays. Exact copies name the first copy; a
near duplicate names an earlier record that is kept.

- exact: a 128-bit BLAKE2 digest of each record's rendered text (optionally lower-cased
  and with runs of whitespace collapsed); duplicates are found by sorting the digests.
- near: the word n-grams of each text are hashed to integers in bulk
  (:mod:`entrosel.filters.minhash`), MinHash-signed with ``rensa`` and banded (LSH, bands
  and rows chosen as datasketch does for ``threshold``); records sharing a band bucket are
  candidates, and a candidate pair counts when the signatures' estimated Jaccard similarity
  reaches ``threshold`` (so LSH false positives are dropped). A record is removed when it is
  similar to an earlier kept record; chains (A~B, B~C, A!~C) do not remove C through B.

Memory: RAM holds 26 bytes per record (digest, index, status, has-a-shingle flag), the
removals, and one chunk of text (4 MiB; hashed 1 MiB at a time) with its hashes; the
signatures (4 x ``num_perm`` bytes per record) and the band tables (8 bytes per band per
record) go to files in a temporary folder (``work_dir``), and candidates are found one band
at a time, so only one band's table is in memory (about 50 bytes per record while it is
sorted and grouped).
"""
from __future__ import annotations

import array
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import partial
from typing import ClassVar, Self

import numpy as np

from entrosel.engines import Engine, make_engine
from entrosel.errors import InputError
from entrosel.filters.base import Batch, FILTERS, Filter, Removal
from entrosel.filters.minhash import (band_hashes, lsh_params, shingle_hashes, signatures,
                                      threads_started_here)
from entrosel.params import Param, option
from entrosel.formats.render import turns_text
from entrosel.pool import InputOptions, Source

_CHUNK_BYTES = 1 << 22
# a worker hashes a chunk this much at a time: hashing holds about 40x the text it works on
# (prefix sums, power tables); on 494,627 records of the scale pool dedup's process tree
# peaked at 231 MB with 1 MiB, against 578 MB hashing whole 4 MiB chunks, at the same speed
_HASH_BYTES = 1 << 20
_WINDOW = 8  # in a band bucket, each record is compared with the bucket's first and 7 before it
_VERIFY_PAIRS = 1 << 16


def _sign_chunk(texts: list[str], ngram: int, num_perm: int, seed: int, bands: int,
                rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Signatures, band hashes and has-a-shingle flags of a chunk of texts (runs in a worker),
    hashed ``_HASH_BYTES`` of text at a time."""
    sigs, flags = [], []
    start = 0
    while start < len(texts):
        end, size = start, 0
        while end < len(texts) and (end == start or size + len(texts[end]) <= _HASH_BYTES):
            size += len(texts[end])
            end += 1
        hashes, offsets = shingle_hashes(texts[start:end], ngram)
        sigs.append(signatures(hashes, offsets, num_perm, seed))
        flags.append(np.diff(offsets) > 0)
        start = end
    sig = np.concatenate(sigs)  # a chunk holds at least one text
    return sig, band_hashes(sig, bands, rows), np.concatenate(flags)


@FILTERS.register("dedup")
@dataclass
class Dedup(Filter):
    """Remove exact duplicates of the rendered text, keeping the first; with ``near``, also
    records whose word ``ngram``-gram sets have an estimated Jaccard similarity of at least
    ``threshold`` with an earlier kept record (MinHash, ``num_perm`` permutations, LSH with
    ``bands`` bands, default: datasketch's optimum for the threshold). ``lowercase`` and
    ``normalize_whitespace`` apply to the exact comparison (near always lower-cases and
    compares words). ``workers``: processes for the near signatures (default: all cores)."""

    near: bool = option(False, "also drop near duplicates", param=Param(bool), group="near")
    threshold: float = option(0.7, "estimated Jaccard similarity of the n-gram sets, in (0, 1]",
                              param=Param(float, low=0, high=1, low_open=True), metavar="J",
                              group="near")
    ngram: int = option(3, "words per shingle", param=Param(int, low=1, high=64), metavar="N",
                        group="near")
    num_perm: int = option(128, "MinHash permutations", param=Param(int, low=2, high=1024),
                           metavar="N", group="near")
    bands: int | None = option(None, "LSH bands (default: the optimum for --threshold, as "
                               "datasketch)", param=Param(int, low=1), metavar="B", group="near")
    seed: int = option(0, "MinHash seed", param=Param(int, low=0, high=2**32 - 1), group="near")
    lowercase: bool = option(False, "compare texts lower-cased", param=Param(bool), group="exact")
    normalize_whitespace: bool = option(False, "collapse runs of whitespace and strip the ends "
                                        "before comparing", param=Param(bool), group="exact")
    workers: int | None = option(None, "processes for the signatures (default: all cores)",
                                 param=Param(int, low=0), metavar="N", group="near")
    work_dir: str | None = option(None, "folder for the signatures and band tables while it runs "
                                  "(default: the system's temporary folder)", param=Param(str),
                                  metavar="DIR", group="near")

    help: ClassVar[str] = "drop exact (and with --near, near) duplicates, keeping the first"
    option_groups: ClassVar[tuple[str, ...]] = ("exact", "near")
    # options that only near duplicates use (refused without near)
    near_only: ClassVar[tuple[str, ...]] = ("threshold", "ngram", "num_perm", "bands", "seed", "work_dir")

    def note(self) -> str:
        if not self.near:
            return ""
        return (f"MinHash {self.num_perm} permutations, {self.bands_} bands x {self.rows_} rows, "
                f"threshold {self.threshold:g}, word {self.ngram}-grams")

    def _check(self) -> None:
        if self.bands is not None and self.bands > self.num_perm:
            raise InputError(f"--bands ({self.bands}) cannot exceed --num-perm ({self.num_perm})")

    def fit(self, source: Source, options: InputOptions | None = None,
            progress: bool | None = None, engine: Engine | None = None) -> Self:
        self._tmp: str | None = None
        # the signatures run on the engine handed in; by default, local processes
        self._engine = engine if engine is not None else make_engine("local", workers=self.workers)
        try:
            return super().fit(source, options, progress, engine)
        finally:
            if self._tmp is not None:
                for f in [getattr(self, "_sig_file", None), *getattr(self, "_band_files", [])]:
                    if f is not None:
                        f.close()
                shutil.rmtree(self._tmp, ignore_errors=True)

    def _start(self, source: Source, options: InputOptions) -> None:
        self._digests = bytearray()
        self._index = array.array("q")  # 8 bytes a record, not a Python int each
        if not self.near:
            return
        if self.bands is not None:
            self.bands_, self.rows_ = self.bands, self.num_perm // self.bands
        else:
            self.bands_, self.rows_ = lsh_params(self.threshold, self.num_perm)
        if self.work_dir is not None:
            os.makedirs(self.work_dir, exist_ok=True)
        self._tmp = tempfile.mkdtemp(prefix="entrosel-dedup-", dir=self.work_dir)
        self._sig_file = open(os.path.join(self._tmp, "signatures.u32"), "wb")
        self._band_files = [open(os.path.join(self._tmp, f"band-{b:03d}.u64"), "wb")
                            for b in range(self.bands_)]
        self._has_shingles = bytearray()
        self._pending: list[str] = []
        self._pending_bytes = 0
        self._chunks: list[list[str]] = []

    def _exact_key(self, text: str) -> bytes:
        if self.normalize_whitespace:
            text = " ".join(text.split())
        if self.lowercase:
            text = text.lower()
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()

    def judge(self, batch: Batch) -> list[Removal | None]:
        # decisions come in _finish, once the whole pool is seen
        for record, turns in batch:
            text = turns_text(turns)
            self._digests += self._exact_key(text)
            self._index.append(record.index)
            if self.near:
                self._pending.append(text)
                self._pending_bytes += len(text)
                if self._pending_bytes >= _CHUNK_BYTES:
                    self._chunks.append(self._pending)
                    self._pending, self._pending_bytes = [], 0
        if self.near and len(self._chunks) >= 2 * self._engine.concurrency():
            self._sign(self._chunks)
            self._chunks = []
        return [None] * len(batch)

    def _sign(self, chunks: list[list[str]]) -> None:
        if not chunks:
            return
        work = partial(_sign_chunk, ngram=self.ngram, num_perm=self.num_perm, seed=self.seed,
                       bands=self.bands_, rows=self.rows_)
        # rensa signs on a Rust thread pool: a worker forked from a process where that pool
        # had started (an earlier dedup with one worker, a notebook) waited on it for ever, so
        # such a process asks for workers that share nothing with it (a local engine's fork
        # server: a script then needs its `if __name__ == "__main__":` guard, as on macOS)
        fresh = threads_started_here()
        for sig, bands, has in self._engine.map(work, chunks, fresh=fresh):
            self._sig_file.write(np.ascontiguousarray(sig).tobytes())
            for b, f in enumerate(self._band_files):
                f.write(np.ascontiguousarray(bands[:, b]).tobytes())
            self._has_shingles += has.astype(np.uint8).tobytes()

    def _finish(self) -> None:
        index = np.frombuffer(self._index, dtype=np.int64).copy()
        self._index = array.array("q")
        removed = self._exact(index)
        self.exact_removed_ = int(removed.sum())
        self.near_removed_ = 0
        if self.near:
            if self._pending:
                self._chunks.append(self._pending)
            self._sign(self._chunks)
            self._chunks, self._pending = [], []
            self._sig_file.close()
            for f in self._band_files:
                f.close()
            self.near_removed_ = self._near(index, removed)

    def _exact(self, index: np.ndarray) -> np.ndarray:
        """Mark exact repeats removed; returns the removed mask over positions."""
        n = len(index)
        removed = np.zeros(n, dtype=bool)
        if n == 0:
            return removed
        digests = np.frombuffer(bytes(self._digests), dtype=[("hi", "<u8"), ("lo", "<u8")])
        self._digests = bytearray()
        order = np.argsort(digests, kind="stable")  # stable: the earliest of a group first
        ordered = digests[order]
        repeat = np.zeros(n, dtype=bool)
        repeat[1:] = ordered[1:] == ordered[:-1]
        group_start = np.maximum.accumulate(np.where(repeat, 0, np.arange(n)))
        for k in np.flatnonzero(repeat):
            pos, first = int(order[k]), int(order[group_start[k]])
            removed[pos] = True
            self._remove(int(index[pos]), Removal(
                "exact_duplicate", f"same text as record {int(index[first])}",
                duplicate_of=int(index[first]), similarity=1.0))
        return removed

    def _candidates(self, eligible: np.ndarray, n: int) -> np.ndarray:
        """Candidate pairs ``(earlier, later)`` of positions, as keys ``earlier * n + later``."""
        keys = []
        for b in range(self.bands_):
            column = np.fromfile(os.path.join(self._tmp, f"band-{b:03d}.u64"), dtype=np.uint64)
            pos = eligible
            h = column[pos]
            del column
            order = np.argsort(h, kind="stable")
            pos, h = pos[order], h[order]
            same = np.zeros(len(h), dtype=bool)
            same[1:] = h[1:] == h[:-1]
            if not same.any():
                continue
            group_start = np.maximum.accumulate(np.where(same, 0, np.arange(len(h))))
            later = np.flatnonzero(same)
            keys.append(pos[group_start[later]] * n + pos[later])
            for d in range(1, _WINDOW):
                near = later[later - d > group_start[later]]
                keys.append(pos[near - d] * n + pos[near])
        if not keys:
            return np.zeros(0, dtype=np.int64)
        return np.unique(np.concatenate(keys))

    def _near(self, index: np.ndarray, removed: np.ndarray) -> int:
        n = len(index)
        if n == 0:
            return 0
        has = np.frombuffer(bytes(self._has_shingles), dtype=np.uint8).astype(bool)
        eligible = np.flatnonzero(has & ~removed)
        keys = self._candidates(eligible, n)
        self.candidate_pairs_ = len(keys)
        sig = np.memmap(os.path.join(self._tmp, "signatures.u32"), dtype=np.uint32, mode="r",
                        shape=(n, self.num_perm))
        earlier_all, later_all, sim_all = [], [], []
        for start in range(0, len(keys), _VERIFY_PAIRS):
            part = keys[start:start + _VERIFY_PAIRS]
            a, b = part // n, part % n
            sim = (sig[a] == sig[b]).mean(axis=1)
            ok = sim >= self.threshold
            earlier_all.append(a[ok])
            later_all.append(b[ok])
            sim_all.append(sim[ok])
        del sig
        if not earlier_all:
            return 0
        earlier, later, sim = (np.concatenate(x) for x in (earlier_all, later_all, sim_all))
        order = np.lexsort((earlier, later))  # by later record, then earliest partner first
        count = 0
        last = -1
        for k in order.tolist():
            pos = int(later[k])
            if pos == last or removed[pos]:
                continue
            partner = int(earlier[k])
            if removed[partner]:  # a removed record does not remove others (no chains)
                continue
            removed[pos] = True
            last = pos
            count += 1
            self._remove(int(index[pos]), Removal(
                "near_duplicate", f"near duplicate of record {int(index[partner])} "
                                  f"(estimated Jaccard {float(sim[k]):.2f})",
                duplicate_of=int(index[partner]), similarity=float(sim[k])))
        return count
