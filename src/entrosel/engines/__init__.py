"""Where work runs: :data:`ENGINES` by name (``local``, ``ray``), each an :class:`Engine`.
Scorers and selectors are handed an engine and do not know which one runs them."""
from entrosel.engines.base import ENGINES, Engine, InProcessGroup, WorkerGroup, make_engine
from entrosel.engines.local import (LocalEngine, ProcessGroup, WorkerDied, default_workers,
                                    ordered_map, resolve_workers)
from entrosel.engines.ray import RayEngine

__all__ = ["ENGINES", "Engine", "InProcessGroup", "LocalEngine", "ProcessGroup", "RayEngine",
           "WorkerDied", "WorkerGroup", "default_workers", "make_engine", "ordered_map",
           "resolve_workers"]
