"""``report.html`` of ``evaluate``: the table and four plots, one self-contained page.

Plots: mean eval loss per subset with the seed spread as error bars; eval loss against R
and against L (the entropy law's two measures); the training loss curves (mean over seeds,
smoothed).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from entrosel.evaluate.results import TABLE, csv_rows, table_rows
from entrosel.io.atomic import atomic_path
from entrosel.report.selection import html_page, png, pyplot


def _smooth(values: list[float], width: int) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2 or width < 2:
        return v
    kernel = np.ones(min(width, len(v))) / min(width, len(v))
    return np.convolve(v, kernel, mode="valid")


def figures(results: dict[str, Any]) -> dict[str, bytes]:
    """PNG bytes by name: ``eval_loss``, ``loss_vs_R``, ``loss_vs_L``, ``training_curves``."""
    plt = pyplot("evaluate's report")
    rows = results["subsets"]
    names = [r["subset"] for r in rows]
    means = [r["eval_loss"]["mean"] for r in rows]
    stds = [r["eval_loss_std"]["mean"] or 0.0 for r in rows]
    colours = ["tab:gray"] + ["tab:blue"] * (len(rows) - 1)
    out: dict[str, bytes] = {}

    fig, ax = plt.subplots(figsize=(max(4.5, 1.1 * len(rows) + 2), 3.8))
    x = np.arange(len(rows))
    ax.bar(x, means, yerr=stds, capsize=5, color=colours)
    ax.set_xticks(x, names, rotation=20, ha="right")
    low = min(m - s for m, s in zip(means, stds))
    high = max(m + s for m, s in zip(means, stds))
    pad = max(0.05, 0.15 * (high - low))
    ax.set_ylim(low - pad, high + pad)
    ax.set_ylabel("eval loss (nats/token), mean over sets")
    ax.set_title(f"eval loss per subset (error bars: seed std, {len(results['options']['seeds'])} seeds)")
    out["eval_loss"] = png(fig)

    for var, label in (("R", "compression ratio R of the subset"), ("L", "first-pass training loss L")):
        fig, ax = plt.subplots(figsize=(4.8, 3.8))
        xs = [r[var] for r in rows]
        xerr = [r["L_std"] or 0.0 for r in rows] if var == "L" else None
        ax.errorbar(xs, means, yerr=stds, xerr=xerr, fmt="none", ecolor="gray", capsize=3)
        ax.scatter(xs, means, c=colours, zorder=3)
        for name, xv, yv in zip(names, xs, means):
            ax.annotate(name, (xv, yv), fontsize=8, xytext=(4, 3), textcoords="offset points")
        ax.set_xlabel(label)
        ax.set_ylabel("eval loss (nats/token)")
        ax.set_title(f"eval loss against {var}")
        ax.grid(alpha=0.3)
        out[f"loss_vs_{var}"] = png(fig)

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for row in rows:
        curves = [s["losses"] for s in row["seeds"]]
        length = min(len(c) for c in curves)
        mean = np.mean([c[:length] for c in curves], axis=0)
        smooth = _smooth(list(mean), max(1, length // 25))
        ax.plot(np.arange(len(smooth)) + (length - len(smooth)) / 2, smooth, label=row["subset"])
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (smoothed)")
    ax.set_title("training curves (mean over seeds)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    out["training_curves"] = png(fig)
    return out


def write_evaluation_report(results: dict[str, Any], output: str | Path) -> Path:
    o = results["options"]
    model = o["model"] or f"GPT-2 {o['size']} from scratch"
    work = f"{o['tokens']:,} tokens" if o["tokens"] else f"{o['epochs'] or 1} epoch(s)"
    evals = ", ".join(f"{e['name']} ({e['kind']}, {e['records']:,} records)" for e in results["evals"])
    intro = (f"Model: {model}; each run trains on {work}, target {o['target']}, context {o['context']}, "
             f"learning rate {o['learning_rate']:g}, batch {o['batch_size']}, seeds "
             f"{', '.join(map(str, o['seeds']))}. Tokenizer: {results['tokenizer']}. Held-out: {evals}. "
             f"Baseline: {results['baseline']}; '>2 spread' says whether its difference from the baseline "
             "exceeds twice the seed spread.")
    return html_page(output, "entrosel: which subset trains the better model?", intro,
                     list(TABLE), table_rows(results), figures(results))


def write_outputs(results: dict[str, Any], output: Path) -> None:
    """``results.json``, ``results.csv`` and ``report.html`` in ``output``, each atomically."""
    with atomic_path(output / "results.json") as tmp:
        tmp.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    rows = csv_rows(results)
    header = list(dict.fromkeys(k for r in rows for k in r))
    with atomic_path(output / "results.csv") as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, header)
        writer.writeheader()
        writer.writerows(rows)
    write_evaluation_report(results, output / "report.html")
