"""ZIP selection speed and memory on the real ShareGPT pool.

    python benchmarks/bench_zip.py                 # every part (about 10 minutes on 2 cores)
    python benchmarks/bench_zip.py --part compare  # live vs recompress, side by side
    python benchmarks/bench_zip.py --part paper    # the paper's setting
    python benchmarks/bench_zip.py --part cost     # where one candidate's time goes
    python benchmarks/bench_zip.py --part long     # planted copies: repeats picked, by mode
    python benchmarks/bench_zip.py --part speed    # zlib against long-memory zstd, paper setting
    python benchmarks/bench_zip.py --part reach    # how far back zstd's dictionary is searched

Part "compare": 4,000 exchanges, budget 400, K1=1000, K2=100, K3=50, ``--serialize repr``,
all with the same number of worker processes and giving the same selection:
- reference: the official ZIP.py's way of computing, rewritten here: for every candidate
  the records ``D + [x]`` go to a ``multiprocessing.Pool``, which compresses
  ``str(D + [x])`` from scratch;
- entrosel's recompress evaluator: the same recompression from a shared byte buffer;
- entrosel's live compressor (the default).

Part "cost": the live evaluator's three steps for one candidate (copy the anchor's stream,
feed the candidate, flush), timed apart, for anchors of 0 to 400 records (``--serialize
repr``, candidates of 1,000-2,500 bytes). Flushing emits the anchor's whole pending deflate
block again for every candidate, which is why a candidate costs more than its own bytes.

Part "paper": every exchange of the pool (61,239), K1=10000, K2=200, K3=100, budget
10,000: wall time, time per round split into stage 2 and stage 3, and peak memory
(summed PSS of all processes) against the pool's size on disk.

Part "long": a pool of 6,000 exchanges, 4,000 drawn at random from the whole pool and
2,000 exact copies (new ids, same content) of random ones among them, shuffled in;
budget 800, K1=1000 K2=100 K3=50. For each mode: how many picks repeat the text of an
earlier pick, and the time; random selection with seeds 0-4 for comparison.

Part "speed": the paper setting with zlib (the paper's exact mode) and with long-memory
zstd, side by side, budgets 2,000 and 10,000, the same workers; then zstd's time per
round against the size of the selection (it should stay flat).

Part "reach": 50 exchanges of 0.8-3 KB planted at the far end of anchors of 1 to 32 MiB
of other exchanges; what a planted copy costs given the anchor (against its own size),
a fresh candidate's time and the digest's, by zstd level.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import tempfile
import zlib
import time
from pathlib import Path

import numpy as np

from entrosel import ZipSelector, render_text
from entrosel.engines import default_workers
from entrosel.pool import InputOptions, load_pool
from entrosel.scoring.anchored import keep_heap_warm
from entrosel.scoring.conditional import LongMemory
from entrosel.selection.by_score import random_subset

from _common import PeakMemory, sharegpt_pool


def run(pool: Path, strategy: str, workers: int, **params) -> tuple[ZipSelector, float]:
    sel = ZipSelector(workers=workers, strategy=strategy, progress=False, **params)
    t0 = time.perf_counter()
    sel.select(pool)
    return sel, time.perf_counter() - t0


def _ratio_of_records(records: list[dict]) -> float:
    s = str(records).encode("utf-8")
    return len(s) / len(zlib.compress(s, 9))


def reference_select(records: list[dict], budget: int, k1: int, k2: int, k3: int,
                     workers: int) -> list[int]:
    """ZIP as the official script computes it: every candidate's record list is shipped to a
    process pool and ``str()``-ed and compressed whole. float64 and the low-row tie rule as
    entrosel, so that the selections can be compared."""
    with mp.Pool(workers) as procs:
        scores = np.array(procs.map(_ratio_of_records, [[r] for r in records]))
        live = np.ones(len(records), dtype=bool)
        selected: list[int] = []
        while len(selected) < budget and live.any():
            alive = np.flatnonzero(live)
            cand = alive[np.argsort(scores[alive], kind="stable")[:k1]]
            chosen = [records[i] for i in selected]
            s2 = np.array(procs.map(_ratio_of_records, [chosen + [records[i]] for i in cand]))
            scores[cand] = s2
            batch = sorted(cand[np.lexsort((cand, s2))[:k2]].tolist())
            live[batch] = False
            picked: list[int] = []
            while batch and len(picked) < k3 and len(selected) + len(picked) < budget:
                anchor = [records[i] for i in picked]
                r3 = procs.map(_ratio_of_records, [anchor + [records[i]] for i in batch])
                picked.append(batch.pop(int(np.argmin(r3))))
            selected += picked
    return selected


def compare(folder: Path, workers: int) -> None:
    pool = sharegpt_pool(folder, limit=4000)
    params = dict(budget=400, k1=1000, k2=100, k3=50, serialize="repr")
    live, t_live = run(pool, "live", workers, **params)
    slow, t_slow = run(pool, "recompress", workers, **params)
    records = [json.loads(line) for line in open(pool, encoding="utf-8")]
    t0 = time.perf_counter()
    ref = reference_select(records, 400, 1000, 100, 50, workers)
    t_ref = time.perf_counter() - t0
    same = live.selected_ == slow.selected_ == ref
    print(f"\n## live compressor vs recompress-everything ({pool.name}, budget 400, "
          f"K1=1000 K2=100 K3=50, --serialize repr, {workers} workers)\n")
    print("| evaluator | seconds | live is faster by |")
    print("|---|---:|---:|")
    print(f"| reference: ZIP.py's way (records to a process pool, str() + compress) | {t_ref:.1f} | {t_ref / t_live:.1f}x |")
    print(f"| entrosel recompress evaluator (bytes from a shared buffer) | {t_slow:.1f} | {t_slow / t_live:.1f}x |")
    print(f"| entrosel live compressor | {t_live:.2f} | 1.0x |")
    r = live.round_timings_
    print(f"\nlive: stage 2 {sum(x.stage2_s for x in r):.2f} s, stage 3 {sum(x.stage3_s for x in r):.2f} s "
          f"over {len(r)} rounds; same selection in all three: {'yes' if same else 'NO'}")


def candidate_cost(folder: Path) -> None:
    pool_path = sharegpt_pool(folder, limit=4000)
    options = InputOptions(serialize="repr")
    keep_heap_warm()  # as the live evaluator does
    with load_pool(pool_path, options) as pool:
        items, framing = pool.items.open(), options.serialization.framing
        candidates = [i for i in range(len(items)) if 1000 <= len(items[i]) <= 2500][:200]
        print(f"\n## one candidate's cost in the live evaluator ({pool_path.name}, "
              f"{len(candidates)} candidates of 1,000-2,500 bytes, --serialize repr, "
              f"zlib {zlib.ZLIB_RUNTIME_VERSION})\n")
        print("| anchor records | anchor bytes | copy (us) | feed candidate (us) | flush (us) |")
        print("|---:|---:|---:|---:|---:|")
        for size in (0, 5, 20, 50, 100, 400):
            fed = framing.open + framing.sep.join(items[i] for i in range(2000, 2000 + size))
            stream = zlib.compressobj(9)
            stream.compress(fed)
            prefix = framing.sep if size else b""
            spent = np.zeros(3)
            for i in candidates:
                tail = prefix + items[i] + framing.close
                t0 = time.perf_counter()
                copy = stream.copy()
                t1 = time.perf_counter()
                copy.compress(tail)
                t2 = time.perf_counter()
                copy.flush()
                t3 = time.perf_counter()
                spent += (t1 - t0, t2 - t1, t3 - t2)
            us = spent / len(candidates) * 1e6
            print(f"| {size} | {len(fed):,} | {us[0]:.0f} | {us[1]:.0f} | {us[2]:.0f} |")


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


def planted_pool(folder: Path, originals: int = 4000, copies: int = 2000, seed: int = 0) -> Path:
    """``originals`` random exchanges plus ``copies`` exact copies (new ids) of random ones
    among them, shuffled together."""
    path = folder / f"planted-{originals}-{copies}-{seed}.jsonl"
    if not path.exists():
        rows = [json.loads(line) for line in open(sharegpt_pool(folder), encoding="utf-8")]
        rng = random.Random(seed)
        base = rng.sample(rows, originals)
        dup = [dict(r, id=f"{r['id']}-copy{k}") for k, r in enumerate(rng.choices(base, k=copies))]
        pool = base + dup
        rng.shuffle(pool)
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in pool), encoding="utf-8")
    return path


def repeats(texts: list[str], order: list[int]) -> int:
    """Picks whose text repeats an earlier pick's."""
    seen: set[str] = set()
    n = 0
    for i in order:
        n += texts[i] in seen
        seen.add(texts[i])
    return n


