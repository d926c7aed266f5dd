"""Do the papers' claims hold on real data at small scale? One reproducible experiment.

From ShareGPT exchanges (split by conversation into a pool and a held-out set), select
subsets holding the same number of tokens by: random (3 seeds), ZIP, the most redundant
samples (highest per-sample compression ratio: the anti-ZIP), information-content pruning
with the data probe, a perplexity band around the probe's median, and the longest samples.
Train the same small GPT-2 from scratch on each (same tokenizer, token count, seed and
schedule, one epoch) and report, per subset: R (the set's compression ratio), L (the mean
training loss of the first epoch), the held-out loss, and the selection time. A second
table prunes the pool to 100%, 80% and 60% by information content and at random.

    python benchmarks/entropy_law_experiment.py --quick        # < 5 min
    python benchmarks/entropy_law_experiment.py                # < 45 min, docs/RESULTS.md
    python benchmarks/entropy_law_experiment.py --out results/ --pool 8000 --budget 0.25

Writes OUT/results.md (tables, correlations), OUT/results.json and two scatter plots.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from entrosel import ZipSelector, compression_scores, measure_one, score_lm
from entrosel.commands.select import read_scores
from entrosel.formats.render import turns_text
from entrosel.io.records import Rejects
from entrosel.io.sharegpt import exchanges, sharegpt_records
from entrosel.io.writers import write_records
from entrosel.pool import InputOptions, rendered_records
from entrosel.probe.train import (evaluation_loss, pack_blocks, probe_size, train_model,
                                  train_tokenizer)
from entrosel.scoring.tokens import record_token_counts
from entrosel.selection import by_score


@dataclass(frozen=True)
class Config:
    pool: int = 5000          # exchanges to select from
    heldout: int = 400        # exchanges to evaluate on (other conversations)
    budget: float = 0.3       # each subset's tokens, as a fraction of the pool's
    size: str = "tiny"        # probe size (entrosel probe train --size)
    seed: int = 0             # split, training and the first random subset
    k1: int = 1000
    k2: int = 100
    k3: int = 50
    keeps: tuple[float, ...] = (1.0, 0.8, 0.6)


QUICK = Config(pool=500, heldout=80, k1=300, k2=50, k3=25)


# ---------------------------------------------------------------- data

def split_sharegpt(cfg: Config) -> tuple[list[dict], list[dict]]:
    """Held-out and pool exchanges from disjoint conversations, in a seeded order."""
    conversations = list(sharegpt_records("conversations"))
    random.Random(cfg.seed).shuffle(conversations)
    heldout: list[dict] = []
    pool: list[dict] = []
    for conversation in conversations:
        target = heldout if len(heldout) < cfg.heldout else pool
        target.extend(exchanges(conversation))
        if len(pool) >= cfg.pool:
            break
    return pool[: cfg.pool], heldout[: cfg.heldout]


def texts_of(path: Path) -> list[str]:
    options = InputOptions(None, "text")
    return [turns_text(turns) for _, turns in rendered_records(path, options, Rejects("raise"))]


# ---------------------------------------------------------------- training

@dataclass
class Trainer:
    """Trains the same GPT-2 (shared tokenizer, seed, schedule) on any list of texts."""
    tokenizer: Any
    size: str
    seed: int
    heldout_blocks: Any

    def run(self, texts: list[str], max_tokens: int | None = None,
            seed: int | None = None) -> dict[str, Any]:
        spec = probe_size(self.size)
        max_blocks = None if max_tokens is None else max(1, max_tokens // spec.context)
        blocks, _ = pack_blocks(texts, self.tokenizer, spec.context, max_blocks)
        t0 = time.perf_counter()
        model, metrics = train_model(blocks, self.tokenizer, spec, progress=False,
                                     seed=self.seed if seed is None else seed)
        return {"model": model, "trained_tokens": int(blocks.numel()), "L": metrics["first_epoch_loss"],
                "heldout_loss": evaluation_loss(model, self.heldout_blocks),
                "train_s": time.perf_counter() - t0}


# ---------------------------------------------------------------- statistics

def ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing their mean rank."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    r = np.empty(len(values))
    r[order] = np.arange(1, len(values) + 1)
    for v in np.unique(values):
        tied = values == v
        r[tied] = r[tied].mean()
    return r


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.corrcoef(ranks(x), ranks(y))[0, 1])


# ---------------------------------------------------------------- the experiment

def run(cfg: Config, out: Path, log: Callable[[str], None]) -> dict[str, Any]:
    t_start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    pool_records, heldout_records = split_sharegpt(cfg)
    pool_path, heldout_path = out / "pool.jsonl", out / "heldout.jsonl"
    write_records(pool_records, pool_path)
    write_records(heldout_records, heldout_path)
    pool_texts = texts_of(pool_path)

    spec = probe_size(cfg.size)
    tokenizer = train_tokenizer(pool_texts, spec.vocab_size)
    tokenizer_dir = out / "tokenizer"
    tokenizer.save_pretrained(tokenizer_dir)
    tokens = record_token_counts(pool_path, None, str(tokenizer_dir), InputOptions(None, "text"))
    budget = int(cfg.budget * tokens.sum())
    heldout_blocks, heldout_tokens = pack_blocks(texts_of(heldout_path), tokenizer, spec.context)
    trainer = Trainer(tokenizer, cfg.size, cfg.seed, heldout_blocks)
    log(f"pool {len(pool_records)} exchanges, {tokens.sum()} tokens; held-out {len(heldout_records)} "
        f"exchanges, {heldout_tokens} tokens; budget {budget} tokens per subset")

    # the data probe: the same model trained on the whole pool (also the 100% pruning row)
    t0 = time.perf_counter()
    full = trainer.run(pool_texts)
    probe_dir = out / "probe"
    full.pop("model").save_pretrained(probe_dir)
    tokenizer.save_pretrained(probe_dir)
    probe_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    scores_path = out / "probe-scores.jsonl"
    score_lm(pool_path, scores_path, model=str(probe_dir), device="cpu", max_length=spec.context,
             progress=False)
    index, info, _ = read_scores(scores_path, "info")
    _, perplexity, _ = read_scores(scores_path, "perplexity")
    assert (index == np.arange(len(pool_records))).all()
    scoring_s = time.perf_counter() - t0
    log(f"probe trained on the pool in {probe_s:.0f} s (held-out loss {full['heldout_loss']:.3f}), "
        f"scored in {scoring_s:.0f} s")

    budgets = dict(budget_tokens=budget, tokens=tokens)

    def zip_selection() -> np.ndarray:
        selector = ZipSelector(budget_tokens=budget, tokenizer=str(tokenizer_dir), k1=cfg.k1, k2=cfg.k2,
                               k3=cfg.k3, progress=False)
        return np.asarray(selector.select(pool_path))

    def anti_zip() -> np.ndarray:
        return by_score.top_k(compression_scores(pool_texts), largest=True, **budgets)

    def perplexity_band() -> np.ndarray:
        # CCNet's middle band, widened around the median perplexity until it holds the budget
        distance = np.abs(ranks(perplexity) - (len(perplexity) + 1) / 2)
        return np.sort(by_score.top_k(distance, largest=False, **budgets))

    methods: list[tuple[str, Callable[[], np.ndarray], float]] = [
        *[(f"random (seed {s})", lambda s=s: by_score.random_subset(len(tokens), seed=s, **budgets), 0.0)
          for s in (cfg.seed, cfg.seed + 1, cfg.seed + 2)],
        ("ZIP", zip_selection, 0.0),
        ("highest ratio (anti-ZIP)", anti_zip, 0.0),
        ("information pruning", lambda: by_score.prune(info, **budgets), probe_s + scoring_s),
        ("perplexity band (median)", perplexity_band, probe_s + scoring_s),
        ("longest", lambda: by_score.top_k(tokens, largest=True, **budgets), 0.0),
    ]
    rows = []
    for name, select, probe_cost in methods:
        t0 = time.perf_counter()
        chosen = select()
        selection_s = time.perf_counter() - t0 + probe_cost
        row = subset_row(name, chosen, pool_records, pool_texts, tokens, trainer, budget)
        row["selection_s"] = selection_s
        rows.append(row)
        log(_line(row))

    # training-seed noise: the first random subset again, with two other training seeds
    first = by_score.random_subset(len(tokens), seed=cfg.seed, **budgets)
    retrained = [rows[0]["heldout_loss"]]
    for seed in (cfg.seed + 1, cfg.seed + 2):
        retrained.append(trainer.run([pool_texts[i] for i in first], budget, seed=seed)["heldout_loss"])
    log(f"random (seed {cfg.seed}) subset, training seeds {cfg.seed}..{cfg.seed + 2}: held-out "
        + ", ".join(f"{v:.4f}" for v in retrained))

    pruning = [{"keep": 1.0, "method": "all (no pruning)", "records": len(pool_records),
                "tokens": int(tokens.sum()), "R": measure_one(pool_records)["compression_ratio"], **full}]
    for keep in (k for k in cfg.keeps if k < 1.0):
        for how in ("information", "random"):
            chosen = (by_score.prune(info, keep=keep) if how == "information"
                      else by_score.random_subset(len(tokens), seed=cfg.seed, keep=keep))
            row = subset_row(how, chosen, pool_records, pool_texts, tokens, trainer, None)
            pruning.append({"keep": keep, **row})
    for row in pruning:
        log(f"keep {row['keep']:.0%} " + _line(row))

    result = {"config": asdict(cfg), "pool_tokens": int(tokens.sum()), "heldout_tokens": heldout_tokens,
              "budget_tokens": budget, "probe_seconds": probe_s, "scoring_seconds": scoring_s,
              "subsets": rows, "training_seed_heldout": retrained, "pruning": pruning,
              "seconds": time.perf_counter() - t_start}
    result["correlations"] = correlations(rows)
    (out / "results.json").write_text(json.dumps(result, indent=1) + "\n")
    plot(rows, out)
    (out / "results.md").write_text(markdown(result))
    return result


def subset_row(name: str, chosen: np.ndarray, records: list[dict], texts: list[str],
               tokens: np.ndarray, trainer: Trainer, budget: int | None) -> dict[str, Any]:
    chosen = [int(i) for i in chosen]
    r = measure_one([records[i] for i in chosen])["compression_ratio"]
    trained = trainer.run([texts[i] for i in chosen], budget)
    trained.pop("model")
    return {"method": name, "records": len(chosen), "tokens": int(tokens[chosen].sum()), "R": r,
            **trained}


def _line(row: dict[str, Any]) -> str:
    return (f"{row['method']}: {row['records']} records, {row['tokens']} tokens, R {row.get('R', 0):.3f}, "
            f"L {row['L']:.3f}, held-out {row['heldout_loss']:.3f}, train {row['train_s']:.0f} s")


def correlations(rows: list[dict[str, Any]]) -> dict[str, float]:
    held = np.array([r["heldout_loss"] for r in rows])
    return {"spearman_heldout_R": spearman(held, np.array([r["R"] for r in rows])),
            "spearman_heldout_L": spearman(held, np.array([r["L"] for r in rows]))}


def seed_spread(rows: list[dict[str, Any]]) -> dict[str, float]:
    held = np.array([r["heldout_loss"] for r in rows if r["method"].startswith("random")])
    return spread(held)


def spread(values: list[float] | np.ndarray) -> dict[str, float]:
    values = np.asarray(values, dtype=np.float64)
    return {"mean": float(values.mean()), "std": float(values.std(ddof=1)), "range": float(np.ptp(values))}


# ---------------------------------------------------------------- output

def plot(rows: list[dict[str, Any]], out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for key, label, name in (("R", "compression ratio R of the subset", "heldout_vs_R.png"),
                             ("L", "first-epoch training loss L", "heldout_vs_L.png")):
        fig, ax = plt.subplots(figsize=(6, 4.2), dpi=110)
        for row in rows:
            colour = "tab:gray" if row["method"].startswith("random") else None
            ax.scatter(row[key], row["heldout_loss"], color=colour, s=36)
            ax.annotate(row["method"], (row[key], row["heldout_loss"]), fontsize=7,
                        xytext=(4, 3), textcoords="offset points")
        ax.set_xlabel(label)
        ax.set_ylabel("held-out loss (nats/token)")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / name)
        plt.close(fig)


def markdown(result: dict[str, Any]) -> str:
    cfg = result["config"]
    lines = [f"Pool: {cfg['pool']} ShareGPT exchanges ({result['pool_tokens']:,} tokens); held-out: "
             f"{cfg['heldout']} exchanges from other conversations ({result['heldout_tokens']:,} tokens). "
             f"Every subset holds >= {result['budget_tokens']:,} tokens ({cfg['budget']:.0%} of the pool) and "
             f"its model trains on exactly the first {result['subsets'][0]['trained_tokens']:,} of them. "
             f"Model: GPT-2 `{cfg['size']}` from scratch, one epoch, seed {cfg['seed']}. "
             f"ZIP: K1={cfg['k1']} K2={cfg['k2']} K3={cfg['k3']}.", "",
             "| method | records | tokens | R | L | held-out loss | selection s |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in result["subsets"]:
        lines.append(f"| {r['method']} | {r['records']:,} | {r['tokens']:,} | {r['R']:.3f} | {r['L']:.4f} | "
                     f"{r['heldout_loss']:.4f} | {r['selection_s']:.1f} |")
    data_noise = seed_spread(result["subsets"])
    training_noise = spread(result["training_seed_heldout"])
    c = result["correlations"]
    lines += ["", f"Information pruning and the perplexity band include training the probe on the pool "
              f"({result['probe_seconds']:.0f} s) and scoring it ({result['scoring_seconds']:.0f} s).", "",
              f"Noise. Three random subsets (selection seeds): held-out loss mean {data_noise['mean']:.4f}, "
              f"sample std {data_noise['std']:.4f}, range {data_noise['range']:.4f}. The first random subset "
              f"trained with three training seeds: mean {training_noise['mean']:.4f}, sample std "
              f"{training_noise['std']:.4f}, range {training_noise['range']:.4f}.",
              f"Spearman over the {len(result['subsets'])} subsets: held-out loss vs R "
              f"{c['spearman_heldout_R']:+.2f}, held-out loss vs L {c['spearman_heldout_L']:+.2f}.", "",
              "Pruning (keep a fraction of the pool's records; trained on all that is kept):", "",
              "| keep | method | records | tokens | R | L | held-out loss |", "|---:|---|---:|---:|---:|---:|---:|"]
    for r in result["pruning"]:
        lines.append(f"| {r['keep']:.0%} | {r['method']} | {r['records']:,} | {r['tokens']:,} | {r['R']:.3f} | "
                     f"{r['L']:.4f} | {r['heldout_loss']:.4f} |")
    lines += ["", "![held-out loss against R](heldout_vs_R.png)", "",
              "![held-out loss against L](heldout_vs_L.png)", "",
              f"Total time: {result['seconds'] / 60:.1f} min.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a small pool: under 5 minutes")
    parser.add_argument("--out", type=Path, default=Path("experiment-results"))
    for name in ("pool", "heldout", "k1", "k2", "k3", "seed"):
        parser.add_argument(f"--{name}", type=int)
    parser.add_argument("--budget", type=float, help="fraction of the pool's tokens per subset")
    parser.add_argument("--size", choices=["tiny", "small", "base"])
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else Config()
    changes = {k: v for k, v in vars(args).items() if k not in ("quick", "out") and v is not None}
    cfg = Config(**(asdict(cfg) | changes))
    t0 = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - t0:6.0f} s] {message}", file=sys.stderr, flush=True)

    result = run(cfg, args.out, log)
    print((args.out / "results.md").read_text())
    log(f"done in {result['seconds'] / 60:.1f} min; results in {args.out}/")


if __name__ == "__main__":
    main()
