"""Word surprisal under the pool's own unigram word frequencies (Kim & Baek's H(W, f)).

``word_surprisal = -(1/m) * sum(log f(w))`` over a sample's m words, where
``f(w) = (count(w) + 1) / (N + V)`` is the add-one smoothed frequency of word w among the
pool's N words with V distinct ones. Words are runs of letters, digits and underscores
(``\\w+``), lower-cased. A sample with no words scores 0.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from typing import Iterable

import numpy as np

WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


class WordSurprisal:
    """Fit unigram counts on a pool (``fit``), then score samples (``score``)."""

    def fit(self, texts: Iterable[str]) -> "WordSurprisal":
        self.counts_ = Counter()
        for text in texts:
            self.counts_.update(words(text))
        self.total_ = sum(self.counts_.values())
        self.log_denominator_ = math.log(self.total_ + len(self.counts_))
        return self

    def score(self, texts: Iterable[str]) -> np.ndarray:
        out = []
        for text in texts:
            ws = words(text)
            if not ws:
                out.append(0.0)
                continue
            counts = self.counts_
            total = sum(math.log(counts.get(w, 0) + 1) for w in ws)
            out.append(self.log_denominator_ - total / len(ws))
        return np.asarray(out, dtype=np.float64)
