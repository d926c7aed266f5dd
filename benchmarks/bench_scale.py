"""The default recipe at scale (issue 30): per step wall time, peak memory of the whole process
tree (PSS: shared pages counted once), records kept, and the selection's R; ZIP's cost per
round against the size of the selection, plotted into docs.

    python benchmarks/build_pool.py -o data/pool-1m.jsonl                 # once: 1M records
    python benchmarks/bench_scale.py data/pool-1m.jsonl --budget 100000   # the recipe's steps
    python benchmarks/bench_scale.py data/pool-1m.jsonl --records 100000 --budget 10000 \\
        --src /path/to/an/older/checkout/src                               # before/after, one run
    python benchmarks/bench_scale.py --plot OUT/scale.json -o docs/scale-rounds.png
    python benchmarks/bench_scale.py data/pool-1m.jsonl --records 300000 --round \
        --src OLD/src --src src                     # one stage-2 round at 1-64 MiB of picks

The steps are those of ``recipes/sft-default.yaml`` with ZIP's budget set by ``--budget``,
run by ``entrosel run`` in a child process (one per ``--src``: ``PYTHONPATH`` points it at
that source tree, so two versions run side by side on the same pool, one after the other).
The child samples the PSS of its process tree every 0.2 s and attributes each sample to the
step that is running (a step ends when ``entrosel run`` prints its line); it records every
ZIP round's stage-2 and stage-3 time with the selection's size before it. The load average
is printed beside every figure: timings on a shared machine are upper bounds.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import process_tree, pss_kib

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "sft-default.yaml"


# --- the child: one recipe run, measured -----------------------------------------------------

def tree_pss() -> tuple[int, int]:
    """Summed PSS of this process and all its descendants, and of the descendants alone."""
    me, *children = process_tree(os.getpid())
    workers = 1024 * sum(pss_kib(p) for p in children)
    return 1024 * pss_kib(me) + workers, workers


class StepMeter:
    """Peak tree PSS per step; a step ends when a line of ``entrosel run`` names it done."""

    def __init__(self) -> None:
        self.steps: list[dict] = []
        self.peak = self.peak_workers = 0
        self.start = time.perf_counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            time.sleep(0.2)

    def _sample(self) -> None:
        total, workers = tree_pss()
        self.peak, self.peak_workers = max(self.peak, total), max(self.peak_workers, workers)

    def line(self, text: str) -> None:
        if not re.match(r"entrosel (filter|select|score) ", text):
            return
        now = time.perf_counter()
        self._sample()
        self.steps.append({"line": text.strip(), "wall_s": round(now - self.start, 2),
                           "peak_pss_mb": round(self.peak / 1e6),
                           "workers_peak_pss_mb": round(self.peak_workers / 1e6),
                           "load": os.getloadavg()[0]})
        self.start, self.peak, self.peak_workers = now, 0, 0

    def __enter__(self) -> "StepMeter":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


class _Tee:
    def __init__(self, stream, meter: StepMeter) -> None:
        self.stream, self.meter, self.buf = stream, meter, ""

    def write(self, s: str) -> int:
        self.buf += s
        while "\n" in self.buf:
            line, self.buf = self.buf.split("\n", 1)
            self.meter.line(line)
        return self.stream.write(s)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name):
        return getattr(self.stream, name)


def child(pool: Path, budget: int, work: Path, workers: int | None, rescore: str = "all") -> dict:
    import yaml

    from entrosel import render_text
    from entrosel.cli import main
    from entrosel.selection import zip as zip_module

    recipe = yaml.safe_load(RECIPE.read_text())
    for step in recipe["steps"]:
        (name, options), = step.items()
        if name == "select zip":
            options["budget"] = budget
            if rescore != "all":
                options["rescore"] = rescore
            if workers:
                options["workers"] = workers
    recipe_path = work / "recipe.yaml"
    recipe_path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    rounds: list[dict] = []
    original = zip_module.ZipSelector._round

    def timed_round(self, group, tokens, state):  # noqa: ANN001
        before = len(state.selected)
        held = int(self._reach[2][state.selected].sum()) if self._reach and before else 0
        original(self, group, tokens, state)
        t = self.round_timings_[-1]
        rounds.append({"round": t.round, "selected_before": before, "selection_bytes": held,
                       "stage2_s": round(t.stage2_s, 4), "stage3_s": round(t.stage3_s, 4)})

    zip_module.ZipSelector._round = timed_round
    output = work / "sft.jsonl"
    t0 = time.perf_counter()
    with StepMeter() as meter:
        sys.stderr = _Tee(sys.__stderr__, meter)
        try:
            code = main(["run", str(recipe_path), str(pool), "-o", str(output)])
        finally:
            sys.stderr = sys.__stderr__
    wall = time.perf_counter() - t0
    measured = subprocess.run([sys.executable, "-m", "entrosel", "measure", str(output), "--json"],
                              capture_output=True, text=True, env=os.environ)
    r = json.loads(measured.stdout)["R"] if measured.returncode == 0 else None
    data = output.read_bytes() if output.exists() else b""
    texts = [render_text(json.loads(line)) for line in data.splitlines()]
    return {"exit": code, "wall_s": round(wall, 1), "load_end": os.getloadavg()[0],
            "steps": meter.steps, "R": r, "rounds": rounds, "selected": len(texts),
            "repeats": len(texts) - len(set(texts)), "sha256": hashlib.sha256(data).hexdigest()}


# --- one stage-2 round against a large selection, per version ---------------------------------

def round_child(pool: Path, anchor_mib: list[int], candidates: int) -> list[dict]:
    """One worker's stage-2 round (``candidates`` rescored against a selection of each size
    in ``anchor_mib``) on this source tree, in this process (one core)."""
    import numpy as np

    from entrosel.pool import InputOptions, load_pool
    from entrosel.scoring.anchored import ConditionalEvaluator

    options = InputOptions()
    rows = []
    with load_pool(pool, options, progress=False) as p:
        sizes = p.sizes
        order = np.random.default_rng(0).permutation(len(p))
        cands = [int(i) for i in order[:candidates]]
        rest = order[candidates:]
        for mib in anchor_mib:
            ev = ConditionalEvaluator(p.items.open(), options.serialization.framing, 1)
            upto = int(np.searchsorted(np.cumsum(sizes[rest]), mib << 20)) + 1
            picks = [int(i) for i in rest[:upto]]
            t0 = time.perf_counter()
            for k in range(0, len(picks), 2000):  # a round's picks are 100; 2,000 keep it short
                ev.extend(picks[k:k + 2000])
            ev.ratios(cands[:1])  # the digest
            built = time.perf_counter() - t0
            t0 = time.perf_counter()
            ev.ratios(cands)
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            ev.ratios(cands)
            again = time.perf_counter() - t0
            rows.append({"anchor_mib": mib, "picks": len(picks), "candidates": len(cands),
                         "build_s": round(built, 2), "round_s": round(first, 3),
                         "round_again_s": round(again, 3), "load": os.getloadavg()[0]})
    return rows


def compare_rounds(pool: Path, srcs: list[Path], anchor_mib: list[int], candidates: int) -> list[dict]:
    results = []
    for src in srcs:
        with tempfile.TemporaryDirectory(prefix="entrosel-round-") as work:
            out = Path(work) / "rounds.json"
            subprocess.run([sys.executable, __file__, "--_round", str(pool), "--result", str(out),
                            "--anchor-mib", ",".join(map(str, anchor_mib)),
                            "--candidates", str(candidates)],
                           env=dict(os.environ, PYTHONPATH=str(src)), check=True)
            rows = json.loads(out.read_text())
        print(f"\n{src}: one stage-2 round of {candidates:,} candidates, one core")
        print(f"{'selection MiB':>13} {'picks':>8} {'build s':>8} {'round s':>8} {'again s':>8} "
              f"{'us/cand':>8} {'load':>5}")
        for r in rows:
            print(f"{r['anchor_mib']:>13} {r['picks']:>8,} {r['build_s']:>8} {r['round_s']:>8} "
                  f"{r['round_again_s']:>8} {1e6 * r['round_again_s'] / candidates:>8.0f} "
                  f"{r['load']:>5.1f}")
        results.append({"src": str(src), "rows": rows})
    return results


# --- the driver --------------------------------------------------------------------------------

def run_one(pool: Path, budget: int, src: Path, workers: int | None, rescore: str = "all") -> dict:
    with tempfile.TemporaryDirectory(prefix="entrosel-scale-") as work:
        env = dict(os.environ, PYTHONPATH=str(src))
        load = os.getloadavg()[0]
        out = Path(work) / "result.json"
        subprocess.run([sys.executable, __file__, "--_child", str(pool), "--budget", str(budget),
                        "--work", work, "--result", str(out), "--rescore", rescore] +
                       (["--workers", str(workers)] if workers else []), env=env, check=True)
        result = json.loads(out.read_text())
        result.update(src=str(src), load_start=load, rescore=rescore)
        return result


def slice_pool(pool: Path, records: int, folder: Path) -> Path:
    path = folder / f"{pool.stem}-first{records}.jsonl"
    with open(pool, "rb") as f, open(path, "wb") as g:
        for k, line in enumerate(f):
            if k >= records:
                break
            g.write(line)
    return path


def report(result: dict, pool_bytes: int) -> None:
    print(f"\n{result['src']} (--rescore {result.get('rescore', 'all')}): exit {result['exit']}, {result['selected']:,} selected "
          f"({result.get('repeats', '?')} repeating an earlier pick's text; sha256 "
          f"{result['sha256'][:16]}), R {result['R']}, {result['wall_s']} s in all (load average {result['load_start']:.1f} "
          f"at the start, {result['load_end']:.1f} at the end)")
    print(f"{'step':<60} {'wall s':>8} {'peak PSS MB':>12} {'x pool':>7} {'workers MB':>11} "
          f"{'load':>5}")
    for s in result["steps"]:
        print(f"{s['line'][:60]:<60} {s['wall_s']:>8} {s['peak_pss_mb']:>12} "
              f"{s['peak_pss_mb'] * 1e6 / pool_bytes:>7.2f} {s.get('workers_peak_pss_mb', '-'):>11} "
              f"{s['load']:>5.1f}")
    rounds = result["rounds"]
    if rounds:
        step = max(1, len(rounds) // 10)
        print(f"{'round':>6} {'selected':>9} {'MiB':>7} {'stage 2 s':>10} {'stage 3 s':>10}")
        for r in rounds[::step] + ([rounds[-1]] if (len(rounds) - 1) % step else []):
            print(f"{r['round']:>6} {r['selected_before']:>9,} {r['selection_bytes'] / 2**20:>7.1f} "
                  f"{r['stage2_s']:>10.3f} {r['stage3_s']:>10.3f}")


def plot(results: list[dict], output: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for result in results:
        rounds = result["rounds"]
        if not rounds:
            continue
        x = [r["selection_bytes"] / 2**20 for r in rounds]
        label = Path(result["src"]).parent.name or result["src"]
        ax.plot(x, [r["stage2_s"] for r in rounds], ".", ms=2, label=f"stage 2 ({label})")
        ax.plot(x, [r["stage3_s"] for r in rounds], ".", ms=2, label=f"stage 3 ({label})")
    ax.axvline(16, color="grey", lw=0.8, ls="--")
    ax.text(16.3, ax.get_ylim()[1] * 0.92, "zstd's reach (16 MiB)", fontsize=8, color="grey")
    ax.set_xlabel("selection before the round (MiB)")
    ax.set_ylabel("seconds per round")
    ax.set_title("Long-memory ZIP: cost per round as the selection grows", fontsize=10)
    ax.legend(fontsize=8, markerscale=4)
    fig.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=120)
    print(f"bench_scale: plot -> {output}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pool", nargs="?", type=Path)
    ap.add_argument("--budget", type=int, default=100_000)
    ap.add_argument("--records", type=int, help="use the pool's first N records")
    ap.add_argument("--src", type=Path, action="append",
                    help="source tree(s) to run (default: this checkout's src/); give two to "
                         "compare versions side by side")
    ap.add_argument("--workers", type=int)
    ap.add_argument("--rescore", choices=("all", "lazy"), action="append",
                    help="ZIP's --rescore (repeat it to run each in turn; default: all)")
    ap.add_argument("--json", type=Path, help="write every result here")
    ap.add_argument("--plot", type=Path, nargs="*", help="plot the rounds of these result files")
    ap.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "scale-rounds.png")
    ap.add_argument("--round", action="store_true",
                    help="time one stage-2 round against selections of --anchor-mib instead")
    ap.add_argument("--anchor-mib", default="1,8,16,32,64")
    ap.add_argument("--candidates", type=int, default=10_000)
    ap.add_argument("--_round", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--_child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.rescore = args.rescore or ["all"]
    mibs = [int(m) for m in args.anchor_mib.split(",")]
    if args._round:
        args.result.write_text(json.dumps(round_child(args._round, mibs, args.candidates)))
        return 0
    if args._child:
        args.result.write_text(json.dumps(child(args._child, args.budget, args.work, args.workers,
                                                args.rescore[-1])))
        return 0
    if args.plot is not None:
        results = [r for path in args.plot for r in json.loads(path.read_text())]
        plot(results, args.output)
        return 0
    if args.pool is None:
        ap.error("give the pool (benchmarks/build_pool.py builds one)")
    with tempfile.TemporaryDirectory(prefix="entrosel-slice-") as folder:
        pool = slice_pool(args.pool, args.records, Path(folder)) if args.records else args.pool
        pool_bytes = pool.stat().st_size
        print(f"bench_scale: {pool} ({pool_bytes / 1e6:,.0f} MB), budget {args.budget:,}, "
              f"{os.cpu_count()} cores", file=sys.stderr)
        if args.round:
            results = compare_rounds(pool, [s.resolve() for s in args.src or [ROOT / "src"]],
                                     mibs, args.candidates)
            if args.json:
                args.json.write_text(json.dumps(results, indent=1))
            return 0
        results = []
        for src, rescore in [(s, r) for s in args.src or [ROOT / "src"] for r in args.rescore]:
            results.append(run_one(pool, args.budget, src.resolve(), args.workers, rescore))
            report(results[-1], pool_bytes)
            if args.json:
                args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
