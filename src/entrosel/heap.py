"""Python's cyclic garbage collector, paused over passes that keep many objects."""
from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def paused_gc() -> Iterator[None]:
    """Run the block with the cyclic collector off (reference counting still frees
    everything that is not part of a cycle, and the passes that use this make none).

    A full collection walks every object still alive, and while a pass keeps more and more
    of them (a filter's removals: half a million on a million records) it comes again each
    time their number grows by a quarter: the length filter's pass over a million records
    took 17.9 s with the collector on and 10.1 s with it off
    (``benchmarks/bench_hotpaths.py``). A collector already off is left off."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()