def long_memory(folder: Path, workers: int) -> None:
    pool = planted_pool(folder)
    texts = [render_text(json.loads(line)) for line in open(pool, encoding="utf-8")]
    params = dict(budget=800, k1=1000, k2=100, k3=50)
    print(f"\n## repeats picked on a pool with planted copies ({pool.name}: 4,000 exchanges + "
          f"2,000 exact copies; budget 800, K1=1000 K2=100 K3=50, {workers} workers)\n")
    print("| mode | repeats of content already picked | seconds |")
    print("|---|---:|---:|")
    for label, extra in [("`select zip --serialize repr` (the paper's exact computation)", dict(serialize="repr")),
                         ("`select zip` (text serialization)", {}),
                         ("`select zip --compressor zstd` (long memory)", dict(compressor="zstd")),
                         ("`select zip --compressor zstd --serialize repr`", dict(compressor="zstd", serialize="repr"))]:
        strategy = extra.pop("strategy", "auto")
        sel, seconds = run(pool, strategy, workers, **params, **extra)
        print(f"| {label} | {repeats(texts, sel.selected_)} of {len(sel.selected_)} | {seconds:.1f} |")
    counts = [repeats(texts, random_subset(len(texts), seed=s, budget=800).tolist()) for s in range(5)]
    print(f"| `select random` (seeds 0-4) | {np.mean(counts):.0f} of 800 ({min(counts)}-{max(counts)}) | - |")


