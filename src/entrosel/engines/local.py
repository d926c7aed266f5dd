"""The local engine: a pool of worker processes on this machine (the default).

Two shapes of work run here:

- :func:`ordered_map`: a function over chunks of data, results in input order, with a
  bounded number of chunks in flight so a stream larger than memory can pass through.
- :class:`ProcessGroup`: long-lived worker processes, each holding the state a factory
  handed in by the step builds (ZIP: its anchored evaluators over the shared pool; see
  :class:`~entrosel.engines.base.WorkerGroup`). Updates are broadcast (each worker keeps
  its state in sync); items are dealt out among workers and their results gathered back
  in order.

A worker process that dies (``kill -9``, the out-of-memory killer) never leaves the run
waiting: :func:`ordered_map` raises :class:`WorkerDied`; :class:`ProcessGroup` starts a
fresh worker, replays the updates since each key's last restart and repeats the call (a
bounded number of times), so the result is the one an undisturbed run makes.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import traceback
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from entrosel.engines.base import ENGINES, Engine, InProcessGroup, UpdateLog, WorkerGroup
from entrosel.errors import InputError
from entrosel.params import Param, option


# A dead worker is replaced at most this many times per worker of a group; a worker that
# keeps dying (memory too small for it) ends the run instead of looping.
_MAX_RESTARTS = 3
# How long a wait for a worker's answer lasts before checking that the worker still lives.
_ALIVE_CHECK_S = 1.0


class WorkerDied(RuntimeError):
    """A worker process ended without finishing its work (killed, or out of memory).

    Not a fault of the input nor a bug of entrosel: the same run, repeated, succeeds.
    """


def describe_exit(exitcode: int | None) -> str:
    """How a process ended, from :attr:`multiprocessing.Process.exitcode`: a phrase that
    follows "worker process PID"."""
    if exitcode is None:
        return "ended (exit status unknown)"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = "an unknown signal"
        oom = ", as the out-of-memory killer does" if -exitcode == signal.SIGKILL else ""
        return f"was killed by {name} (signal {-exitcode}{oom})"
    return f"exited with code {exitcode}"


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


def ordered_map(fn: Callable[[Any], Any], chunks: Iterable[Any], workers: int | None = None,
                fresh: bool = False) -> Iterator[Any]:
    """``map(fn, chunks)`` over ``workers`` processes, in order, at most 2 chunks per worker in flight.

    ``fresh``: the processes come from a fork server instead of this process, so they inherit
    none of its threads (see :meth:`LocalEngine.map`). Raises :class:`WorkerDied` if a worker
    process is killed.
    """
    n = resolve_workers(workers)
    if n == 1:
        yield from map(fn, chunks)
        return
    with ProcessPoolExecutor(n, mp_context=_fork_server(fn) if fresh else None,
                             initializer=_ignore_sigint) as ex:
        pending: deque = deque()
        # the executor's processes, noted while they run: once the pool breaks, its manager
        # thread may already have let go of them
        workers_seen: dict[int, Any] = {}
        try:
            for chunk in chunks:
                pending.append(ex.submit(fn, chunk))
                workers_seen.update(getattr(ex, "_processes", None) or {})
                if len(pending) >= 2 * n:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        except BrokenProcessPool as e:
            if e.__cause__ is not None:  # a result that could not be sent back: a bug
                raise
            workers_seen.update(getattr(ex, "_processes", None) or {})
            casualty = _pool_casualty(list(workers_seen.values()))
            raise WorkerDied(f"{casualty}; the run stopped and can be repeated") from None


def _fork_server(fn: Callable[[Any], Any]) -> Any:
    """The fork server's context, the module of ``fn`` imported in the server before it
    starts (once per process), so that each worker starts without importing it again."""
    ctx = mp.get_context("forkserver")
    module = getattr(getattr(fn, "func", fn), "__module__", None)
    if module and module != "__main__":
        ctx.set_forkserver_preload([module])
    return ctx


def _pool_casualty(processes: list[Any]) -> str:
    """Which of the pool's worker ``processes`` died and how, as far as can be told."""
    # The executor keeps its processes only privately; once one dies it terminates the
    # others (SIGTERM), so the casualty is the one that ended otherwise.
    for p in processes:
        if p.exitcode is None:
            p.join(timeout=1)  # a killed process is reaped soon; its exit code tells how
    ended = [p for p in processes if p.exitcode is not None]
    for p in ended:
        if p.exitcode != -signal.SIGTERM:
            return f"worker process {p.pid} {describe_exit(p.exitcode)}"
    if ended:
        return f"worker process {ended[0].pid} {describe_exit(ended[0].exitcode)}"
    return "a worker process died"


class _WorkerFailure:
    """What a worker sends back in place of a result when a command raised: the traceback."""

    def __init__(self, text: str) -> None:
        self.text = text


def _worker_main(conn, factory) -> None:
    _ignore_sigint()
    parent = os.getppid()
    state = factory()
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
        command, method, args = message
        try:
            result = getattr(state, method)(*args)
        except Exception:
            # A bug, not a death: tell the parent (its next receive reads this) so that it
            # raises it instead of restarting a worker that would fail the same way.
            conn.send(_WorkerFailure(traceback.format_exc()))
            return
        if command == "scatter":
            conn.send(result)


