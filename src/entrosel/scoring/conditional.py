"""Conditional compression with zstd: what a byte string costs once an anchor is known.

``C(x | A)`` is the size of ``x`` compressed by zstd with ``A`` as a raw-content
dictionary, less the frame header (no content size, dictionary id or checksum is
written, so the header is the same 6 bytes for every frame and tells nothing about ``x``).
Matches may reach anywhere into ``A``, so a copy of something ``A`` holds costs a few
bytes however far back it lies, up to the reach below. ``C(x)`` is the same without an
anchor. See ``docs/zip.md`` (long-memory ZIP) for the measurements behind the choices.

How far back matches are found (the *reach*) is set by zstd's tables, not its window:

- the match finder (strategy, search depth, minimum match) is zstd level ``level``'s;
- the hash and chain tables hold ``2 ** table_log`` entries with
  ``table_log = ceil(log2(len(A))) - 3`` for zstd's fast and dfast match finders (levels
  1-4) and ``- 2`` for the others, clamped to 12..24, so they grow with the anchor and a
  candidate's cost stays near O(|x|) (a larger table is mostly more cache misses); for
  the fast and dfast finders ``len(A)`` counts up to their window (16 MiB, below): tables
  sized to bytes zstd never reads cost 2-3x per candidate and, for a candidate over 8 KiB
  (which zstd scores on a copy of the tables), 13x (``docs/zip.md``);
- zstd keeps at most the last 16 MiB of a dictionary for its fast and dfast match
  finders (levels 1-4: 8 bits of each table entry are a tag); from level 5 on the whole
  dictionary is indexed and the reach ends where the largest tables fill up (measured
  to 32 MiB: ``python benchmarks/bench_zip.py --part reach``).

:attr:`LongMemory.reach_bytes` is that limit; a caller whose anchor outgrows it must say so.
"""
from __future__ import annotations

import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Sequence

import numpy as np

from entrosel.errors import InputError
from entrosel.scoring.compression import DEFAULT_LEVELS, zstd_module

MIN_TABLE_LOG = 12
MAX_TABLE_LOG = 24
WINDOW_LOG = 27  # frames up to 128 MiB; the dictionary's reach does not depend on it
FRAME_HEADER = 6  # magic number (4) + frame header descriptor (1) + window descriptor (1)
_TAGGED_REACH = 16 << 20  # fast/dfast dictionaries: zstd indexes the last 16 MiB only
_FAST_STRATEGIES = (1, 2)  # zstandard.STRATEGY_FAST, STRATEGY_DFAST


def table_log(anchor_bytes: int, strategy: int) -> int:
    """log2 of the hash and chain table entries for an anchor of ``anchor_bytes``: a fast or
    dfast table keeps one position per slot and finds a long copy from any one of them,
    the others keep rows of recent positions and need a slot per four bytes or so."""
    below = 3 if strategy in _FAST_STRATEGIES else 2
    wanted = math.ceil(math.log2(anchor_bytes)) - below if anchor_bytes > 1 else MIN_TABLE_LOG
    return max(MIN_TABLE_LOG, min(MAX_TABLE_LOG, wanted))


@dataclass(frozen=True)
class LongMemory:
    """zstd settings for conditional compression (see the module docstring)."""

    level: int = DEFAULT_LEVELS["zstd"]

    def __post_init__(self) -> None:
        if not 1 <= self.level <= 22:
            raise InputError(f"--level for zstd must be in 1..22, not {self.level}")

    def params(self, anchor_bytes: int) -> Any:
        """``ZstdCompressionParameters`` for an anchor of ``anchor_bytes`` (0: none)."""
        zstd = zstd_module()
        base = zstd.ZstdCompressionParameters.from_level(self.level)
        if base.strategy in _FAST_STRATEGIES:  # zstd reads no more than its window
            anchor_bytes = min(anchor_bytes, _TAGGED_REACH)
        log = table_log(anchor_bytes, base.strategy) if anchor_bytes else MAX_TABLE_LOG
        return zstd.ZstdCompressionParameters(
            strategy=base.strategy, search_log=base.search_log, min_match=base.min_match,
            target_length=base.target_length, window_log=WINDOW_LOG, hash_log=log, chain_log=log,
            write_content_size=False, write_checksum=False, write_dict_id=False)

    @property
    def reach_bytes(self) -> int:
        """How far back into an anchor matches are still found."""
        return self.window_bytes or 1 << (MAX_TABLE_LOG + 1)

    @property
    def window_bytes(self) -> int | None:
        """How much of an anchor's end zstd reads at all (``None``: all of it). The fast and
        dfast match finders load only the last 16 MiB of a dictionary, so the bytes before
        them may be dropped: ``C(x | A) == C(x | A[-window:])`` when the tables are sized to
        all of ``A`` (``digest(A[-window:], anchor_bytes=len(A))``; tested)."""
        strategy = zstd_module().ZstdCompressionParameters.from_level(self.level).strategy
        return _TAGGED_REACH if strategy in _FAST_STRATEGIES else None

    @cached_property
    def _alone(self) -> "DigestedAnchor":
        return DigestedAnchor(b"", self)

    def size(self, data: bytes) -> int:
        """``C(data)``: its compressed size with no anchor, frame header excluded."""
        return self._alone.size(data)

    def digest(self, anchor: bytes, anchor_bytes: int | None = None) -> "DigestedAnchor":
        """``anchor`` digested once, to compute ``C(x | anchor)`` for many ``x``;
        ``anchor_bytes``: the length of the whole anchor whose end ``anchor`` is (the
        tables are sized to it)."""
        return DigestedAnchor(anchor, self, anchor_bytes) if anchor else self._alone


