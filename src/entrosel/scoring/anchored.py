"""Compression ratio of a candidate appended to an anchor set: ``ratio(S(anchor + [x]))``.

ZIP scores every candidate against the samples chosen so far (its stage 2) and against
the batch being built (its stage 3). Two evaluators give identical numbers for zlib:

- :class:`LiveZlibEvaluator` keeps one zlib stream fed with the anchor; a candidate is
  scored on a ``copy()`` of it, so its cost is O(|x|) instead of O(|anchor|). Deflate's
  output does not depend on how its input is chunked while no flush is requested, so the
  length is exactly that of ``zlib.compress`` on the whole string.
- :class:`RecompressEvaluator` compresses the whole string for every candidate, as the
  official ZIP.py does. It works with any compressor and is the speed baseline.

A third one is long-memory ZIP (zstd): zlib sees only the last 32 KiB of the anchor, so
:class:`ConditionalEvaluator` replaces the concatenation by conditional compression
(:mod:`entrosel.scoring.conditional`), ``ratio(A + [x]) = (|A| + |x|) / (C(A) + C(x | A))``,
with the anchor digested once per state and matches reaching back through all of it.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import functools
import hashlib
import mmap
import zlib
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np

from entrosel.engines.local import default_workers
from entrosel.formats.serialize import Framing
from entrosel.pool import OpenItems, PoolBytes, PoolItems
from entrosel.scoring.compression import Compressor
from entrosel.scoring.conditional import DigestedAnchor, LongMemory, can_thread

STRATEGIES = ("live", "conditional", "recompress")


class AnchoredEvaluator(Protocol):
    def reset(self) -> None: ...
    def extend(self, indices: Sequence[int]) -> None: ...
    def ratios(self, candidates: Sequence[int]) -> np.ndarray: ...


@functools.cache
def keep_heap_warm() -> bool:
    """Stop glibc from handing freed heap back to the OS after every candidate.

    Each ``copy()`` of a level-9 zlib stream allocates about 256 KiB and frees it right
    after; with glibc's default trim threshold that memory goes back to the OS each time,
    so every copy page-faults its buffers anew: about 90 us per copy instead of 10, half
    of a candidate's cost. Raising the trim threshold (once per process) keeps the pages.
    Returns whether it applied (glibc only).
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        m_trim_threshold, m_top_pad = -1, -2
        return bool(libc.mallopt(m_trim_threshold, 256 << 20) and libc.mallopt(m_top_pad, 16 << 20))
    except (OSError, AttributeError, TypeError):
        return False


class LiveZlibEvaluator:
    def __init__(self, items: OpenItems, framing: Framing, level: int) -> None:
        self.items, self.framing, self.level = items, framing, level
        keep_heap_warm()
        self.reset()

    def reset(self) -> None:
        self._stream = zlib.compressobj(self.level)
        self._emitted = len(self._stream.compress(self.framing.open))
        self._fed = len(self.framing.open)
        self._count = 0

    def extend(self, indices: Sequence[int]) -> None:
        for i in indices:
            piece = (self.framing.sep if self._count else b"") + self.items[i]
            self._emitted += len(self._stream.compress(piece))
            self._fed += len(piece)
            self._count += 1

    def ratios(self, candidates: Sequence[int]) -> np.ndarray:
        prefix = self.framing.sep if self._count else b""
        close = self.framing.close
        out = np.empty(len(candidates), dtype=np.float64)
        for k, i in enumerate(candidates):
            tail = prefix + self.items[i] + close
            c = self._stream.copy()
            size = self._emitted + len(c.compress(tail)) + len(c.flush())
            out[k] = (self._fed + len(tail)) / size
        return out


class RecompressEvaluator:
    def __init__(self, items: OpenItems, framing: Framing, compressor: Compressor) -> None:
        self.items, self.framing, self.compressor = items, framing, compressor
        self.reset()

    def reset(self) -> None:
        self._anchor = bytearray(self.framing.open)
        self._count = 0

    def extend(self, indices: Sequence[int]) -> None:
        for i in indices:
            if self._count:
                self._anchor += self.framing.sep
            self._anchor += self.items[i]
            self._count += 1

    def ratios(self, candidates: Sequence[int]) -> np.ndarray:
        prefix = self.framing.sep if self._count else b""
        anchor = bytes(self._anchor)
        out = np.empty(len(candidates), dtype=np.float64)
        for k, i in enumerate(candidates):
            data = anchor + prefix + self.items[i] + self.framing.close
            out[k] = len(data) / self.compressor.compressed_size(data)
        return out


