"""entrosel: select training data for language models through the compression view of data.

The names here are what a user needs: the steps (filters, scorers, selectors) and their bases,
the registries and engines, how a part declares its options, the errors, reading and writing
records, and the workflows (ZIP in one call, a recipe, R of a set, the data probe and
information pruning, a comparison by training). The verbs' functions on paths (``entrosel
score compression`` as ``score_compression``, ...) live in ``entrosel.commands``; the entropy
law's functions in ``entrosel.commands.law``; docs/api.md lists both.
"""
from entrosel.commands.measure import measure
from entrosel.commands.probe import probe_train, prune_pool
from entrosel.commands.recipe import run_recipe
from entrosel.commands.sharded import score
from entrosel.engines import ENGINES, Engine, LocalEngine, RayEngine, WorkerDied, make_engine
from entrosel.errors import InputError
from entrosel.evaluate.runner import Evaluator
from entrosel.filters import FILTERS, Dedup, Filter, LengthFilter, ScoreFilter
from entrosel.formats import render_text
from entrosel.io import Rejects, read_records, write_records
from entrosel.params import Param, ParameterError, option
from entrosel.scoring import SCORERS, CompressionScorer, LanguageModelScorer, Scorer, WordSurprisalScorer
from entrosel.scoring.compression import compression_ratio
from entrosel.selection import (SELECTORS, BandSelector, PruneSelector, RandomSelector, Selector,
                                TargetSelector, TopKSelector, ZipSelector)
from entrosel.selection.zip import select_zip
from entrosel.version import __version__

__all__ = [
    # steps and their bases
    "Filter", "LengthFilter", "Dedup", "ScoreFilter",
    "Scorer", "CompressionScorer", "WordSurprisalScorer", "LanguageModelScorer",
    "Selector", "ZipSelector", "TargetSelector", "PruneSelector", "TopKSelector", "BandSelector",
    "RandomSelector",
    # registries and engines
    "FILTERS", "SCORERS", "SELECTORS", "ENGINES", "Engine", "LocalEngine", "RayEngine", "make_engine",
    # declaring a part's options; errors
    "option", "Param", "InputError", "ParameterError", "WorkerDied",
    # records
    "read_records", "write_records", "render_text", "Rejects",
    # workflows
    "select_zip", "run_recipe", "measure", "compression_ratio", "score", "probe_train", "prune_pool",
    "Evaluator", "__version__",
]
