"""Per-record and per-set measures. :data:`SCORERS` holds the scorers of ``entrosel score``;
a new scorer is a module with one ``@SCORERS.register(NAME)`` class, imported below."""
from entrosel.scoring.base import SCORERS, RunSummary, Scorer
from entrosel.scoring.scorers import CompressionScorer, LanguageModelScorer, WordSurprisalScorer

__all__ = ["SCORERS", "CompressionScorer", "LanguageModelScorer", "RunSummary", "Scorer",
           "WordSurprisalScorer"]
