"""``entrosel select prune|topk|band|random``: choose records by a column of a score file
(from ``entrosel score ...``, an ``index`` column naming input records); the choosing itself
is :mod:`entrosel.selection.by_score`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from entrosel.errors import InputError
from entrosel.io.scores import read_scores
from entrosel.io.records import Rejects
from entrosel.io.trace import Removal
from entrosel.params import Param, option
from entrosel.pool import Source, rendered_records, reusable
from entrosel.scoring.tokens import record_token_counts
from entrosel.selection import by_score
from entrosel.selection.base import SELECTORS, Selector

@dataclass(kw_only=True)
class ScoreSelector(Selector):
    """Base of the selectors that choose by a column ``by`` of the score file ``scores``."""

    scores: str | None = option(None, "score file with an 'index' column (from `entrosel score ...`)",
                                param=Param(str, required=True), metavar="FILE")
    by: str | None = option(None, "score column to select by", param=Param(str, required=True),
                            metavar="COLUMN")

    option_groups: ClassVar[tuple[str, ...]] = ("input",)

    def _choose(self, values: np.ndarray | None, tokens: np.ndarray | None, n: int) -> np.ndarray:
        """Positions into the score file's rows, in selection order."""
        raise NotImplementedError

    def _once(self, key: str, make: Any) -> Any:
        if key not in self._known:
            self._known[key] = make()
        return self._known[key]

    def _value_of(self, index: int) -> float | None:
        """The score of input record ``index`` (``None``: no row in the score file)."""
        row_of = self._once("rows", lambda: {i: k for k, i in enumerate(self.index_.tolist())})
        k = row_of.get(index)
        return None if k is None or self.values_ is None else float(self.values_[k])

    def drop_reason(self, index: int) -> Removal:
        value = self._value_of(index)
        if value is None and self.scores is not None:
            return Removal("no_score", f"no row in the score file {self.scores}")
        return self._cut(index, value)

    def _cut(self, index: int, value: float | None) -> Removal:
        """Why a scored record was not selected."""
        return super().drop_reason(index)

    def _below(self, value: float, lowest: bool, what: str) -> Removal:
        """``value`` lost to the kept scores at the ``lowest`` (or highest) end being dropped:
        compared with the lowest (highest) score kept."""
        kept = self._once("kept", lambda: [self._value_of(i) for i in self.selected_])
        if not kept:
            return Removal(what, f"{self.by} {value:.6g}: no record kept", value=value)
        edge = min(kept) if lowest else max(kept)
        sign = "<" if lowest else ">"
        if value == edge:
            sign = "== (a tie, the earlier input row kept first)"
        end = "lowest" if lowest else "highest"
        return Removal(what, f"{self.by} {value:.6g} {sign} {edge:.6g}, the {end} score kept",
                       value=value, threshold=edge)

    def select(self, pool: Source) -> list[int]:
        self.validate()
        pool = reusable(pool)
        options = self.input_options()
        self.rejects_ = Rejects(self.on_error)
        # every input record is read (and rendered) once under the on-error policy, as by the
        # other verbs; only readable records can be selected
        # the score file first: a missing file or column is refused before the pool is read
        scored = read_scores(self.scores, self.by) if self.scores is not None else None
        readable = [r.index for r, _ in rendered_records(pool, options, self.rejects_)]
        if scored is None:  # random without a score file: the readable records
            index, values, file_tokens = np.array(readable, dtype=np.int64), None, None
        else:
            index, values, file_tokens = scored
        tokens = file_tokens
        if getattr(self, "budget_tokens", None) is not None and getattr(self, "tokenizer", None):
            tokens = record_token_counts(pool, index, self.tokenizer, options)
        self._check_budget(len(index))
        chosen = self._choose(values, tokens, len(index))
        self.index_, self.values_ = index, values  # for drop_reason
        self._known: dict[str, Any] = {}  # what drop_reason works out once per selection
        self.selected_ = index[chosen].tolist()
        known = set(readable)
        missing = [i for i in self.selected_ if i not in known]
        if missing:
            raise InputError(f"the score file names {len(missing)} record(s) the input does not hold "
                             f"as readable records (first: index {missing[0]}); score this input again",
                             self.scores)
        return self.selected_


@dataclass(kw_only=True)
class _BudgetedScoreSelector(ScoreSelector):
    keep: float | None = option(None, "keep this fraction of the scored records",
                                param=Param(float, low=0, high=1, low_open=True), metavar="FRACTION",
                                group="budget")
    budget: int | None = option(None, "keep N records", param=Param(int, low=1), metavar="N",
                                group="budget")
    budget_tokens: int | None = option(None, "keep records until they hold N tokens (a 'tokens' "
                                       "score column, or --tokenizer)", param=Param(int, low=1),
                                       metavar="N", group="budget")
    tokenizer: str | None = option(None, "count tokens with this HF tokenizer", param=Param(str),
                                   metavar="PATH_OR_NAME")

    option_groups: ClassVar[tuple[str, ...]] = ("budget", "input")
    content_fields: ClassVar[tuple[str, ...]] = ("tokenizer",)

    def _check(self) -> None:
        if sum(x is not None for x in (self.keep, self.budget, self.budget_tokens)) != 1:
            raise InputError("give one of --keep FRACTION, --budget N or --budget-tokens N")

    def _budgets(self, tokens: np.ndarray | None) -> dict[str, Any]:
        return dict(keep=self.keep, budget=self.budget, budget_tokens=self.budget_tokens, tokens=tokens)