def speed(folder: Path, workers: int, budgets: list[int]) -> None:
    pool = sharegpt_pool(folder)
    print(f"\n## zlib against long-memory zstd at the paper setting ({pool.name}, K1=10000 "
          f"K2=200 K3=100, {workers} workers, side by side)\n")
    print("| budget | zlib (s) | zstd (s) | zstd is faster by |")
    print("|---:|---:|---:|---:|")
    last = None
    for budget in budgets:
        _, t_zlib = run(pool, "auto", workers, budget=budget)
        last, t_zstd = run(pool, "auto", workers, budget=budget, compressor="zstd")
        print(f"| {budget:,} | {t_zlib:.1f} | {t_zstd:.1f} | {t_zlib / t_zstd:.1f}x |", flush=True)
    with load_pool(pool, InputOptions()) as loaded:
        sizes = loaded.sizes
        position = {int(i): p for p, i in enumerate(loaded.index)}
    held = np.cumsum([sizes[position[i]] for i in last.selected_])
    print(f"\nzstd, budget {budgets[-1]:,}: time per round against the selection's size\n")
    print("| round | selected before it | selection (MiB) | stage 2 (s) | stage 3 (s) |")
    print("|---:|---:|---:|---:|---:|")
    timings = last.round_timings_
    done = 0
    for r in timings:
        if r.round % max(1, len(timings) // 10) == 1 or r.round == len(timings):
            mib = held[done - 1] / 2**20 if done else 0.0
            print(f"| {r.round} | {done:,} | {mib:.2f} | {r.stage2_s:.2f} | {r.stage3_s:.2f} |")
        done += r.selected


def reach(folder: Path) -> None:
    rows = [json.loads(line) for line in open(sharegpt_pool(folder), encoding="utf-8")]
    texts = [render_text(r).encode() for r in rows]
    rng = random.Random(0)
    order = list(range(len(texts)))
    rng.shuffle(order)
    candidates = [texts[i] for i in order[:3000] if 800 <= len(texts[i]) <= 3000][:250]
    planted, fresh = candidates[:50], candidates[50:]
    rest = [texts[i] for i in order[5000:]]
    print(f"\n## how far back long memory reaches (50 planted exchanges of 0.8-3 KB at the far end "
          f"of the anchor; {len(fresh)} fresh candidates)\n")
    print("| level | anchor | a planted copy costs (B) | alone (B) | fresh candidate (us) | digest (s) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for level in (1, 3, 5, 9):
        memory = LongMemory(level)
        alone = np.mean([memory.size(x) for x in planted])
        for mib in (1, 4, 16, 32):
            anchor = bytearray(b"\n\n".join(planted))
            for t in rest:
                if len(anchor) >= mib << 20:
                    break
                anchor += b"\n\n" + t
            t0 = time.perf_counter()
            digested = memory.digest(bytes(anchor))
            t_digest = time.perf_counter() - t0
            t0 = time.process_time()
            digested.sizes(fresh)
            us = (time.process_time() - t0) / len(fresh) * 1e6
            found = np.mean(digested.sizes(planted))
            print(f"| {level} | {mib} MiB | {found:.0f} | {alone:.0f} | {us:.0f} | {t_digest:.2f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("compare", "paper", "cost", "long", "speed", "reach", "all"),
                    default="all")
    ap.add_argument("--workers", type=int, default=default_workers())
    ap.add_argument("--budget", type=int, default=10_000, help="paper part's budget")
    ap.add_argument("--budgets", default="2000,10000", help="speed part's budgets")
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "entrosel-bench")
    a = ap.parse_args()
    a.data.mkdir(parents=True, exist_ok=True)
    if a.part in ("compare", "all"):
        compare(a.data, a.workers)
    if a.part in ("paper", "all"):
        paper(a.data, a.workers, a.budget)
    if a.part in ("cost", "all"):
        candidate_cost(a.data)
    if a.part in ("long", "all"):
        long_memory(a.data, a.workers)
    if a.part in ("speed", "all"):
        speed(a.data, a.workers, [int(b) for b in a.budgets.split(",")])
    if a.part in ("reach", "all"):
        reach(a.data)


if __name__ == "__main__":
    main()
