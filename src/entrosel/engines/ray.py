"""The Ray engine: ZIP on long-lived actors, and scoring shards with Ray Data.

Worker groups (ZIP): each actor holds the state the step's factory builds (ZIP: its own
live compressors). The factory goes once into Ray's object store; every actor reads it from
there (so actors on other nodes need no shared file system; NumPy arrays in it, such as a
pool's packed bytes, are read in place, not copied per actor). Updates are sent to every
actor (in order, per actor); items are dealt out among them and their results gathered, as
in the local engine, so the result is the same. If an actor dies, a new one is started and
brought back to the same state by replaying the updates since each key's last restart, and
the call is repeated.

Scoring: :func:`map_shards` runs one task per shard (see :mod:`entrosel.engines.shards`)
with ``Dataset.map_batches``; with a ``setup`` (loading a model) the tasks run on a pool of
actors that each call it once. Tasks that fail are retried by Ray; a shard's output is
atomic, so a retry starts clean.
"""
from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterable, Iterator, Sequence

import numpy as np

from entrosel.engines.base import ENGINES, Engine, UpdateLog, WorkerGroup
from entrosel.errors import InputError
from entrosel.params import Param, option

_MAX_RESTARTS = 3


def _ray():
    try:
        import ray
    except ImportError:
        raise InputError("--engine ray needs the [ray] extra: pip install 'entrosel[ray]'") from None
    return ray


def init_ray(address: str | None = None) -> Any:
    """Join the Ray cluster at ``address`` (or ``RAY_ADDRESS``), or start a local one."""
    ray = _ray()
    if not ray.is_initialized():
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False,
                 include_dashboard=False, configure_logging=False)
    return ray


class _ShardTask:
    """One Ray Data call: run ``work`` on the shard numbers of a batch."""

    def __init__(self, work: Callable[[Any, int], dict], setup: Callable[[], Any] | None) -> None:
        self.work = work
        self.state = setup() if setup is not None else None

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        results = [self.work(self.state, int(i)) for i in batch["id"]]
        return {key: [r[key] for r in results] for key in results[0]}