@SELECTORS.register("prune")
@dataclass(kw_only=True)
class PruneSelector(_BudgetedScoreSelector):
    """Drop the lowest-scoring records first (Kim & Baek: the least informative, ``by="info"``);
    keep the rest in input order."""

    drop: str = option("lowest", "which end of the score to prune first",
                       param=Param(str, choices=("lowest", "highest")))

    help: ClassVar[str] = "drop the lowest-scoring records first (information-content pruning)"

    @classmethod
    def example_options(cls, folder: Path) -> dict[str, Any]:
        return {"by": "compression_ratio", "budget": 10}
    description: ClassVar[str] = ("Prune the records with the lowest score first (Kim & Baek 2024: "
                                  "the least informative, --by info) and keep the rest in input order.")

    def _choose(self, values, tokens, n):
        return by_score.prune(values, drop=self.drop, **self._budgets(tokens))

    def _cut(self, index, value):
        return self._below(value, self.drop == "lowest", "pruned")


@SELECTORS.register("topk")
@dataclass(kw_only=True)
class TopKSelector(_BudgetedScoreSelector):
    """The records with the highest (``largest=False``: lowest) scores, best first."""

    largest: bool = option(True, cli=False)

    help: ClassVar[str] = "the records with the highest (or lowest) score"

    @classmethod
    def example_options(cls, folder: Path) -> dict[str, Any]:
        return {"by": "compression_ratio", "budget": 10}
    description: ClassVar[str] = "Keep the best-scoring records, best first."
    option_groups: ClassVar[tuple[str, ...]] = ("budget", "order", "input")

    def _choose(self, values, tokens, n):
        return by_score.top_k(values, largest=self.largest, **self._budgets(tokens))

    def _cut(self, index, value):
        return self._below(value, self.largest, "not_top")


@SELECTORS.register("band")
@dataclass(kw_only=True)
class BandSelector(ScoreSelector):
    """The records whose score lies between two percentiles of all scores, in input order."""

    low: float | None = option(None, "lower percentile (inclusive)",
                               param=Param(float, low=0, high=100, required=True), metavar="PCT")
    high: float | None = option(None, "upper percentile (exclusive, inclusive at 100)",
                                param=Param(float, low=0, high=100, required=True), metavar="PCT")

    help: ClassVar[str] = "records within a percentile band of a score (CCNet)"

    @classmethod
    def example_options(cls, folder: Path) -> dict[str, Any]:
        return {"by": "compression_ratio", "low": 20, "high": 80}
    description: ClassVar[str] = (
        "Keep the records whose score lies between two percentiles of all scores, in input "
        "order; e.g. CCNet's head/middle/tail: --low 0 --high 30, --low 30 --high 60, "
        "--low 60 --high 100.")

    def _check(self) -> None:
        if self.low >= self.high:
            raise InputError(f"--low ({self.low:g}) must be below --high ({self.high:g})")

    def _choose(self, values, tokens, n):
        return by_score.band(values, self.low, self.high)

    def _cut(self, index, value):
        lo, hi = self._once("band", lambda: [float(x) for x in np.percentile(self.values_, [self.low, self.high])])
        edge = lo if value < lo else hi
        upper = "]" if self.high == 100 else ")"
        return Removal("outside_band", f"{self.by} {value:.6g} outside [{lo:.6g}, {hi:.6g}{upper}, "
                                       f"percentiles {self.low:g} to {self.high:g}",
                       value=value, threshold=edge)


@SELECTORS.register("random")
@dataclass(kw_only=True)
class RandomSelector(_BudgetedScoreSelector):
    """A uniform random subset without replacement, reproducible for ``seed``, in the order drawn."""

    scores: str | None = option(None, "score file with an 'index' column (optional: for a "
                                "'tokens' column, or to draw from the scored records only)",
                                param=Param(str), metavar="FILE")
    by: str | None = option(None, cli=False)
    seed: int = option(0, "random seed", param=Param(int, low=0))

    help: ClassVar[str] = "a seeded random subset (the baseline)"

    @classmethod
    def example_options(cls, folder: Path) -> dict[str, Any]:
        return {"budget": 10, "seed": 3}
    description: ClassVar[str] = ("A uniform random subset without replacement, reproducible for "
                                  "--seed, in the order drawn.")

    def _choose(self, values, tokens, n):
        return by_score.random_subset(n, seed=self.seed, **self._budgets(tokens))

    def _cut(self, index, value):
        return Removal("not_drawn", f"not drawn by select random: {len(self.selected_):,} of "
                                    f"{len(self.index_):,} drawn with seed {self.seed}")