class ConditionalEvaluator:
    """Long memory: ``ratio(A + [x]) = (|A| + |x|) / (C(A) + C(x | A))`` with zstd.

    The anchor's bytes are those of the serialization without its closing bytes, as for
    zlib; a candidate adds its separator, itself and the closing bytes. ``C(A)`` is kept
    per extension, ``C(A + B) = C(A) + C(B | A)`` for the block ``B`` of each ``extend``
    call, so it depends on how the anchor was built: replaying an anchor must repeat its
    ``extend`` calls one by one (the engines do). An anchor without records is no
    dictionary: a candidate then costs ``C(open + x + close)``, its own size.

    Memory: only the anchor's last ``window`` bytes are held and digested (zstd's fast
    match finders read no more of a dictionary: :attr:`LongMemory.window_bytes`; the
    result is the same as with the whole anchor). Past zstd's reach, the picks are
    remembered by :class:`PickIndex`: a candidate whose normalized text is that of a pick
    lying further back costs at most ``C(x | that pick)``, what a copy costs.
    """

    def __init__(self, items: Any, framing: Framing, level: int, window: int | None = None,
                 threads: int = 1) -> None:
        self.items, self.framing, self.threads = ItemView.of(items), framing, threads
        self.memory = LongMemory(level)
        self.window = window if window is not None else self.memory.window_bytes
        self.reach = window if window is not None else self.memory.reach_bytes
        self.index = PickIndex(self.items)
        self.reset()

    def reset(self) -> None:
        self._blocks: deque[bytes] = deque()  # the anchor's end: at least `window` bytes of it
        self._held = 0
        self._length = 0  # |A|
        self._cost = 0  # C(A)
        self._count = 0
        self._digested: DigestedAnchor | None = self.memory.digest(b"")
        self.index.reset()
        self._framed: dict[int, bytes] = {}  # the last call's candidates, framed
        self._framed_prefix = b""

    def _digest(self) -> DigestedAnchor:
        # once per anchor state, however many candidates are scored against it
        if self._digested is None:
            blocks = list(self._blocks)
            excess = self._held - self.window if self.window is not None else 0
            if excess > 0:  # the window begins inside the first block: one copy, not two
                blocks[0] = blocks[0][excess:]
            tail = b"".join(blocks)
            self._digested = self.memory.digest(tail, self._length)
        return self._digested

    def extend(self, indices: Sequence[int]) -> None:
        if not indices:
            return
        pieces = [self.items[i] for i in indices]
        first = self.framing.sep if self._count else self.framing.open
        block = first + self.framing.sep.join(pieces)
        self._cost += self._digest().size(block)
        start = self._length + len(first)
        for i, piece in zip(indices, pieces):
            self.index.add(int(i), start)
            start += len(piece) + len(self.framing.sep)
        self._blocks.append(block)
        self._held += len(block)
        self._length += len(block)
        self._count += len(pieces)
        if self.window is not None:
            while self._held - len(self._blocks[0]) >= self.window:
                self._held -= len(self._blocks.popleft())
        self.index.forget_before(self._length - self.reach)
        self._digested = None

    def ratios(self, candidates: Sequence[int]) -> np.ndarray:
        lengths, costs = self._scored(candidates)
        return (self._length + lengths) / (self._cost + costs)

    def costs(self, candidates: Sequence[int]) -> np.ndarray:
        """``C(x | A)`` of each candidate (framed as :meth:`ratios` frames it)."""
        return self._scored(candidates)[1]

    def totals(self) -> tuple[int, int, int]:
        """``(|A|, C(A), items in A)``: ``ratios`` is ``(|A| + |x|) / (C(A) + C(x | A))``,
        ``x`` framed as the first item when ``A`` has none."""
        return self._length, self._cost, self._count

    def _scored(self, candidates: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        framed = self._frame(candidates, self.framing.sep if self._count else self.framing.open)
        lengths = np.fromiter(map(len, framed), dtype=np.float64, count=len(framed))
        costs = np.asarray(self._digest().sizes(framed, self.threads), dtype=np.float64)
        if self.index.far:
            for k, pick in self.index.copies(candidates):
                costs[k] = min(costs[k], self.memory.digest(self.items[pick]).size(framed[k]))
        return lengths, costs

    def _frame(self, candidates: Sequence[int], prefix: bytes) -> list[bytes]:
        """The candidates' bytes with ``prefix`` and the closing bytes. Stage 3 scores what
        is left of one batch pick after pick, so the last call's are kept and only new ones
        are cut out of the pool: its batch is framed once a round, not once a pick (1.3 s
        less over 300 rounds on the 424,323-record pool; stage 2's candidates change too
        much from round to round to gain)."""
        last = self._framed if prefix == self._framed_prefix else {}
        new = [i for i in candidates if i not in last]
        made = dict(zip(new, self.items.framed(new, prefix, self.framing.close)))
        framed = [last[i] if i in last else made[i] for i in candidates]
        self._framed, self._framed_prefix = dict(zip(candidates, framed)), prefix
        return framed


def fingerprint(item: bytes) -> int:
    """64-bit hash of an item's normalized text: case folded, runs of whitespace as one space."""
    digest = hashlib.blake2b(b" ".join(item.lower().split()), digest_size=8).digest()
    return int.from_bytes(digest, "little") or 1


class PickIndex:
    """Long-memory ZIP's memory past zstd's reach: the picks of an anchor by fingerprint
    (:func:`fingerprint`). Picks are added with their start in the anchor; those that
    start further back than the reach move to ``far``, where :meth:`copies` finds the
    candidates that repeat them. Costs one dictionary look-up per candidate once ``far``
    holds something (the fingerprints of the pool's items are computed once, when first
    needed, and kept as one 8-byte number per item)."""

    def __init__(self, items: "ItemView") -> None:
        self.items = items
        self._fps: np.ndarray | None = None
        self.reset()

    def reset(self) -> None:
        self._near: deque[tuple[int, int]] = deque()  # (start in the anchor, pool index)
        self.far: dict[int, int] = {}  # fingerprint -> pool index of a pick past the reach

    def fingerprints(self, indices: Sequence[int]) -> np.ndarray:
        if self._fps is None:
            self._fps = np.zeros(len(self.items), dtype=np.uint64)
        idx = np.asarray(indices, dtype=np.int64)
        fps = self._fps[idx]
        for k in np.flatnonzero(fps == 0).tolist():
            fps[k] = self._fps[idx[k]] = fingerprint(self.items[int(idx[k])])
        return fps

    def add(self, index: int, start: int) -> None:
        self._near.append((start, index))

    def forget_before(self, offset: int) -> None:
        """Picks that start before ``offset`` of the anchor are past the reach: indexed."""
        moved = []
        while self._near and self._near[0][0] < offset:
            moved.append(self._near.popleft()[1])
        if moved:
            for index, fp in zip(moved, self.fingerprints(moved).tolist()):
                self.far.setdefault(fp, index)

    def copies(self, candidates: Sequence[int]) -> list[tuple[int, int]]:
        """``(k, pick)`` for each candidate ``candidates[k]`` whose text repeats a far pick."""
        far = self.far
        return [(k, far[fp]) for k, fp in enumerate(self.fingerprints(candidates).tolist())
                if fp in far]


class ItemView:
    """The pool's bytes as a worker reads them: one buffer (a mapped file, or an array
    shipped by the engine) and the offsets of the items in it, read in place; no Python
    object per item."""

    def __init__(self, buffer: Any, offsets: np.ndarray) -> None:
        self.buffer, self.offsets = buffer, offsets

    @classmethod
    def of(cls, items: Any) -> "ItemView":
        if isinstance(items, ItemView):
            return items
        if isinstance(items, PoolItems):  # the file every worker maps: one copy in memory
            size = int(items.offsets[-1])
            if size == 0:
                return cls(b"", items.offsets)
            with open(items.path, "rb") as f:
                return cls(mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ), items.offsets)
        if isinstance(items, ArrayItems):
            return cls(memoryview(items.buffer), items.offsets)
        return cls(items.buffer, items.offsets)  # OpenItems

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> bytes:
        return bytes(self.buffer[int(self.offsets[i]):int(self.offsets[i + 1])])

    def framed(self, indices: Sequence[int], prefix: bytes, close: bytes) -> list[bytes]:
        """``prefix + item + close`` for each of ``indices``."""
        idx = np.asarray(indices, dtype=np.int64)
        buf = self.buffer
        starts, ends = self.offsets[idx].tolist(), self.offsets[idx + 1].tolist()
        if close:
            return [prefix + buf[s:e] + close for s, e in zip(starts, ends)]
        if prefix:
            return [prefix + buf[s:e] for s, e in zip(starts, ends)]
        return [bytes(buf[s:e]) for s, e in zip(starts, ends)]


