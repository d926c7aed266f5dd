"""Statistics that tell a selection method from noise (NumPy only).

- :func:`rank_p`: where a method's value falls among the values of random draws (the null
  distribution), as an empirical p-value with the +1 correction; with ``n`` draws it can go no
  lower than ``1 / (n + 1)`` one-sided.
- :func:`prediction_p`: the same question under a normal null: Student's t of the method
  against the draws' mean, scaled for a new draw (``s * sqrt(1 + 1/n)``), ``n - 1`` degrees of
  freedom; it can go below ``1 / (n + 1)`` but assumes the draws are normal.
- :func:`holm`: Holm's step-down adjustment of p-values for several methods at once.
- :func:`paired_bootstrap`: an interval for a mean difference over evaluation examples, each
  example resampled with its pair (every model is measured on the same examples).
- :func:`law_fit`: the entropy law's fit ``Z = a + b R + c L`` with its leave-one-out error.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

SIDES = ("two-sided", "less", "greater")


def rank_p(value: float, draws: Sequence[float], side: str = "two-sided") -> float:
    """Empirical p of ``value`` among ``draws``: ``less`` is (1 + #draws <= value) / (n + 1),
    the chance that a random draw is at least as low; ``greater`` mirrors it; ``two-sided`` is
    twice the smaller, at most 1."""
    x = np.asarray(draws, dtype=float)
    if x.size == 0:
        raise ValueError("no random draws to rank against")
    low = (1 + np.sum(x <= value)) / (x.size + 1)
    high = (1 + np.sum(x >= value)) / (x.size + 1)
    return float({"less": low, "greater": high, "two-sided": min(1.0, 2 * min(low, high))}[side])


def rank_among(value: float, draws: Sequence[float]) -> int:
    """1 + how many draws lie strictly below ``value`` (1: lowest of all)."""
    return 1 + int(np.sum(np.asarray(draws, dtype=float) < value))


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (Lentz's method)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """Student's t distribution function."""
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return tail if t < 0 else 1.0 - tail


def prediction_p(value: float, draws: Sequence[float], side: str = "two-sided") -> float:
    """p of ``value`` as a new draw from the normal the ``draws`` come from: t = (value -
    mean) / (s sqrt(1 + 1/n)), n - 1 degrees of freedom (``less``: the chance of a draw this
    low or lower)."""
    x = np.asarray(draws, dtype=float)
    if x.size < 2:
        raise ValueError("a prediction interval needs at least two random draws")
    s = float(np.std(x, ddof=1))
    if s == 0.0:
        raise ValueError("the random draws do not vary: no spread to compare with")
    t = (value - float(x.mean())) / (s * math.sqrt(1 + 1 / x.size))
    low = t_cdf(t, x.size - 1)
    return float({"less": low, "greater": 1.0 - low, "two-sided": min(1.0, 2 * min(low, 1.0 - low))}[side])


def holm(p: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given: the k-th smallest is multiplied
    by (m - k + 1), made non-decreasing along that order, capped at 1."""
    p = np.asarray(p, dtype=float)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty_like(p)
    running = 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (p.size - k) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def paired_bootstrap(a: Sequence[float], b: Sequence[float], *, weights: Sequence[float] | None = None,
                     resamples: int = 2000, level: float = 0.95, seed: int = 0) -> dict[str, float]:
    """Interval for ``mean(a) - mean(b)`` over the same evaluation examples, resampling the
    examples (pairs) with replacement. With ``weights`` (e.g. tokens per example) the means
    are weighted (a loss per token: sum(nll) / sum(tokens) when a, b are per-token losses
    weighted by their tokens). Returns ``diff``, ``low``, ``high`` (percentile interval)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.size == 0:
        raise ValueError("paired_bootstrap needs two equally long, non-empty arrays")
    w = np.ones_like(a) if weights is None else np.asarray(weights, dtype=float)
    d = a - b
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(resamples, d.size))
    stats = (d[idx] * w[idx]).sum(axis=1) / w[idx].sum(axis=1)
    alpha = (1 - level) / 2
    return {"diff": float((d * w).sum() / w.sum()), "low": float(np.quantile(stats, alpha)),
            "high": float(np.quantile(stats, 1 - alpha))}


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho (ranks by order of appearance on ties)."""
    def rank(v):
        return np.argsort(np.argsort(np.asarray(v, dtype=float), kind="stable"), kind="stable")
    return float(np.corrcoef(rank(x), rank(y))[0, 1])


def law_fit(R: Sequence[float], L: Sequence[float], Z: Sequence[float]) -> dict[str, float]:
    """Least squares ``Z = a + b R + c L``; RMSE in sample, RMSE leaving each point out in
    turn (each left-out point predicted by the fit of the others), and the std of Z (what a
    constant predicts, for scale)."""
    X = np.column_stack([np.ones(len(R)), np.asarray(R, dtype=float), np.asarray(L, dtype=float)])
    z = np.asarray(Z, dtype=float)
    if z.size < 5:
        raise ValueError("the law's fit with leave-one-out needs at least 5 points")
    coef = np.linalg.lstsq(X, z, rcond=None)[0]
    loo = [z[i] - X[i] @ np.linalg.lstsq(np.delete(X, i, 0), np.delete(z, i), rcond=None)[0]
           for i in range(z.size)]
    return {"a": float(coef[0]), "b": float(coef[1]), "c": float(coef[2]), "points": int(z.size),
            "rmse": float(np.sqrt(np.mean((X @ coef - z) ** 2))),
            "loo_rmse": float(np.sqrt(np.mean(np.square(loo)))), "std_Z": float(np.std(z))}
