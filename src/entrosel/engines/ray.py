"""The Ray engine: ZIP on long-lived actors, and scoring shards with Ray Data.

ZIP: each actor holds its own live compressors.
The pool's bytes go once into Ray's object store; every actor reads them from there (so
actors on other nodes need no shared file system). Anchor updates are sent to every actor
(in order, per actor); candidates are dealt out among them and their ratios gathered, as in
the local engine, so the selection is the same. If an actor dies, a new one is started and
brought back to the same state by replaying the anchor updates since each anchor's last
reset, and the call is repeated.

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

from entrosel.engines.base import ENGINES, Engine
from entrosel.errors import InputError
from entrosel.formats.serialize import Framing
from entrosel.pool import OpenItems, PoolItems
from entrosel.params import Param, option
from entrosel.scoring.compression import Compressor

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
    def __init__(self, blob, offsets, framing, compressor, strategy, anchors) -> None:
        from entrosel.engines.local import Evaluators

        items = OpenItems(buffer=blob, offsets=offsets)
        self.evaluators = Evaluators(items, framing, compressor, strategy, anchors)

    def run(self, command: str, anchor: str, payload: Any) -> Any:
        return self.evaluators.run(command, anchor, payload)

    def pid(self) -> int:
        import os
        return os.getpid()


class RayEvaluatorGroup:
    """The :class:`~entrosel.engines.local.EvaluatorGroup` interface on Ray actors."""

    def __init__(self, items: PoolItems, framing: Framing, compressor: Compressor,
                 strategy: str = "auto", anchors: Sequence[str] = ("selected", "batch"),
                 workers: int | None = None, address: str | None = None) -> None:
        ray = init_ray(address)
        self._ray = ray
        self.workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        buffer = items.open().buffer
        blob = np.frombuffer(buffer, dtype=np.uint8) if len(buffer) else np.zeros(0, np.uint8)
        self._args = (ray.put(blob), items.offsets, framing, compressor, strategy, tuple(anchors))
        self._actor_class = ray.remote(num_cpus=1)(_Actor)
        # each anchor's extensions since its last reset, one list per call: a long-memory
        # anchor's C(A) depends on how it was built, so a replay repeats the calls one by one
        self._log: dict[str, list[list[int]]] = {a: [] for a in anchors}
        self.restarts = 0
        self.actors = [self._start() for _ in range(self.workers)]

    def _start(self):
        return self._actor_class.remote(*self._args)

    def _replace(self, w: int) -> None:
        """A fresh actor in place of actor ``w``, brought to the others' state."""
        self.restarts += 1
        if self.restarts > _MAX_RESTARTS * self.workers:
            raise RuntimeError(f"Ray actors died {self.restarts} times; giving up")
        actor = self._start()
        for anchor, calls in self._log.items():
            for indices in calls:
                actor.run.remote("extend", anchor, indices)
        self.actors[w] = actor

    def _call_all(self, command: str, anchor: str, payload: Any = None) -> None:
        # not awaited: an actor runs its calls in order, so its next ratios call sees them,
        # and a failure surfaces there (and is repaired by replaying the log)
        for actor in self.actors:
            actor.run.remote(command, anchor, payload)

    def reset(self, anchor: str) -> None:
        self._log[anchor] = []
        self._call_all("reset", anchor)

    def extend(self, anchor: str, indices: Sequence[int]) -> None:
        indices = [int(i) for i in indices]
        self._log[anchor].append(indices)
        self._call_all("extend", anchor, indices)

    def ratios(self, anchor: str, candidates: Sequence[int]) -> np.ndarray:
        ray = self._ray
        candidates = [int(i) for i in candidates]
        n = len(self.actors)
        out = np.empty(len(candidates), dtype=np.float64)
        todo = list(range(n))
        while todo:
            refs = {w: self.actors[w].run.remote("ratios", anchor, candidates[w::n]) for w in todo}
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

    def __enter__(self) -> "RayEvaluatorGroup":
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

    def map(self, fn: Callable[[Any], Any], chunks: Iterable[Any]) -> Iterator[Any]:
        ray = init_ray(self.ray_address)
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

    def evaluator_group(self, items: PoolItems, framing: Framing, compressor: Compressor,
                        strategy: str = "auto", anchors: Sequence[str] = ("selected", "batch")
                        ) -> "RayEvaluatorGroup":
        return RayEvaluatorGroup(items, framing, compressor, strategy, anchors,
                                 workers=self.workers or None, address=self.ray_address)

    def portable(self, items: PoolItems) -> Any:
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
