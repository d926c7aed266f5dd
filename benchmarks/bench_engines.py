"""The local engine against Ray, with 1 and 2 workers, side by side: scoring throughput
and ZIP round time.

    python benchmarks/bench_engines.py [--part scoring|zip|all] [--k1 1000 2000 4000]

Scoring: `score compression` of all 61,239 ShareGPT exchanges (JSONL, zlib 9), local with
1 and 2 worker processes, Ray on a local Ray with 1 and 2 CPUs (8 shards, merged); every
output is checked byte-identical to the local one. ZIP: 4,000 exchanges; budget 400,
K2=100, K3=50, serialize text; each row runs the same selection (checked equal) and
reports wall time and the mean time per round, split into stage 2 and stage 3.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import ray

from entrosel import ZipSelector
from entrosel.commands.sharded import score

from _common import sharegpt_pool


def run(pool: Path, engine: str, workers: int, k1: int) -> tuple[list[int], float, float, float]:
    sel = ZipSelector(budget=400, k1=k1, k2=100, k3=50, workers=workers, engine=engine, progress=False)
    t0 = time.perf_counter()
    chosen = sel.select(pool)
    wall = time.perf_counter() - t0
    t2 = np.mean([r.stage2_s for r in sel.round_timings_])
    t3 = np.mean([r.stage3_s for r in sel.round_timings_])
    return chosen, wall, t2, t3


def start_ray(cpus: int) -> None:
    ray.shutdown()
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)


def scoring(data: Path) -> None:
    pool = sharegpt_pool(data)
    size = pool.stat().st_size
    print(f"\n## score compression, {size / 1e6:.0f} MB of JSONL (61,239 exchanges), zlib 9\n")
    print("| engine | workers | wall s | MB/s | same bytes as local |")
    print("|---|---:|---:|---:|---|")
    reference = None
    with tempfile.TemporaryDirectory() as tmp:
        for engine in ("local", "ray"):
            for workers in (1, 2):
                out = Path(tmp) / f"{engine}-{workers}.jsonl"
                if engine == "ray":
                    start_ray(workers)
                t0 = time.perf_counter()
                if engine == "local":
                    score("compression", pool, out, workers=workers, progress=False)
                else:
                    score("compression", pool, out, engine="ray", shards=8)
                wall = time.perf_counter() - t0
                reference = reference or out.read_bytes()
                same = "yes" if out.read_bytes() == reference else "NO"
                print(f"| {engine} | {workers} | {wall:.2f} | {size / 1e6 / wall:.1f} | {same} |")


def zip_rounds(data: Path, k1s: list[int]) -> None:
    pool = sharegpt_pool(data, limit=4000)
    start_ray(2)
    print("\n## ZIP on the local engine and on Ray (4,000 exchanges, budget 400, K2=100, K3=50)\n")
    print("| K1 | engine | workers | wall s | round s | stage 2 s | stage 3 s | same selection |")
    print("|---:|---|---:|---:|---:|---:|---:|---|")
    for k1 in k1s:
        reference = None
        for engine in ("local", "ray"):
            for workers in (1, 2):
                chosen, wall, t2, t3 = run(pool, engine, workers, k1)
                reference = reference or chosen
                print(f"| {k1} | {engine} | {workers} | {wall:.2f} | {t2 + t3:.3f} | {t2:.3f} | {t3:.3f} | "
                      f"{'yes' if chosen == reference else 'NO'} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("scoring", "zip", "all"), default="all")
    ap.add_argument("--k1", type=int, nargs="+", default=[1000, 2000, 4000])
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "entrosel-bench")
    a = ap.parse_args()
    a.data.mkdir(parents=True, exist_ok=True)
    if a.part in ("scoring", "all"):
        scoring(a.data)
    if a.part in ("zip", "all"):
        zip_rounds(a.data, a.k1)
    ray.shutdown()


if __name__ == "__main__":
    main()
