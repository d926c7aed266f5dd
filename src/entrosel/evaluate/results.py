"""From runs to results: means and spreads over seeds, the baseline comparison, the table
and the CSV rows (:func:`entrosel.evaluate.report.write_outputs` writes the files).

Per subset: the mean over seeds of every measure and its sample standard deviation (null
with one seed). The first subset is the baseline; every other row says how far its mean
eval loss (and accuracy) lies from the baseline's and whether that is more than twice the
seed spread, the larger of the two rows' standard deviations.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from entrosel.evaluate.data import ChoiceSet

MEASURES = ("eval_loss", "eval_acc", "eval_acc_norm", "eval_rank_acc")


def _std(values: list[float]) -> float | None:
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


def _with_mean(values: dict[str, float], over: list[str] | None = None) -> dict[str, float]:
    if not values:
        return {}
    keys = [k for k in (over or values) if k in values] or list(values)
    return {**values, "mean": float(np.mean([values[k] for k in keys]))}


def _per_seed(run: dict[str, Any], names: list[str], choice: list[str]) -> dict[str, Any]:
    ev = run["eval"]
    # the mean loss is over the loss sets: a multiple-choice set's loss (of its right
    # answers) is reported on its own and counts in the mean only when no loss set is given
    text = [n for n in names if n not in choice]
    return {"seed": run["seed"], "L": run["L"],
            "eval_loss": _with_mean({n: ev[n]["loss"] for n in names}, text),
            "eval_acc": _with_mean({n: ev[n]["acc"] for n in choice}),
            "eval_acc_norm": _with_mean({n: ev[n]["acc_norm"] for n in choice}),
            "eval_rank_acc": _with_mean({n: ev[n]["rank_acc"] for n in names if "rank_acc" in ev[n]}),
            "steps": run["steps"], "trained_tokens": run["trained_tokens"],
            "supervised_tokens": run.get("supervised_tokens"), "seconds": run["seconds"],
            "tokens_per_s": run["tokens_per_s"], "losses": run["losses"],
            # per evaluation example (for intervals over examples): losses, choices right, ranks won
            "detail": {n: {k: ev[n][k] for k in ("per_record", "correct", "rank_wins") if k in ev[n]}
                       for n in names}}


def _compare(row: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"baseline": base["subset"]}
    for measure in ("eval_loss", "eval_acc", "eval_rank_acc"):
        if "mean" not in row[measure] or "mean" not in base[measure]:
            continue
        diff = row[measure]["mean"] - base[measure]["mean"]
        stds = (row[f"{measure}_std"].get("mean"), base[f"{measure}_std"].get("mean"))
        spread = None if None in stds else max(stds)
        out[measure] = diff
        out[f"{measure}_spread"] = spread
        out[f"{measure}_beyond_2x_spread"] = None if spread is None else bool(abs(diff) > 2 * spread)
    return out


def summarise(rows: list[dict[str, Any]], eval_sets: list, eval_names: list[str], *,
              options: dict[str, Any], tokenizer: str) -> dict[str, Any]:
    """``rows``: per subset its fields and ``runs`` (one stored run per seed)."""
    choice = [n for e, n in zip(eval_sets, eval_names) if isinstance(e, ChoiceSet)]
    subsets = []
    for row in rows:
        seeds = [_per_seed(run, eval_names, choice) for run in row["runs"]]
        out = {k: v for k, v in row.items() if k != "runs"}
        out["trained_tokens"] = seeds[0]["trained_tokens"]
        out["supervised_tokens"] = seeds[0]["supervised_tokens"]
        out["L"] = float(np.mean([s["L"] for s in seeds]))
        out["L_std"] = _std([s["L"] for s in seeds])
        for measure in MEASURES:
            keys = seeds[0][measure].keys()
            out[measure] = {k: float(np.mean([s[measure][k] for s in seeds])) for k in keys}
            out[f"{measure}_std"] = {k: _std([s[measure][k] for s in seeds]) for k in keys}
        out["seconds"] = float(sum(s["seconds"] for s in seeds))
        out["tokens_per_s"] = float(np.mean([s["tokens_per_s"] for s in seeds]))
        out["seeds"] = seeds
        subsets.append(out)
    for row in subsets[1:]:
        row["vs_baseline"] = _compare(row, subsets[0])
    evals = [{"name": n, "path": e.path, "kind": "choice" if isinstance(e, ChoiceSet) else "text",
              "records": len(e), "sha256": e.sha256} for e, n in zip(eval_sets, eval_names)]
    return {"baseline": subsets[0]["subset"], "options": options, "tokenizer": tokenizer,
            "evals": evals, "subsets": subsets}


def _num(x: float | None, digits: int = 4) -> str:
    return "" if x is None else f"{x:.{digits}f}"


def _signed(x: float | None) -> str:
    return "" if x is None else f"{x:+.4f}"


TABLE = ("subset", "records", "tokens", "R", "L", "eval_loss", "±std", "vs base", ">2 spread",
         "acc", "rank_acc", "seconds")


def table_rows(results: dict[str, Any]) -> list[list[str]]:
    """The summary table's cells, one list per subset (header: :data:`TABLE`)."""
    out = []
    for row in results["subsets"]:
        cmp = row.get("vs_baseline", {})
        beyond = cmp.get("eval_loss_beyond_2x_spread")
        out.append([row["subset"], f"{row['records']:,}", f"{row['tokens']:,}", _num(row["R"], 3), _num(row["L"]),
                    _num(row["eval_loss"]["mean"]), _num(row["eval_loss_std"]["mean"]),
                    "baseline" if not cmp else _signed(cmp.get("eval_loss")),
                    "" if beyond is None else ("yes" if beyond else "no"),
                    _num(row["eval_acc"].get("mean"), 3), _num(row["eval_rank_acc"].get("mean"), 3),
                    f"{row['seconds']:.0f}"])
    return out


def format_table(results: dict[str, Any]) -> str:
    """The summary as aligned text (the CLI prints it) ."""
    cells = [list(TABLE)] + table_rows(results)
    widths = [max(len(r[i]) for r in cells) for i in range(len(TABLE))]
    return "\n".join("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
                     for r in cells)


def csv_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One flat row per subset: every mean and spread, each eval set's own columns."""
    out = []
    for row in results["subsets"]:
        flat: dict[str, Any] = {k: row[k] for k in ("subset", "path", "records", "tokens", "trained_tokens",
                                                     "R", "L", "L_std")}
        for measure in MEASURES:
            for k, v in row[measure].items():
                flat[f"{measure}[{k}]"] = v
                flat[f"{measure}_std[{k}]"] = row[f"{measure}_std"][k]
        for k, v in row.get("vs_baseline", {}).items():
            flat[f"vs_baseline.{k}"] = v
        flat["seconds"] = row["seconds"]
        flat["tokens_per_s"] = row["tokens_per_s"]
        out.append(flat)
    return out
