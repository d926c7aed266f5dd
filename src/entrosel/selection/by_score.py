"""Selectors over one score per sample: prune, top-k, percentile band, random.

Each takes the scores (and, for token budgets, each sample's token count) and returns
positions in selection order; nothing else. Ties go to the lower position.

- :func:`prune`: drop the lowest-scoring samples first (Kim & Baek: the least informative),
  keep the rest in input order.
- :func:`top_k`: the highest (or lowest) scores, ranked.
- :func:`band`: samples whose score lies in a percentile band (CCNet's head/middle/tail),
  in input order.
- :func:`random_subset`: a seeded uniform sample, in the order drawn.
"""
from __future__ import annotations

import numpy as np

from entrosel.errors import InputError


def budget_size(n: int, *, keep: float | None = None, budget: int | None = None) -> int:
    """How many of ``n`` samples a ``keep`` fraction or a ``budget`` count means."""
    if (keep is None) == (budget is None):
        raise InputError("give one of --keep FRACTION or --budget N (or --budget-tokens N)")
    if keep is not None:
        if not 0.0 <= keep <= 1.0:
            raise InputError(f"--keep must be a fraction in [0, 1], not {keep}")
        return int(round(keep * n))
    if budget < 0:
        raise InputError(f"--budget must be >= 0, not {budget}")
    return min(budget, n)


def _ranked(scores: np.ndarray, largest: bool) -> np.ndarray:
    """Positions from best to worst; stable, so ties keep the lower position first."""
    scores = np.asarray(scores, dtype=np.float64)
    if np.isnan(scores).any():
        raise InputError(f"{int(np.isnan(scores).sum())} scores are missing (NaN); score every "
                         "record or filter them out first")
    return np.argsort(-scores if largest else scores, kind="stable")


def _take(order: np.ndarray, *, keep: float | None, budget: int | None,
          budget_tokens: int | None, tokens: np.ndarray | None) -> np.ndarray:
    if budget_tokens is not None:
        if keep is not None or budget is not None:
            raise InputError("give only one of --keep, --budget, --budget-tokens")
        if tokens is None:
            raise InputError("--budget-tokens needs token counts: a 'tokens' column in the "
                             "scores or --tokenizer")
        held = np.cumsum(np.asarray(tokens, dtype=np.int64)[order])
        # stop as soon as the selection holds >= budget_tokens tokens
        return order[: int(np.searchsorted(held, budget_tokens, side="left")) + 1]
    return order[: budget_size(len(order), keep=keep, budget=budget)]


def prune(scores: np.ndarray, *, keep: float | None = None, budget: int | None = None,
          budget_tokens: int | None = None, tokens: np.ndarray | None = None,
          drop: str = "lowest") -> np.ndarray:
    """Keep the samples that survive pruning the ``drop`` end first; input order."""
    if drop not in ("lowest", "highest"):
        raise InputError(f"drop must be 'lowest' or 'highest', not {drop!r}")
    order = _ranked(scores, largest=(drop == "lowest"))
    kept = _take(order, keep=keep, budget=budget, budget_tokens=budget_tokens, tokens=tokens)
    return np.sort(kept)


def top_k(scores: np.ndarray, *, keep: float | None = None, budget: int | None = None,
          budget_tokens: int | None = None, tokens: np.ndarray | None = None,
          largest: bool = True) -> np.ndarray:
    """The best-scoring samples, best first."""
    return _take(_ranked(scores, largest), keep=keep, budget=budget,
                 budget_tokens=budget_tokens, tokens=tokens)


def band(scores: np.ndarray, low: float, high: float) -> np.ndarray:
    """Samples whose score lies between the ``low`` and ``high`` percentiles of all scores
    (``low`` inclusive, ``high`` exclusive unless it is 100); input order."""
    if not 0.0 <= low < high <= 100.0:
        raise InputError(f"need 0 <= --low < --high <= 100, not {low} and {high}")
    scores = np.asarray(scores, dtype=np.float64)
    _ranked(scores, True)  # refuses missing scores
    lo, hi = np.percentile(scores, [low, high])
    inside = (scores >= lo) & ((scores < hi) if high < 100.0 else (scores <= hi))
    return np.flatnonzero(inside)


def random_subset(n: int, *, seed: int = 0, keep: float | None = None, budget: int | None = None,
                  budget_tokens: int | None = None, tokens: np.ndarray | None = None) -> np.ndarray:
    """A uniform sample without replacement, reproducible for a seed, in the order drawn."""
    order = np.random.default_rng(seed).permutation(n)
    return _take(order, keep=keep, budget=budget, budget_tokens=budget_tokens, tokens=tokens)