def map_shards(count: int, work: Callable[[Any, int], dict], *, setup: Callable[[], Any] | None = None,
               concurrency: int | None = None, num_gpus: float = 0, address: str | None = None
               ) -> list[dict[str, Any]]:
    """``work(state, shard)`` for shards ``0..count-1`` on Ray, one shard per task; returns
    the results in shard order. Without ``setup`` the shards run as CPU tasks; with it, on
    ``concurrency`` actors (default: as many as the cluster's CPUs, or GPUs when
    ``num_gpus`` is asked for) whose state is ``setup()``."""
    ray = init_ray(address)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    # built on the driver: no read tasks, which could wait forever for CPUs the actors hold
    dataset = ray.data.from_items([{"id": i} for i in range(count)], override_num_blocks=count)
    if setup is None:
        task = _ShardTask(work, None)
        dataset = dataset.map_batches(task, batch_size=1, num_cpus=1)
    else:
        if concurrency is None:
            resources = ray.cluster_resources()
            concurrency = max(1, int(resources.get("GPU", 0) // num_gpus) if num_gpus
                              else int(resources.get("CPU", 1)))
        dataset = dataset.map_batches(_ShardTask, fn_constructor_args=(work, setup), batch_size=1,
                                      concurrency=min(concurrency, count), num_gpus=num_gpus or None,
                                      num_cpus=1)
    rows = dataset.take_all()
    return sorted(rows, key=lambda r: r["shard"])


class _Actor:
    def __init__(self, factory: Callable[[], Any]) -> None:
        self.state = factory()

    def update(self, method: str, args: tuple) -> None:
        getattr(self.state, method)(*args)

    def scatter(self, method: str, args: tuple) -> Any:
        return getattr(self.state, method)(*args)

    def pid(self) -> int:
        import os
        return os.getpid()


class RayWorkerGroup:
    """A :class:`~entrosel.engines.base.WorkerGroup` on Ray actors."""

    def __init__(self, factory: Callable[[], Any], workers: int | None = None,
                 address: str | None = None) -> None:
        ray = init_ray(address)
        self._ray = ray
        self.workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._factory = ray.put(factory)
        self._actor_class = ray.remote(num_cpus=1)(_Actor)
        self._log = UpdateLog()
        self.restarts = 0
        self.actors = [self._start() for _ in range(self.workers)]

    def _start(self):
        return self._actor_class.remote(self._factory)

    def _replace(self, w: int) -> None:
        """A fresh actor in place of actor ``w``, brought to the others' state."""
        self.restarts += 1
        if self.restarts > _MAX_RESTARTS * self.workers:
            raise RuntimeError(f"Ray actors died {self.restarts} times; giving up")
        actor = self._start()
        for method, args in self._log.replay():
            actor.update.remote(method, args)
        self.actors[w] = actor

    def update(self, key: str, method: str, *args: Any, restart: bool = False) -> None:
        self._log.add(key, method, args, restart)
        # not awaited: an actor runs its calls in order, so its next scatter call sees them,
        # and a failure surfaces there (and is repaired by replaying the log)
        for actor in self.actors:
            actor.update.remote(method, args)

    def scatter(self, method: str, items: Sequence[Any], *args: Any) -> np.ndarray:
        ray = self._ray
        n = len(self.actors)
        out = np.empty(len(items), dtype=np.float64)
        todo = list(range(n))
        while todo:
            refs = {w: self.actors[w].scatter.remote(method, (items[w::n], *args)) for w in todo}
            todo = []
            for w, ref in refs.items():
                try:
                    out[w::n] = ray.get(ref)
                except (ray.exceptions.RayActorError, ray.exceptions.ActorDiedError):
                    self._replace(w)
                    todo.append(w)
        return out

    def close(self) -> None:
        for actor in self.actors:
            try:
                self._ray.kill(actor)
            except Exception:  # already gone
                pass
        self.actors = []

    def __enter__(self) -> "RayWorkerGroup":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def actor_gpus(requested: float | None, wants_gpu: bool, cluster_gpus: float) -> float:
    """GPUs each model-loading actor asks Ray for: as requested, else one when the cluster
    has GPUs and the model would use one."""
    if requested is not None:
        return requested
    return 1.0 if cluster_gpus and wants_gpu else 0.0


def _call(fn: Callable[[Any], Any], chunk: Any) -> Any:
    return fn(chunk)


@ENGINES.register("ray")
@dataclass
class RayEngine(Engine):
    """A Ray cluster (``ray_address``, or ``RAY_ADDRESS``, or a local Ray started here).
    ZIP runs on ``workers`` long-lived actors; scoring runs ``shards`` Ray Data tasks (a
    model-loading scorer on ``actors`` replicas, each asking for ``gpus_per_actor`` GPUs);
    other work (``map``) runs as Ray tasks. Data passed by path must be readable on the nodes."""

    ray_address: str | None = option(None, "Ray cluster to join (default: RAY_ADDRESS, or "
                                     "start a local Ray)", metavar="ADDR")
    workers: int | None = option(None, "Ray actors for ZIP, tasks in flight for other work "
                                 "(default: the cluster's CPUs)", param=Param(int, low=0), metavar="N")
    shards: int | None = option(None, "shards of a scoring run (default: the cluster's CPUs)",
                                param=Param(int, low=1), metavar="N")
    actors: int | None = option(None, "model replicas of an LM scoring run (default: one per "
                                "CPU, or per GPU)", param=Param(int, low=1), metavar="N")
    gpus_per_actor: float | None = option(None, "GPUs each model replica asks Ray for (default: 1 "
                                          "when the cluster has GPUs and --device is auto or "
                                          "cuda, else 0)", param=Param(float, low=0), metavar="G")

    distributes: ClassVar[bool] = True

    def _cluster(self) -> dict[str, float]:
        return init_ray(self.ray_address).cluster_resources()

    def concurrency(self) -> int:
        return self.workers or max(1, int(self._cluster().get("CPU", 1)))

    def map(self, fn: Callable[[Any], Any], chunks: Iterable[Any], fresh: bool = False) -> Iterator[Any]:
        ray = init_ray(self.ray_address)  # Ray's workers are never forked from this process
        task = ray.remote(num_cpus=1)(_call)
        limit = 2 * self.concurrency()
        fn_ref = ray.put(fn)
        pending: deque = deque()
        for chunk in chunks:
            pending.append(task.remote(fn_ref, chunk))
            if len(pending) >= limit:
                yield ray.get(pending.popleft())
        while pending:
            yield ray.get(pending.popleft())

    def worker_group(self, factory: Callable[[], Any]) -> WorkerGroup:
        """``factory()`` on ``workers`` actors (default: the cluster's CPUs); ``factory``
        should hold its data (see :meth:`portable`), not paths of this machine."""
        return RayWorkerGroup(factory, workers=self.workers or None, address=self.ray_address)

    def portable(self, items: Any) -> Any:
        return items.in_memory()  # a task on another node cannot read this machine's files

    def shard_count(self) -> int:
        return self.shards or max(1, int(self._cluster().get("CPU", 1)))

    def map_shards(self, count: int, work: Callable[[Any, int], dict], *,
                   setup: Callable[[], Any] | None = None, wants_gpu: bool = False) -> list[dict]:
        gpus = actor_gpus(self.gpus_per_actor, setup is not None and wants_gpu,
                          self._cluster().get("GPU", 0))
        return map_shards(count, work, setup=setup, concurrency=self.actors, num_gpus=gpus,
                          address=self.ray_address)

    def shard_engine(self) -> Engine:
        from entrosel.engines import LocalEngine
        return LocalEngine(workers=1)  # Ray gives each task one CPU
