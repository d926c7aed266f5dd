"""What a trained model is measured by: loss, multiple choice, response ranking.

All three score token log-likelihoods with :class:`entrosel.scoring.lm.LMScorer` (sliding
windows of the model's context overlapping by a quarter, so long records are scored whole):

- **loss** (nats per token) over a held-out set's tokens, all of them or, with
  ``target="response"``, the assistant turns given their prompts;
- **multiple choice** as lm-evaluation-harness does: each choice is scored as the answer
  to the question; ``acc`` picks the choice of highest total log-likelihood, ``acc_norm``
  the highest per character of the choice; the set's loss is that of the right answers;
- **response ranking**: for a held-out prompt, its true response against responses of
  other records of the set, each scored given the prompt by its mean loss per token;
  ``rank_acc`` is how often the true one scores best (chance: 1 / candidates).
"""
from __future__ import annotations

import math
import random
from typing import Any

import numpy as np

from entrosel.evaluate.data import ChoiceSet, TextSet
from entrosel.formats.render import Turn
from entrosel.scoring.lm import LMScorer

RANK_CHARS = 1000  # candidate responses are cut here, so that long answers cost no more


def _nll(rows: list[dict[str, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Total NLL in nats and scored tokens of each scored row."""
    tokens = np.array([r["tokens"] for r in rows], dtype=np.int64)
    total = np.array([r["bits"] for r in rows], dtype=np.float64) * math.log(2)
    return total, tokens


def ranking_items(ev: TextSet, prompts: int, candidates: int) -> list[tuple[list[Turn], list[str]]]:
    """``(prompt turns, [true response, others...])`` for up to ``prompts`` records of ``ev``
    that end in an assistant turn; the others are drawn with a fixed seed, so every model is
    asked the same questions."""
    usable = [(s[:-1], s[-1].text[:RANK_CHARS]) for s in ev.samples
              if len(s) >= 2 and s[-1].role == "assistant" and s[-1].text.strip()]
    if len(usable) < candidates or candidates < 2:
        return []
    rng = random.Random(0)
    items = []
    for k, (prompt, response) in enumerate(usable[:prompts]):
        others = rng.sample([j for j in range(len(usable)) if j != k], candidates - 1)
        items.append((list(prompt), [response] + [usable[j][1] for j in others]))
    return items


class Measures:
    """Measures a model on the held-out sets; ``measure(model)`` returns one dict per set."""

    def __init__(self, evals: list[TextSet | ChoiceSet], names: list[str], tokenizer: Any, *,
                 target: str = "all", context: int = 128, batch_size: int = 16,
                 rank_prompts: int = 100, rank_candidates: int = 4, device: str = "cpu",
                 precision: str = "auto") -> None:
        self.evals, self.names, self.tokenizer = evals, names, tokenizer
        self.precision = precision
        self.target, self.context, self.batch_size, self.device = target, context, batch_size, device
        self.ranking = {name: ranking_items(ev, rank_prompts, rank_candidates)
                        for ev, name in zip(evals, names) if isinstance(ev, TextSet)}

    def _scorer(self, model: Any, target: str) -> LMScorer:
        model.eval()  # no dropout while measuring
        # windows overlap by a quarter: each scored token has some context, at 4/3 the cost
        return LMScorer(model, self.tokenizer, batch_size=self.batch_size, max_length=self.context,
                        stride=max(1, self.context * 3 // 4), target=target, device=self.device)

    def measure(self, model: Any) -> dict[str, dict[str, float]]:
        from entrosel.probe.train import autocast

        out = {}
        with autocast(self.device, self.precision):
            for ev, name in zip(self.evals, self.names):
                out[name] = (self.choice(model, ev) if isinstance(ev, ChoiceSet)
                             else self.text(model, ev, self.ranking.get(name, [])))
        return out

    def text(self, model: Any, ev: TextSet, ranking: list) -> dict[str, float]:
        total, tokens = _nll(self._scorer(model, self.target).score(ev.samples))
        result = {"loss": float(total.sum() / max(1, tokens.sum())), "tokens": int(tokens.sum()),
                  # per record, for intervals over the held-out records (a bootstrap)
                  "per_record": {"nll": total.tolist(), "tokens": tokens.tolist()}}
        if ranking:
            samples = [prompt + [Turn("assistant", c)] for prompt, cands in ranking for c in cands]
            rows = self._scorer(model, "response").score(samples)
            mean = np.array([r["nll_mean"] for r in rows]).reshape(len(ranking), -1)
            # the true response (column 0) must beat every other strictly
            wins = (mean[:, :1] < mean[:, 1:]).all(axis=1)
            result |= {"rank_acc": float(wins.mean()), "rank_wins": wins.astype(int).tolist(),
                       "rank_prompts": len(ranking),
                       "rank_candidates": int(mean.shape[1])}
        return result

    def choice_scores(self, model: Any, ev: ChoiceSet) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per question: the total NLL (nats) of each choice given the question, and its tokens."""
        samples = [[Turn("user", item.context), Turn("assistant", c)] for item in ev.items for c in item.choices]
        total, tokens = _nll(self._scorer(model, "response").score(samples))
        out, k = [], 0
        for item in ev.items:
            n = len(item.choices)
            out.append((total[k:k + n], tokens[k:k + n]))
            k += n
        return out

    def choice(self, model: Any, ev: ChoiceSet) -> dict[str, float]:
        acc, acc_norm, gold_nll, gold_tokens = [], [], 0.0, 0
        for item, (nll, tokens) in zip(ev.items, self.choice_scores(model, ev)):
            chars = np.array([max(1, len(c)) for c in item.choices])
            acc.append(int(np.argmin(nll)) == item.answer)
            acc_norm.append(int(np.argmin(nll / chars)) == item.answer)
            gold_nll += nll[item.answer]
            gold_tokens += int(tokens[item.answer])
        return {"loss": gold_nll / max(1, gold_tokens), "tokens": gold_tokens,
                "correct": [int(c) for c in acc], "acc": float(np.mean(acc)), "acc_norm": float(np.mean(acc_norm)), "questions": len(ev.items)}
