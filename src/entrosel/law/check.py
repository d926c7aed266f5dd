"""Judge a data version against the ones before it (the entropy law's early warning).

The rule, with k = ``sigma`` (default 2) and the earlier versions' values X:

    spread(X) = max(sample standard deviation of X, 5% of |mean(X)|)
    R is flagged when R_new > mean(R_earlier) + k * spread(R_earlier)   (more redundant)
    L is flagged when L_new < mean(L_earlier) - k * spread(L_earlier)   (mastered already)

The 5% floor keeps small histories from flagging noise: independent samples of one real
pool differ in R by a few percent. With three or
more earlier versions that have a score Z (and R and L), Z = a + b*R + c*L is fitted by
least squares and the new version's Z predicted; its error is Z - prediction when the
version has a score, and the fit's RMSE is given as its uncertainty.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from entrosel.errors import InputError
from entrosel.law.history import Version
from entrosel.params import Param, check_params

# The smallest spread assumed, as a fraction of the mean: independent random halves of one
# real pool differ in R by a few percent, which is no risk.
FLOOR = 0.05


@dataclass
class Fit:
    a: float
    b: float
    c: float
    rmse: float
    versions: int
    predicted: float
    error: float | None


@dataclass
class Verdict:
    version: str
    flags: list[str] = field(default_factory=list)
    fit: Fit | None = None
    earlier: int = 0
    R_limit: float | None = None   # R above this is flagged (None: no earlier version)
    L_floor: float | None = None   # L below this is flagged (None: no earlier L, or no L)

    @property
    def risky(self) -> bool:
        return bool(self.flags)


def spread(values: np.ndarray) -> float:
    sd = float(np.std(values, ddof=1)) if len(values) >= 2 else 0.0
    return max(sd, FLOOR * abs(float(np.mean(values))))


def check_sigma(sigma: float) -> None:
    """``sigma`` (k in the rule) is a number > 0: at 0 any rise is a risk, below it none is."""
    check_params({"sigma": sigma}, {"sigma": Param(float, low=0, low_open=True, required=True)})


def check_version(versions: list[Version], name: str | None = None, sigma: float = 2.0) -> Verdict:
    """Judge version ``name`` (default: the last one) against the versions before it."""
    check_sigma(sigma)
    if not versions:
        raise InputError("the history holds no versions; add one with `entrosel law track`")
    names = [v.name for v in versions]
    if name is None:
        position = len(versions) - 1
    elif name in names:
        position = len(names) - 1 - names[::-1].index(name)
    else:
        raise InputError(f"no version named {name!r} (versions: {', '.join(names)})")
    new, earlier = versions[position], versions[:position]
    verdict = Verdict(new.name, earlier=len(earlier))
    if not earlier:
        return verdict
    rs = np.array([v.R for v in earlier])
    limit = rs.mean() + sigma * spread(rs)
    verdict.R_limit = float(limit)
    if new.R > limit:
        verdict.flags.append(f"R rose to {new.R:.4f}, above {limit:.4f} (mean {rs.mean():.4f} "
                             f"+ {sigma:g} x spread {spread(rs):.4f}): more redundant than before")
    ls = np.array([v.L for v in earlier if v.L is not None])
    if new.L is not None and len(ls):
        floor = ls.mean() - sigma * spread(ls)
        verdict.L_floor = float(floor)
        if new.L < floor:
            verdict.flags.append(f"L fell to {new.L:.4f}, below {floor:.4f} (mean {ls.mean():.4f} "
                                 f"- {sigma:g} x spread {spread(ls):.4f}): the model already masters it")
    scored = [v for v in earlier if v.score is not None and v.L is not None]
    if len(scored) >= 3 and new.L is not None:
        x = np.array([[1.0, v.R, v.L] for v in scored])
        z = np.array([v.score for v in scored])
        coef, *_ = np.linalg.lstsq(x, z, rcond=None)
        rmse = float(np.sqrt(np.mean((x @ coef - z) ** 2)))
        predicted = float(coef @ [1.0, new.R, new.L])
        error = None if new.score is None else float(new.score - predicted)
        verdict.fit = Fit(*map(float, coef), rmse=rmse, versions=len(scored), predicted=predicted, error=error)
    return verdict
