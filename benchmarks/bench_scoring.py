"""Per-sample compression scoring throughput on the real ShareGPT pool, side by side.

    python benchmarks/bench_scoring.py [--workers N]

Rows, all over the same rendered samples of the exchanges pool (61,239 samples, ~100 MB):
- raw: a plain ``zlib.compress(x, 9)`` loop on one core: the ceiling per core;
- raw, N processes: the same loop split over N processes with no other work: what this
  machine's cores really give together (2 vCPUs of a VM do not scale perfectly);
- entrosel scorer, N workers: :func:`entrosel.commands.score.compression_scores` on the
  rendered samples in memory; efficiency = throughput / (raw x N) (target: >= 80%);
- end to end: ``entrosel score compression`` on the JSONL file (reading, JSON parsing,
  rendering and writing included), for reference.
"""
from __future__ import annotations

import argparse
import tempfile
import time
import zlib
from multiprocessing import Process
from pathlib import Path

from entrosel.commands.score import compression_scores, score_compression
from entrosel.engines import default_workers
from entrosel.io.sharegpt import sharegpt_records
from entrosel.formats import render_text

from _common import sharegpt_pool


def _compress_all(texts: list[bytes]) -> None:
    for x in texts:
        zlib.compress(x, 9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=default_workers())
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "entrosel-bench")
    a = ap.parse_args()
    a.data.mkdir(parents=True, exist_ok=True)
    texts = [render_text(r).encode() for r in sharegpt_records("exchanges")]
    total = sum(map(len, texts))

    t0 = time.perf_counter()
    _compress_all(texts)
    raw = total / (time.perf_counter() - t0)

    rows = [("raw zlib.compress loop", 1, raw, None)]
    if a.workers > 1:
        procs = [Process(target=_compress_all, args=(texts[i::a.workers],)) for i in range(a.workers)]
        t0 = time.perf_counter()
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        thr = total / (time.perf_counter() - t0)
        rows.append(("raw loop in parallel processes (machine ceiling)", a.workers, thr, thr / (raw * a.workers)))
    for n in sorted({1, a.workers}):
        t0 = time.perf_counter()
        compression_scores(texts, workers=n)
        thr = total / (time.perf_counter() - t0)
        rows.append(("entrosel scorer", n, thr, thr / (raw * n)))
    pool = sharegpt_pool(a.data)
    for n in sorted({1, a.workers}):
        s = score_compression(pool, a.data / "scores.jsonl", workers=n, progress=False)
        rows.append(("end to end: score compression", n, s.bytes / s.seconds, s.bytes / s.seconds / (raw * n)))

    print(f"\n## compression scoring, zlib level 9 ({len(texts):,} samples, {total / 1e6:.0f} MB)\n")
    print("| what | workers | MB/s | efficiency vs raw x workers |")
    print("|---|---:|---:|---:|")
    for what, n, thr, eff in rows:
        print(f"| {what} | {n} | {thr / 1e6:.1f} | {'' if eff is None else f'{eff:.0%}'} |")


if __name__ == "__main__":
    main()