def resolve_strategy(compressor: Compressor, strategy: str = "auto") -> str:
    """``auto``: ``live`` for zlib (exact and fast), ``conditional`` (long memory) for zstd,
    ``recompress`` for lzma."""
    if strategy == "auto":
        return {"zlib": "live", "zstd": "conditional"}.get(compressor.name, "recompress")
    return strategy


def make_evaluator(items: OpenItems, framing: Framing, compressor: Compressor,
                   strategy: str = "auto", threads: int = 1) -> AnchoredEvaluator:
    """The evaluator of ``strategy`` (see :func:`resolve_strategy`); ``threads``: threads
    for scoring many candidates at once (the conditional strategy only)."""
    strategy = resolve_strategy(compressor, strategy)
    if strategy == "live":
        if compressor.name != "zlib":
            raise ValueError("the live strategy needs zlib (its stream can be copied)")
        return LiveZlibEvaluator(items, framing, compressor.level)
    if strategy == "conditional":
        if compressor.name != "zstd":
            raise ValueError("the conditional strategy needs zstd (raw-content dictionaries)")
        return ConditionalEvaluator(items, framing, compressor.level, threads=threads)
    if strategy == "recompress":
        return RecompressEvaluator(items, framing, compressor)
    raise ValueError(f"strategy must be auto, {' or '.join(STRATEGIES)}; not {strategy!r}")


