"""The local engine: a pool of worker processes on this machine (the default).

Two shapes of work run here:

- :func:`ordered_map`: a function over chunks of data, results in input order, with a
  bounded number of chunks in flight so a stream larger than memory can pass through.
- :class:`EvaluatorGroup`: long-lived workers, each holding its own anchored evaluators
  (see :mod:`entrosel.scoring.anchored`) over the shared pool. Anchor updates are
  broadcast (each worker keeps its own live compressor in sync); candidates are dealt
  out among workers and their ratios gathered back in order.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from entrosel.errors import InputError
from entrosel.formats.serialize import Framing
from entrosel.pool import OpenItems, PoolItems
from entrosel.scoring.anchored import AnchoredEvaluator, make_evaluator
from entrosel.scoring.compression import Compressor


def default_workers() -> int:
    """All cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def resolve_workers(workers: int | None) -> int:
    """``workers`` processes; ``None`` or 0: all cores."""
    if workers is None or workers == 0:
        return default_workers()
    if not isinstance(workers, int) or workers < 0:
        raise InputError(f"--workers must be a number of processes >= 1 (0: all cores), not {workers}")
    return workers


def _ignore_sigint() -> None:
    # Ctrl-C reaches the whole process group; the parent decides what to do.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def ordered_map(fn: Callable[[Any], Any], chunks: Iterable[Any], workers: int | None = None) -> Iterator[Any]:
    """``map(fn, chunks)`` over ``workers`` processes, in order, at most 2 chunks per worker in flight."""
    n = resolve_workers(workers)
    if n == 1:
        yield from map(fn, chunks)
        return
    with ProcessPoolExecutor(n, initializer=_ignore_sigint) as ex:
        pending: deque = deque()
        for chunk in chunks:
            pending.append(ex.submit(fn, chunk))
            if len(pending) >= 2 * n:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


class Evaluators:
    """What one worker holds: an evaluator per named anchor, over the pool's bytes
    (a :class:`PoolItems` file, or an :class:`OpenItems` buffer shipped by the engine)."""

    def __init__(self, items: PoolItems | OpenItems, framing: Framing, compressor: Compressor,
                 strategy: str, anchors: Sequence[str]) -> None:
        opened = items.open() if isinstance(items, PoolItems) else items
        self.by_anchor: dict[str, AnchoredEvaluator] = {
            a: make_evaluator(opened, framing, compressor, strategy) for a in anchors}

    def run(self, command: str, anchor: str, payload: Any) -> Any:
        ev = self.by_anchor[anchor]
        if command == "reset":
            return ev.reset()
        if command == "extend":
            return ev.extend(payload)
        if command == "ratios":
            return ev.ratios(payload)
        raise ValueError(f"unknown command {command!r}")


def _worker_main(conn, args) -> None:
    _ignore_sigint()
    parent = os.getppid()
    evaluators = Evaluators(*args)
    while True:
        # A forked sibling may hold our pipe's other end open, so EOF alone does not tell
        # that the parent died (e.g. SIGKILL); check its pid while idle.
        while not conn.poll(1.0):
            if os.getppid() != parent:
                return
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        command, anchor, payload = message
        result = evaluators.run(command, anchor, payload)
        if command == "ratios":
            conn.send(result)


class EvaluatorGroup:
    """Anchored evaluators spread over ``workers`` processes (in this process when 1).

    Results do not depend on the number of workers: every worker computes exact ratios,
    only which worker computes which candidate changes.
    """

    def __init__(self, items: PoolItems, framing: Framing, compressor: Compressor,
                 strategy: str = "auto", anchors: Sequence[str] = ("selected", "batch"),
                 workers: int | None = None) -> None:
        self.workers = resolve_workers(workers)
        args = (items, framing, compressor, strategy, tuple(anchors))
        self._local: Evaluators | None = None
        self._conns: list = []
        self._procs: list = []
        if self.workers == 1:
            self._local = Evaluators(*args)
            return
        ctx = mp.get_context()
        try:
            for _ in range(self.workers):
                parent, child = ctx.Pipe()
                proc = ctx.Process(target=_worker_main, args=(child, args), daemon=True)
                proc.start()
                child.close()
                self._conns.append(parent)
                self._procs.append(proc)
        except BaseException:
            self.close()
            raise

    def _broadcast(self, command: str, anchor: str, payload: Any = None) -> None:
        if self._local is not None:
            self._local.run(command, anchor, payload)
            return
        for conn in self._conns:
            conn.send((command, anchor, payload))

    def reset(self, anchor: str) -> None:
        self._broadcast("reset", anchor)

    def extend(self, anchor: str, indices: Sequence[int]) -> None:
        self._broadcast("extend", anchor, [int(i) for i in indices])

    def ratios(self, anchor: str, candidates: Sequence[int]) -> np.ndarray:
        candidates = [int(i) for i in candidates]
        if self._local is not None:
            return self._local.run("ratios", anchor, candidates)
        n = len(self._conns)
        # Deal candidates round-robin so each worker gets a similar share of long samples.
        for w, conn in enumerate(self._conns):
            conn.send(("ratios", anchor, candidates[w::n]))
        out = np.empty(len(candidates), dtype=np.float64)
        for w, conn in enumerate(self._conns):
            try:
                out[w::n] = conn.recv()
            except EOFError:
                raise RuntimeError(f"worker process {self._procs[w].pid} died "
                                   f"(exit code {self._procs[w].exitcode})") from None
        return out

    def close(self) -> None:
        for conn in self._conns:
            try:
                conn.send(None)
                conn.close()
            except (OSError, BrokenPipeError):
                pass
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
        self._conns, self._procs = [], []

    def __enter__(self) -> "EvaluatorGroup":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
