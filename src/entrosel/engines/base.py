"""The :class:`Engine` protocol: where work runs. Selectors and scorers are handed an engine
and never ask which one it is; a new engine is one class registered in :data:`ENGINES`.

Three shapes of work, the ones entrosel's methods need:

- :meth:`Engine.map`: a picklable function over chunks, results in input order;
- :meth:`Engine.evaluator_group`: long-lived workers holding anchored evaluators (ZIP);
- :meth:`Engine.map_shards`: a scoring run cut into shards that each write their own file
  (see :mod:`entrosel.engines.shards`); :attr:`Engine.distributes` says whether to cut.
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


class EvaluatorGroup(Protocol):
    """Anchored evaluators over a pool, on an engine's workers (see
    :mod:`entrosel.scoring.anchored`): anchor updates go to every worker, candidates are
    dealt out and their ratios gathered in order."""

    workers: int

    def reset(self, anchor: str) -> None: ...
    def extend(self, anchor: str, indices: Sequence[int]) -> None: ...
    def ratios(self, anchor: str, candidates: Sequence[int]) -> np.ndarray: ...
    def close(self) -> None: ...
    def __enter__(self) -> "EvaluatorGroup": ...
    def __exit__(self, *exc: Any) -> None: ...


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
    def map(self, fn: Callable[[Any], Any], chunks: Iterable[Any]) -> Iterator[Any]:
        """``map(fn, chunks)`` in input order, a bounded number of chunks in flight (a
        stream larger than memory may pass). ``fn`` and the chunks must pickle."""

    @abstractmethod
    def evaluator_group(self, items: Any, framing: Any, compressor: Any, strategy: str = "auto",
                        anchors: Sequence[str] = ("selected", "batch")) -> EvaluatorGroup:
        """Anchored evaluators over ``items`` (:class:`entrosel.pool.PoolItems`)."""

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
