"""The Ray engine for ZIP: long-lived actors, each holding its own live compressors.

The pool's bytes go once into Ray's object store; every actor reads them from there (so
actors on other nodes need no shared file system). Anchor updates are sent to every actor
(in order, per actor); candidates are dealt out among them and their ratios gathered, as in
the local engine, so the selection is the same. If an actor dies, a new one is started and
brought back to the same state by replaying the anchor updates since each anchor's last
reset, and the call is repeated.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from entrosel.errors import InputError
from entrosel.formats.serialize import Framing
from entrosel.pool import OpenItems, PoolItems
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
        self._log: dict[str, list[int]] = {a: [] for a in anchors}
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
        for anchor, indices in self._log.items():
            if indices:
                actor.run.remote("extend", anchor, list(indices))
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
        self._log[anchor] += indices
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
