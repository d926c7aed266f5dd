"""ZIP selection speed and memory on the real ShareGPT pool.

    python benchmarks/bench_zip.py                 # both parts (about 10 minutes on 2 cores)
    python benchmarks/bench_zip.py --part compare  # live vs recompress, side by side
    python benchmarks/bench_zip.py --part paper    # the paper's setting

Part "compare": 4,000 exchanges, budget 400, K1=1000, K2=100, K3=50; entrosel's live
compressor against recompressing the whole selection for every candidate (what the
official ZIP.py does), both with the same number of worker processes, same selection.

Part "paper": every exchange of the pool (61,239), K1=10000, K2=200, K3=100, budget
10,000: wall time, time per round split into stage 2 and stage 3, and peak memory
(summed PSS of all processes) against the pool's size on disk.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from entrosel import ZipSelector
from entrosel.engines import default_workers

from _common import PeakMemory, sharegpt_pool


def run(pool: Path, strategy: str, workers: int, **params) -> tuple[ZipSelector, float]:
    sel = ZipSelector(workers=workers, strategy=strategy, progress=False, **params)
    t0 = time.perf_counter()
    sel.select(pool)
    return sel, time.perf_counter() - t0


def compare(folder: Path, workers: int) -> None:
    pool = sharegpt_pool(folder, limit=4000)
    params = dict(budget=400, k1=1000, k2=100, k3=50)
    live, t_live = run(pool, "live", workers, **params)
    slow, t_slow = run(pool, "recompress", workers, **params)
    assert live.selected_ == slow.selected_, "strategies disagree"
    print(f"\n## live compressor vs recompress-everything ({pool.name}, budget 400, "
          f"K1=1000 K2=100 K3=50, {workers} workers)\n")
    print("| evaluator | seconds | speed-up |")
    print("|---|---:|---:|")
    print(f"| recompress (ZIP.py's way) | {t_slow:.1f} | 1.0x |")
    print(f"| live (entrosel) | {t_live:.2f} | {t_slow / t_live:.1f}x |")
    print("\nsame selection: yes")


def paper(folder: Path, workers: int, budget: int) -> None:
    pool = sharegpt_pool(folder)
    with PeakMemory() as mem:
        sel, seconds = run(pool, "live", workers, budget=budget, k1=10_000, k2=200, k3=100)
    t2 = np.array([r.stage2_s for r in sel.round_timings_])
    t3 = np.array([r.stage3_s for r in sel.round_timings_])
    disk = pool.stat().st_size
    print(f"\n## paper setting ({pool.name}: {sum(1 for _ in open(pool)):,} samples, "
          f"{disk / 1e6:.0f} MB; budget {budget:,}, K1=10000 K2=200 K3=100, {workers} workers)\n")
    print("| measure | value |")
    print("|---|---:|")
    print(f"| wall time | {seconds:.1f} s ({seconds / 60:.2f} min) |")
    print(f"| initial scoring of the pool | {sel.initial_scoring_s_:.1f} s |")
    print(f"| rounds | {len(t2)} |")
    print(f"| time per round (mean) | {np.mean(t2 + t3):.2f} s |")
    print(f"| stage 2 per round (mean) | {np.mean(t2):.2f} s ({t2.sum() / (t2.sum() + t3.sum()):.0%}) |")
    print(f"| stage 3 per round (mean) | {np.mean(t3):.2f} s ({t3.sum() / (t2.sum() + t3.sum()):.0%}) |")
    print(f"| selected | {len(sel.selected_):,} |")
    print(f"| peak memory (PSS, all processes) | {mem.peak_bytes / 1e6:.0f} MB "
          f"({mem.peak_bytes / disk:.2f}x the pool on disk) |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("compare", "paper", "all"), default="all")
    ap.add_argument("--workers", type=int, default=default_workers())
    ap.add_argument("--budget", type=int, default=10_000, help="paper part's budget")
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "entrosel-bench")
    a = ap.parse_args()
    a.data.mkdir(parents=True, exist_ok=True)
    if a.part in ("compare", "all"):
        compare(a.data, a.workers)
    if a.part in ("paper", "all"):
        paper(a.data, a.workers, a.budget)


if __name__ == "__main__":
    main()