class ProcessGroup:
    """A :class:`~entrosel.engines.base.WorkerGroup` of ``workers`` processes, each holding
    ``factory()``.

    A worker that dies is replaced by a fresh one brought to the same state (the updates
    since each key's last restart, replayed call by call) and its share of the call is
    asked again; after ``_MAX_RESTARTS`` replacements per worker, :class:`WorkerDied` ends
    the run.
    """

    def __init__(self, factory: Callable[[], Any], workers: int) -> None:
        self.workers = workers
        self._factory = factory
        self._conns: list = []
        self._procs: list = []
        self._log = UpdateLog()
        self.restarts = 0
        try:
            for _ in range(self.workers):
                conn, proc = self._start()
                self._conns.append(conn)
                self._procs.append(proc)
        except BaseException:
            self.close()
            raise

    def _start(self):
        ctx = mp.get_context()
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker_main, args=(child, self._factory), daemon=True)
        proc.start()
        child.close()
        return parent, proc

    def _replace(self, w: int) -> None:
        """A fresh worker in place of the dead worker ``w``, brought to the others' state."""
        while True:
            dead = self._procs[w]
            self._raise_reported_failure(w)
            dead.join(timeout=5)  # reaped, so its exit code is known
            if dead.is_alive():  # its pipe broke but it lingers: it must not hold on
                dead.kill()
                dead.join()
            how = describe_exit(dead.exitcode)
            self.restarts += 1
            if self.restarts > _MAX_RESTARTS * self.workers:
                raise WorkerDied(f"worker process {dead.pid} {how}, after {self.restarts - 1} "
                                 "dead workers were replaced already; giving up (is memory short?); "
                                 "the run can be repeated")
            self._conns[w].close()
            self._conns[w], self._procs[w] = self._start()
            print(f"entrosel: note: worker process {dead.pid} {how}; started "
                  f"{self._procs[w].pid} in its place and replayed its state", file=sys.stderr)
            try:
                for method, args in self._log.replay():
                    self._conns[w].send(("update", method, args))
                return
            except OSError:  # the new worker died too: replace it in turn
                continue

    def _raise_reported_failure(self, w: int) -> None:
        """Raise the error that worker ``w`` reported before it ended, if it did."""
        conn = self._conns[w]
        try:
            while conn.poll(0):
                answer = conn.recv()
                if isinstance(answer, _WorkerFailure):
                    raise RuntimeError(f"worker process {self._procs[w].pid} failed:\n{answer.text}")
        except (EOFError, OSError):
            pass

    def _send(self, w: int, message: tuple) -> None:
        """Send ``message`` to worker ``w``; a dead worker is replaced, and as the log
        already holds every update, its replacement needs only a scatter call resent."""
        while True:
            try:
                self._conns[w].send(message)
                return
            except OSError:  # BrokenPipeError, ConnectionResetError: the worker is gone
                self._replace(w)
                if message[0] != "scatter":
                    return

    def _receive(self, w: int) -> Any:
        """Worker ``w``'s answer, or ``None`` if it died before giving one."""
        conn, proc = self._conns[w], self._procs[w]
        try:
            # A dead worker's pipe reads as EOF unless another process holds its end
            # too; checking that the worker lives covers that case as well.
            while not conn.poll(_ALIVE_CHECK_S):
                if not proc.is_alive() and not conn.poll(0):
                    return None
            answer = conn.recv()
        except (EOFError, OSError):
            return None
        if isinstance(answer, _WorkerFailure):
            raise RuntimeError(f"worker process {proc.pid} failed:\n{answer.text}")
        return answer

    def update(self, key: str, method: str, *args: Any, restart: bool = False) -> None:
        self._log.add(key, method, args, restart)
        for w in range(len(self._conns)):
            self._send(w, ("update", method, args))

    def scatter(self, method: str, items: Sequence[Any], *args: Any) -> np.ndarray:
        n = len(self._conns)
        # Deal items round-robin so each worker gets a similar share of long samples.
        for w in range(n):
            self._send(w, ("scatter", method, (items[w::n], *args)))
        out = np.empty(len(items), dtype=np.float64)
        for w in range(n):
            while (answer := self._receive(w)) is None:
                self._replace(w)
                self._send(w, ("scatter", method, (items[w::n], *args)))
            out[w::n] = answer
        return out

    def close(self) -> None:
        for conn in self._conns:
            try:
                conn.send(None)
                conn.close()
            except OSError:
                pass
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
        self._conns, self._procs = [], []

    def __enter__(self) -> "ProcessGroup":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@ENGINES.register("local")
@dataclass
class LocalEngine(Engine):
    """Worker processes on this machine (the default): ``workers`` of them, 0 or ``None``
    for all cores, 1 to run in this process."""

    workers: int | None = option(None, "worker processes, or threads in one process where a "
                                 "step can use them (select zip --compressor zstd) (default: all cores)",
                                 param=Param(int, low=0), metavar="N")

    def concurrency(self) -> int:
        return resolve_workers(self.workers)

    def map(self, fn: Callable[[Any], Any], chunks: Iterable[Any], fresh: bool = False) -> Iterator[Any]:
        """``fresh``: worker processes that share nothing with this one. A forked worker
        inherits this process's memory but not its threads: a library that started a
        thread pool here (rensa's, for MinHash) would wait for ever in it."""
        return ordered_map(fn, chunks, self.concurrency(), fresh)

    def worker_group(self, factory: Callable[[], Any]) -> WorkerGroup:
        """``factory()`` in each of ``workers`` processes (in this process when 1). A factory
        whose state can use the cores itself (``factory.threaded(workers)`` returns one: C
        threads over one copy of its data) runs in this process instead: no copies, no
        messages."""
        workers = self.concurrency()
        threaded = getattr(factory, "threaded", None)
        if workers > 1 and threaded is not None and (in_threads := threaded(workers)) is not None:
            return InProcessGroup(in_threads)
        if workers == 1:
            return InProcessGroup(factory)
        return ProcessGroup(factory, workers)
