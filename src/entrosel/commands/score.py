"""``entrosel score NAME`` as functions on paths: thin wrappers over the registered scorers
(:data:`entrosel.scoring.SCORERS`). For sharded and Ray runs see :mod:`entrosel.commands.sharded`."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from entrosel.pool import Source
from entrosel.scoring.base import RunSummary, Scorer
from entrosel.scoring.scorers import (CompressionScorer, LanguageModelScorer, WordSurprisalScorer,
                                      add_info, combine_info, compression_scores)

__all__ = ["RunSummary", "add_info", "combine_info", "compression_scores", "score_compression",
           "score_lm", "score_words"]


def _score_file(cls: type[Scorer], input: Source, output: str | Path, *, workers: int | None = None,
                shard: Any = None, loaded: Any = None, progress: bool | None = None,
                **params: Any) -> RunSummary:
    from entrosel.engines.base import make_engine
    return cls(**params).score_file(input, output, engine=make_engine("local", workers=workers),
                                    shard=shard, loaded=loaded, progress=progress)


def score_compression(input: Source, output: str | Path, **options: Any) -> RunSummary:
    """:class:`CompressionScorer` (``options``: its fields, ``workers``, ``shard``, ``progress``)."""
    return _score_file(CompressionScorer, input, output, **options)


def score_words(input: Source, output: str | Path, **options: Any) -> RunSummary:
    """:class:`WordSurprisalScorer` (``options``: its fields, ``shard``, ``progress``)."""
    return _score_file(WordSurprisalScorer, input, output, **options)


def score_lm(input: Source, output: str | Path, **options: Any) -> RunSummary:
    """:class:`LanguageModelScorer` (``options``: its fields, ``shard``, ``loaded``, ``progress``)."""
    return _score_file(LanguageModelScorer, input, output, **options)
