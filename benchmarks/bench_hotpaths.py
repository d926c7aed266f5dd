"""The hot paths behind the third scale pass (docs/scaling.md), each timed on its own:

    python benchmarks/bench_hotpaths.py data/pool-1m.jsonl

- json: parsing a line, ``json.loads`` against entrosel's ``loads`` (msgspec, json as the
  fallback), on the pool's first 200,000 lines;
- gc: the length filter's pass over the whole pool (the recipe's options) with the cyclic
  GC on, then paused as ``Filter.fit`` pauses it;
- gzip: that pass's removed rows written at gzip levels 1, 6 and 9;
- slices: stage 3's candidates (150 of about 1.2 KB against a digest of 50 others) on one
  thread, on zstd's C threads and in slices on two Python threads.

Prints a table; every timing is the best of a few repeats.
"""
from __future__ import annotations

import argparse
import gc
import itertools
import json
import random
import sys
import time
import zlib
from pathlib import Path

from entrosel.filters import LengthFilter
from entrosel.formats.render import render_text
from entrosel.io.readers import loads
from entrosel.pool import InputOptions, RecordSet
from entrosel.scoring import conditional
from entrosel.scoring.conditional import LongMemory


def best(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pool", type=Path)
    args = ap.parse_args(argv)
    rows = []

    lines = list(itertools.islice(open(args.pool, "rb"), 200_000))
    for name, parse in (("json.loads", json.loads), ("entrosel loads", loads)):
        s = best(lambda: [parse(x) for x in lines])
        rows.append(("json", name, f"{s / len(lines) * 1e6:.1f} us a line"))

    records = RecordSet.read(args.pool, progress=False)
    options = dict(min_chars=200, max_chars=20000, min_response_chars=50)
    for name, pause in (("GC on", False), ("GC paused", True)):
        step = LengthFilter(**options)
        step._keeps_ids = True  # as a recipe's step: the rows below need the ids
        if pause:
            s = best(lambda: step.fit(records, InputOptions(), False), 1)
        else:
            original = fit_with_gc_on(step)
            s = best(lambda: original(records, InputOptions(), False), 1)
        records.release()
        rows.append(("gc", f"length filter's pass, {name}", f"{s:.1f} s"))

    text = "".join(json.dumps({"index": p, "id": step._removed_ids.get(p), "reason": r.reason,
                               "detail": r.detail}) + "\n"
                   for p, r in sorted(step.removed_.items())).encode()
    for level in (1, 6, 9):
        s = best(lambda: zlib.compress(text, level))
        rows.append(("gzip", f"{len(text) / 1e6:.1f} MB of removed rows, level {level}",
                     f"{s:.2f} s, {len(zlib.compress(text, level)) / 1e6:.1f} MB"))

    texts = [render_text(r.data).encode() for r in itertools.islice(records, 20_000)]
    texts = [t for t in texts if 200 <= len(t) <= 20_000]
    rng = random.Random(0)
    digested = LongMemory(1).digest(b"\n\n".join(rng.sample(texts, 50)))
    candidates = rng.sample(texts, 150)
    one = best(lambda: [digested.sizes(candidates) for _ in range(100)])
    saved = conditional.C_THREADS_MIN_ITEMS
    for name, c_threads in (("zstd's C threads", 1), ("slices on 2 Python threads", 10 ** 9)):
        conditional.C_THREADS_MIN_ITEMS = c_threads
        s = best(lambda: [digested.sizes(candidates, threads=2) for _ in range(100)])
        rows.append(("slices", f"150 candidates, {name}", f"{s * 10:.2f} ms, {one / s:.2f}x one thread"))
    conditional.C_THREADS_MIN_ITEMS = saved
    rows.append(("slices", "150 candidates, one thread", f"{one * 10:.2f} ms"))

    for part, what, result in rows:
        print(f"{part:<7} {what:<48} {result}")
    return 0


def fit_with_gc_on(step: LengthFilter):
    """``step.fit`` with the GC left as it is (on): the pause swapped for a no-op."""
    import contextlib

    from entrosel.filters import base

    def fit(*args):
        saved = base.paused_gc
        base.paused_gc = contextlib.nullcontext
        try:
            gc.enable()
            return step.fit(*args)
        finally:
            base.paused_gc = saved
    return fit


if __name__ == "__main__":
    sys.exit(main())
