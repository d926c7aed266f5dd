"""The :class:`Engine` protocol: where work runs. Selectors and scorers are handed an engine
and never ask which one it is; a new engine is one class registered in :data:`ENGINES`.

Three shapes of work, the ones entrosel's methods need:

- :meth:`Engine.map`: a picklable function over chunks, results in input order;
- :meth:`Engine.worker_group`: long-lived workers, each holding the state that a picklable
  factory the step hands in builds (ZIP's anchored evaluators): updates go to every worker,
  items are dealt out and their results gathered in order;
- :meth:`Engine.map_shards`: a scoring run cut into shards that each write their own file
  (see :mod:`entrosel.engines.shards`); :attr:`Engine.distributes` says whether to cut.

Engines import nothing from ``scoring`` or ``selection``: what a worker holds is the step's.
"""
from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar, Iterable, Iterator, Protocol, Sequence

import numpy as np

from entrosel.errors import InputError
from entrosel.params import check_fields, flag
from entrosel.registry import Registry

ENGINES: Registry = Registry("engine")


class WorkerGroup(Protocol):
    """Long-lived workers, each holding the state ``factory()`` made in it (once per worker).

    - ``update(key, method, *args, restart=False)``: every worker calls
      ``state.method(*args)``, in call order. The call is kept under ``key`` so that a worker
      that dies can be replaced by a fresh one brought to the same state (the calls replayed
      one by one); ``restart=True`` says this call starts ``key``'s part of the state anew
      (its earlier calls are forgotten).
    - ``scatter(method, items, *args)``: ``items`` dealt out round-robin, worker ``w``
      calling ``state.method(items[w::n], *args)``; the results (one number per item)
      gathered as a float64 array in the order of ``items``.

    Results must not depend on the number of workers: only which worker computes which
    item may change.
    """

    workers: int

    def update(self, key: str, method: str, *args: Any, restart: bool = False) -> None: ...
    def scatter(self, method: str, items: Sequence[Any], *args: Any) -> np.ndarray: ...
    def close(self) -> None: ...
    def __enter__(self) -> "WorkerGroup": ...
    def __exit__(self, *exc: Any) -> None: ...


class InProcessGroup:
    """A :class:`WorkerGroup` of one worker: the state lives in this process."""

    workers = 1

    def __init__(self, factory: Callable[[], Any]) -> None:
        self.state = factory()
        self.restarts = 0

    def update(self, key: str, method: str, *args: Any, restart: bool = False) -> None:
        getattr(self.state, method)(*args)

    def scatter(self, method: str, items: Sequence[Any], *args: Any) -> np.ndarray:
        return np.asarray(getattr(self.state, method)(items, *args), dtype=np.float64)

    def close(self) -> None:
        self.state = None

    def __enter__(self) -> "InProcessGroup":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class UpdateLog:
    """What a :class:`WorkerGroup` keeps to replay a worker: each key's updates since its
    last restart, as ``(method, args)`` in call order."""

    def __init__(self) -> None:
        self.calls: dict[str, list[tuple[str, tuple]]] = {}

    def add(self, key: str, method: str, args: tuple, restart: bool) -> None:
        if restart:
            self.calls[key] = []
        self.calls.setdefault(key, []).append((method, args))

    def replay(self) -> Iterator[tuple[str, tuple]]:
        for calls in self.calls.values():
            yield from calls


class Engine(ABC):
    """Base of the engines; subclasses are dataclasses whose fields are their options."""

    name: ClassVar[str]
    # True: a scoring run is cut into shards that run on the engine (shard_count)
    distributes: ClassVar[bool] = False

    def validate(self) -> "Engine":
        """Check every option before any work; raises :class:`InputError`."""
        check_fields(self)
        return self

    @abstractmethod
    def concurrency(self) -> int:
        """How many chunks run at once."""

    @abstractmethod
    def map(self, fn: Callable[[Any], Any], chunks: Iterable[Any], fresh: bool = False) -> Iterator[Any]:
        """``map(fn, chunks)`` in input order, a bounded number of chunks in flight (a
        stream larger than memory may pass). ``fn`` and the chunks must pickle. ``fresh``:
        ``fn`` must not run in a process forked from this one (it uses a library whose
        threads a fork does not copy); in this process is fine."""

    def worker_group(self, factory: Callable[[], Any]) -> WorkerGroup:
        """Long-lived workers each holding ``factory()`` (see :class:`WorkerGroup`);
        ``factory`` must pickle. Here: one worker, in this process."""
        return InProcessGroup(factory)

    def portable(self, items: Any) -> Any:
        """``items`` (:class:`entrosel.pool.PoolItems`) as the workers can open them: here a
        view of this machine's file; an engine whose workers may run elsewhere ships the bytes."""
        return items

    def shard_count(self) -> int:
        """How many shards a scoring run is cut into, on an engine that ``distributes``."""
        return 1

    def map_shards(self, count: int, work: Callable[[Any, int], dict], *,
                   setup: Callable[[], Any] | None = None, wants_gpu: bool = False) -> list[dict]:
        """``work(state, shard)`` for shards ``0..count-1``; ``state`` is ``setup()`` (e.g.
        a loaded model), made once per worker; ``wants_gpu``: the model would use a GPU if
        the worker has one. Results in shard order."""
        state = setup() if setup is not None else None
        return [work(state, i) for i in range(count)]

    def shard_engine(self) -> "Engine":
        """The engine a scorer uses inside one shard task (one CPU each)."""
        return self


def make_engine(engine: "str | Engine" = "local", **options: Any) -> Engine:
    """The engine named ``engine`` with ``options`` (``None`` values: not given), validated.
    An option the engine does not take is refused, naming the engine that takes it (e.g.
    ``--ray-address`` without ``--engine ray``)."""
    if isinstance(engine, Engine):
        given = [k for k, v in options.items() if v is not None]
        if given:
            raise InputError(f"{', '.join(flag(k) for k in given)}: set these on the engine "
                             f"object passed as engine=, not beside it")
        return engine.validate()
    cls = ENGINES[engine]
    accepted = {f.name for f in dataclasses.fields(cls)}
    refused = [k for k, v in options.items() if v is not None and k not in accepted]
    if refused:
        owners = [n for n, c in ENGINES.items() if n != engine
                  and all(k in {f.name for f in dataclasses.fields(c)} for k in refused)]
        where = f"--engine {owners[0]}" if owners else "another engine"
        flags = ", ".join(flag(k) for k in refused)
        one = len(refused) == 1
        raise InputError(f"{flags} {'is' if one else 'are'} for {where}, not --engine {engine}; "
                         f"add {where} or drop {'it' if one else 'them'}")
    return cls(**{k: v for k, v in options.items() if v is not None}).validate()