class DigestedAnchor:
    """An anchor as a digested zstd dictionary (its hash tables built once)."""

    def __init__(self, anchor: bytes, memory: LongMemory, anchor_bytes: int | None = None) -> None:
        self.memory = memory
        zstd = zstd_module()
        if not anchor:  # no dictionary: zstd sizes the tables to each input itself
            self._compressor = zstd.ZstdCompressor(compression_params=memory.params(0))
            return
        params = memory.params(anchor_bytes or len(anchor))
        dictionary = zstd.ZstdCompressionDict(bytes(anchor), dict_type=zstd.DICT_TYPE_RAWCONTENT)
        dictionary.precompute_compress(compression_params=params)
        self._compressor = zstd.ZstdCompressor(dict_data=dictionary, compression_params=params)

    def size(self, data: bytes) -> int:
        """``C(data | anchor)``: the bytes ``data`` adds once the anchor is known."""
        return self.sizes([data])[0]

    def sizes(self, datas: Sequence[bytes], threads: int = 1) -> list[int]:
        """``C(x | anchor)`` for each ``x`` of ``datas`` (one call for many: no per-item
        Python overhead beyond zstd's own). With ``threads`` > 1 and enough strings they are
        compressed on that many threads over the one digested dictionary (the same sizes,
        tested): many (stage 2's K1) in one call on zstd's C threads; fewer (stage 3's
        batch) in slices of about equal bytes, each in one zstd call on a thread kept for
        it, since zstd starts its C threads anew every call."""
        parts = min(threads, len(datas) // SLICE_MIN_ITEMS) if can_thread() else 1
        if parts <= 1:
            compress = self._compressor.compress
            return [len(compress(x)) - FRAME_HEADER for x in datas]
        lengths = np.fromiter(map(len, datas), dtype=np.int64, count=len(datas))
        ends = np.cumsum(lengths)
        if ends[-1] == 0:  # zstd compresses no batch of empty strings
            return self.sizes(datas, threads=1)
        if len(datas) >= C_THREADS_MIN_ITEMS:  # zstd's own threads: no Python in between
            frames = self._compressor.multi_compress_to_buffer(list(datas), threads=threads)
            return [len(frame) - FRAME_HEADER for frame in frames]
        cuts = np.searchsorted(ends, ends[-1] * np.arange(1, parts) / parts).tolist()
        bounds = list(zip([0, *cuts], [*cuts, len(datas)]))
        others = [slice_threads(parts - 1).submit(self._slice_sizes, datas[a:b]) for a, b in bounds[1:]]
        out = self._slice_sizes(datas[bounds[0][0]:bounds[0][1]])
        for future in others:
            out += future.result()
        return out

    def _slice_sizes(self, datas: Sequence[bytes]) -> list[int]:
        if not any(datas):  # zstd compresses no batch of empty strings (nor an empty batch)
            return self.sizes(datas, threads=1)
        frames = self._compressor.multi_compress_to_buffer(list(datas), threads=1)
        return [len(frame) - FRAME_HEADER for frame in frames]


# Below this many strings a slice costs more in passing it to a thread than it saves (a
# handful of zstd calls); 150 stage-3 candidates of about 1.2 KB took 1.50x less time in two
# slices, against 0.83x on zstd's own C threads (benchmarks/bench_hotpaths.py). From
# C_THREADS_MIN_ITEMS on, zstd's threads: for stage 2's 10,000 the two ways took the same
# time within the noise of this machine.
SLICE_MIN_ITEMS = 25
C_THREADS_MIN_ITEMS = 1024


@functools.cache
def _thread_pool(pid: int, threads: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(threads, thread_name_prefix="entrosel-zstd")


def slice_threads(threads: int) -> ThreadPoolExecutor:
    """``threads`` threads that compress slices, made once per process (a forked worker
    has none of its parent's threads, so it makes its own)."""
    return _thread_pool(os.getpid(), threads)


@functools.cache
def can_thread() -> bool:
    """Whether this zstandard compresses many inputs on C threads (its C backend does; the
    CFFI one does not)."""
    return hasattr(zstd_module().ZstdCompressor, "multi_compress_to_buffer")


def conditional_size(data: bytes, anchor: bytes, level: int = DEFAULT_LEVELS["zstd"]) -> int:
    """``C(data | anchor)`` in one call (digests ``anchor``; use :meth:`LongMemory.digest`
    to score many strings against one anchor)."""
    return LongMemory(level).digest(anchor).size(data)
