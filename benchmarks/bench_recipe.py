"""The default recipe before and after a change, side by side: wall time, peak memory of the
whole process tree (PSS, so pages shared by workers count once), the work folder's size, and
whether the outputs are the same bytes.

    python benchmarks/bench_recipe.py --baseline 606e71a~1          # the 61,239 ShareGPT exchanges
    python benchmarks/bench_recipe.py --baseline REV --pool data/pool.jsonl --repeats 3

The baseline runs from a git worktree of REV (made in a temporary folder, removed after);
the runs alternate (baseline, current, baseline, ...) so that both see the same machine. CPU
seconds (the run's processes, workers included) say more than wall time on a busy machine.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import process_tree, pss_kib, sharegpt_pool  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def run_once(src: Path, recipe: Path, pool: Path, folder: Path) -> dict:
    out = folder / "out.jsonl"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = [sys.executable, "-m", "entrosel", "run", str(recipe), str(pool), "-o", str(out), "--no-progress"]
    peak = [0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], 1024 * sum(pss_kib(p) for p in process_tree(proc.pid)))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the run's processes, workers included
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{err}")
    work = Path(f"{out}.steps")
    return {"wall": wall, "cpu": cpu, "peak": peak[0], "work": sum(p.stat().st_size for p in work.rglob("*") if p.is_file()),
            "sha": hashlib.sha256(out.read_bytes()).hexdigest(), "records": sum(1 for _ in open(out, "rb"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, metavar="REV", help="git revision to compare with")
    parser.add_argument("--pool", type=Path, help="the pool (default: the 61,239 ShareGPT exchanges, made once in data/)")
    parser.add_argument("--recipe", type=Path, default=ROOT / "recipes" / "sft-default.yaml")
    parser.add_argument("--repeats", type=int, default=2)
    a = parser.parse_args()
    pool = a.pool or sharegpt_pool(ROOT / "data")
    with tempfile.TemporaryDirectory(prefix="entrosel-bench-recipe-") as tmp:
        base = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), a.baseline],
                       check=True, capture_output=True)
        try:
            trees = {f"baseline {a.baseline}": base / "src", "current": ROOT / "src"}
            runs: dict[str, list[dict]] = {name: [] for name in trees}
            for i in range(a.repeats):
                for name, src in trees.items():
                    runs[name].append(run_once(src, a.recipe, pool, Path(tmp) / "work" / f"{i}-{name[:4]}"))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)],
                           capture_output=True)
    size = pool.stat().st_size
    print(f"pool: {pool} ({size / 1e6:.1f} MB); recipe: {a.recipe.name}; {a.repeats} run(s) each, alternating; "
          f"load average before: {os.getloadavg()[0]:.1f}")
    print(f"{'tree':<24} {'wall s (best)':>14} {'CPU s (best)':>13} {'peak PSS MB':>12} {'x pool':>7} "
          f"{'work MB':>8} {'records':>8}  output sha256")
    for name, rs in runs.items():
        best = min(rs, key=lambda r: r["wall"])
        cpu = min(r["cpu"] for r in rs)
        peak = max(r["peak"] for r in rs)
        print(f"{name:<24} {best['wall']:>14.1f} {cpu:>13.1f} {peak / 1e6:>12.0f} {peak / size:>7.2f} "
              f"{best['work'] / 1e6:>8.1f} {best['records']:>8,}  {best['sha'][:16]}")
    shas = {r["sha"] for rs in runs.values() for r in rs}
    print("outputs identical: " + ("yes" if len(shas) == 1 else f"NO ({len(shas)} different)"))


if __name__ == "__main__":
    main()