class Evaluators:
    """What one worker holds: an evaluator per named anchor, over the pool's bytes. Its
    methods are the calls a :class:`~entrosel.engines.base.WorkerGroup` makes."""

    def __init__(self, items: OpenItems, framing: Framing, compressor: Compressor,
                 strategy: str, anchors: Sequence[str], threads: int = 1) -> None:
        self.by_anchor: dict[str, AnchoredEvaluator] = {
            a: make_evaluator(items, framing, compressor, strategy, threads) for a in anchors}

    def reset(self, anchor: str) -> None:
        self.by_anchor[anchor].reset()

    def extend(self, anchor: str, indices: Sequence[int]) -> None:
        self.by_anchor[anchor].extend(indices)

    def ratios(self, candidates: Sequence[int], anchor: str) -> np.ndarray:
        return self.by_anchor[anchor].ratios(candidates)

    def costs(self, candidates: Sequence[int], anchor: str) -> np.ndarray:
        return self.by_anchor[anchor].costs(candidates)

    def totals(self, which: Sequence[int], anchor: str) -> list[int]:
        """``|A|`` for a 0 in ``which``, ``C(A)`` for a 1 and its item count for a 2: a
        :class:`WorkerGroup` deals out ``[0, 1, 2]`` like any items, and every worker holds
        the same anchor."""
        return [self.by_anchor[anchor].totals()[i] for i in which]


@dataclass(frozen=True)
class EvaluatorFactory:
    """Builds one worker's :class:`Evaluators`: what ZIP hands an engine's
    :meth:`~entrosel.engines.base.Engine.worker_group`. Picklable: ``items`` is the pool's
    bytes as the engine's workers can open them (:meth:`Engine.portable`): a file they map,
    or the bytes themselves, which travel as one NumPy array (read in place where the
    engine allows, e.g. from Ray's object store)."""

    items: Any
    framing: Framing
    compressor: Compressor
    strategy: str = "auto"
    anchors: tuple[str, ...] = ("selected", "batch")
    threads: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.items, PoolBytes):
            data = self.items.data
            array = np.frombuffer(data, dtype=np.uint8) if len(data) else np.zeros(0, np.uint8)
            object.__setattr__(self, "items", ArrayItems(array, self.items.offsets))

    def __call__(self) -> Evaluators:
        return Evaluators(ItemView.of(self.items), self.framing, self.compressor, self.strategy,
                          self.anchors, self.threads)

    def threaded(self, threads: int) -> "EvaluatorFactory | None":
        """This factory scoring on ``threads`` threads in one process, when its strategy
        can (zstd's conditional sizes: the threads share one digested anchor, so the pool's
        text and the anchor are held once, not once per worker process); else ``None``."""
        if resolve_strategy(self.compressor, self.strategy) != "conditional" or not can_thread():
            return None
        return dataclasses.replace(self, threads=threads)


