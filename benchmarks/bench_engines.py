"""ZIP round time on the local engine and on Ray, with 1 and 2 workers, side by side.

    python benchmarks/bench_engines.py [--k1 1000 2000 4000]

Pool: 4,000 ShareGPT exchanges; budget 400, K2=100, K3=50, serialize text. Each row runs
the same selection (checked equal) and reports wall time and the mean time per round,
split into stage 2 and stage 3. Ray is a local Ray started here (2 CPUs).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import ray

from entrosel import ZipSelector

from _common import sharegpt_pool


def run(pool: Path, engine: str, workers: int, k1: int) -> tuple[list[int], float, float, float]:
    sel = ZipSelector(budget=400, k1=k1, k2=100, k3=50, workers=workers, engine=engine, progress=False)
    t0 = time.perf_counter()
    chosen = sel.select(pool)
    wall = time.perf_counter() - t0
    t2 = np.mean([r.stage2_s for r in sel.round_timings_])
    t3 = np.mean([r.stage3_s for r in sel.round_timings_])
    return chosen, wall, t2, t3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--k1", type=int, nargs="+", default=[1000, 2000, 4000])
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "entrosel-bench")
    a = ap.parse_args()
    a.data.mkdir(parents=True, exist_ok=True)
    pool = sharegpt_pool(a.data, limit=4000)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    print("\n## ZIP on the local engine and on Ray (4,000 exchanges, budget 400, K2=100, K3=50)\n")
    print("| K1 | engine | workers | wall s | round s | stage 2 s | stage 3 s | same selection |")
    print("|---:|---|---:|---:|---:|---:|---:|---|")
    for k1 in a.k1:
        reference = None
        for engine in ("local", "ray"):
            for workers in (1, 2):
                chosen, wall, t2, t3 = run(pool, engine, workers, k1)
                reference = reference or chosen
                print(f"| {k1} | {engine} | {workers} | {wall:.2f} | {t2 + t3:.3f} | {t2:.3f} | {t3:.3f} | "
                      f"{'yes' if chosen == reference else 'NO'} |")
    ray.shutdown()


if __name__ == "__main__":
    main()
