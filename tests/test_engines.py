"""Engines are generic: they import nothing from the steps (scoring, selection, the pool),
and a step hands them a factory for what each worker holds."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from entrosel.engines import InProcessGroup, LocalEngine, ProcessGroup

ENGINES_DIR = Path(__file__).resolve().parents[1] / "src" / "entrosel" / "engines"
_STEP_MODULES = ("entrosel.scoring", "entrosel.selection", "entrosel.filters", "entrosel.pool",
                 "entrosel.formats")


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(ENGINES_DIR.glob("*.py")), ids=lambda p: p.name)
def test_engines_import_no_step(path):
    bad = sorted(n for n in _imports(path) if n.startswith(_STEP_MODULES))
    assert not bad, f"{path.name} imports {bad}"


class Counter:
    """A worker's state: a running offset added to each item."""

    def __init__(self) -> None:
        self.offset = 0

    def add(self, k: int) -> None:
        self.offset += k

    def zero(self) -> None:
        self.offset = 0

    def shifted(self, items, scale):
        return [scale * (i + self.offset) for i in items]


class ThreadedCounter:
    """A factory whose state can use the cores itself when the engine offers them."""

    def __init__(self, threads: int = 1, can: bool = True) -> None:
        self.threads, self.can = threads, can

    def __call__(self) -> Counter:
        state = Counter()
        state.threads = self.threads
        return state

    def threaded(self, threads: int) -> "ThreadedCounter | None":
        return ThreadedCounter(threads) if self.can else None


def test_a_factory_that_can_use_threads_runs_in_this_process():
    with LocalEngine(workers=3).worker_group(ThreadedCounter()) as group:
        assert isinstance(group, InProcessGroup) and group.state.threads == 3
        group.update("offset", "add", 2)
        np.testing.assert_array_equal(group.scatter("shifted", [1, 2], 1), [3, 4])
    with LocalEngine(workers=2).worker_group(ThreadedCounter(can=False)) as group:
        assert isinstance(group, ProcessGroup)  # it declined: worker processes
    with LocalEngine(workers=1).worker_group(ThreadedCounter()) as group:
        assert isinstance(group, InProcessGroup) and group.state.threads == 1


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_a_worker_group_holds_any_state_and_gathers_in_order(workers):
    group = LocalEngine(workers=workers).worker_group(Counter)
    assert isinstance(group, InProcessGroup if workers == 1 else ProcessGroup)
    with group:
        group.update("offset", "add", 5)
        group.update("offset", "add", 2)
        np.testing.assert_array_equal(group.scatter("shifted", list(range(7)), 10),
                                      [10 * (i + 7) for i in range(7)])
        group.update("offset", "zero", restart=True)
        np.testing.assert_array_equal(group.scatter("shifted", [3, 1], 1), [3, 1])
        if workers > 1:  # what a replacement worker replays: only the calls since the restart
            assert list(group._log.replay()) == [("zero", ())]