@dataclass(frozen=True)
class ArrayItems:
    """The pool's bytes as one NumPy array and its offsets (pickles out of band)."""

    buffer: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def open(self) -> "ItemView":
        return ItemView(memoryview(self.buffer), self.offsets)


class AnchoredGroup:
    """Anchored evaluators on an engine's :class:`~entrosel.engines.base.WorkerGroup`:
    anchor updates go to every worker, candidates are dealt out and their ratios gathered.
    The anchors named ``local`` live in this process instead: ZIP's stage 3 makes one small
    call per pick (K3 a round, each against the batch so far), and on workers every pick
    cost two messages to each (stage 3 took 1.6x as long on 2 worker processes as in one
    on a busy 2-core machine, about as long on an idle one, and 2.6-3.1 ms more a pick on
    a local Ray: ``docs/zip.md``, ``docs/scaling.md``)."""

    def __init__(self, group: Any, local: Evaluators | None = None) -> None:
        self.group = group
        self.local = local

    @property
    def workers(self) -> int:
        return self.group.workers

    def _here(self, anchor: str) -> AnchoredEvaluator | None:
        return self.local.by_anchor.get(anchor) if self.local is not None else None

    def reset(self, anchor: str) -> None:
        if (here := self._here(anchor)) is not None:
            return here.reset()
        self.group.update(anchor, "reset", anchor, restart=True)

    def extend(self, anchor: str, indices: Sequence[int]) -> None:
        indices = [int(i) for i in indices]
        if (here := self._here(anchor)) is not None:
            return here.extend(indices)
        self.group.update(anchor, "extend", anchor, indices)

    def ratios(self, anchor: str, candidates: Sequence[int]) -> np.ndarray:
        candidates = [int(i) for i in candidates]
        if (here := self._here(anchor)) is not None:
            return here.ratios(candidates)
        return self.group.scatter("ratios", candidates, anchor)

    def costs(self, anchor: str, candidates: Sequence[int]) -> np.ndarray:
        """``C(x | A)`` of each candidate (the conditional strategy only)."""
        candidates = [int(i) for i in candidates]
        if (here := self._here(anchor)) is not None:
            return here.costs(candidates)
        return self.group.scatter("costs", candidates, anchor)

    def totals(self, anchor: str) -> tuple[float, float, int]:
        """``(|A|, C(A), items in A)`` of ``anchor`` (the conditional strategy only)."""
        if (here := self._here(anchor)) is not None:
            length, cost, count = here.totals()
        else:
            length, cost, count = self.group.scatter("totals", [0, 1, 2], anchor)
        return float(length), float(cost), int(count)

    def close(self) -> None:
        self.group.close()

    def __enter__(self) -> "AnchoredGroup":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def anchored_group(engine: Any, items: Any, framing: Framing, compressor: Compressor,
                   strategy: str = "auto", anchors: Sequence[str] = ("selected", "batch"),
                   local: Sequence[str] = ()) -> AnchoredGroup:
    """Anchored evaluators over ``items`` (:class:`entrosel.pool.PoolItems`): those of
    ``anchors`` on ``engine``'s workers, those of ``local`` in this process (on as many
    threads as the engine has workers, up to this machine's cores, where the strategy can
    use them)."""
    factory = EvaluatorFactory(engine.portable(items), framing, compressor, strategy, tuple(anchors))
    # this process's share of the cores, for the local anchors' many small calls
    threads = min(engine.concurrency(), default_workers())
    here = (Evaluators(ItemView.of(items), framing, compressor, strategy, tuple(local), threads)
            if local else None)
    return AnchoredGroup(engine.worker_group(factory), here)
