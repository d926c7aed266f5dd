"""entrosel: select training data for language models through the compression view of data."""
import entrosel.evaluate as _evaluate_package  # noqa: F401  (loaded before the function of that name)
from entrosel.commands.data import export_sharegpt
from entrosel.commands.evaluate import evaluate
from entrosel.commands.filter import filter_dedup, filter_length, filter_score
from entrosel.commands.law import law_check, law_measure, law_report, law_track
from entrosel.commands.measure import measure, measure_one
from entrosel.commands.probe import probe_train, prune_pool
from entrosel.commands.recipe import load_recipe, run_recipe
from entrosel.commands.report import report as selection_report
from entrosel.commands.score import compression_scores, score_compression, score_lm, score_words
from entrosel.commands.select import select_by_score, select_zip_to_file, write_selection
from entrosel.commands.sharded import merge_shards, score
from entrosel.commands.target import select_target
from entrosel.engines import ENGINES, Engine, LocalEngine, RayEngine, WorkerDied, make_engine
from entrosel.errors import InputError
from entrosel.evaluate.runner import Evaluator
from entrosel.filters import FILTERS, Dedup, Filter, LengthFilter, ScoreFilter
from entrosel.formats import Renderer, RenderError, Serialization, render_text, serialize
from entrosel.io import Record, Rejects, read_records, write_records
from entrosel.params import Param, ParameterError, option
from entrosel.registry import Registry
from entrosel.scoring import (SCORERS, CompressionScorer, LanguageModelScorer, RunSummary, Scorer,
                              WordSurprisalScorer)
from entrosel.scoring.compression import Compressor, compression_ratio
from entrosel.scoring.conditional import LongMemory, conditional_size
from entrosel.selection import (SELECTORS, BandSelector, PruneSelector, RandomSelector, Selector,
                                TargetSelector, TopKSelector, ZipSelector)
from entrosel.selection.zip import select_zip

from entrosel.version import __version__

__all__ = ["ENGINES", "FILTERS", "SCORERS", "SELECTORS", "BandSelector", "CompressionScorer", "Compressor",
           "Dedup", "Engine", "Evaluator", "Filter", "InputError", "LanguageModelScorer", "LengthFilter",
           "LocalEngine", "LongMemory", "Param", "ParameterError", "PruneSelector",
           "RandomSelector", "RayEngine", "Record", "Registry", "Rejects", "RenderError",
           "Renderer", "RunSummary", "ScoreFilter", "Scorer", "Selector", "Serialization",
           "TargetSelector", "TopKSelector", "WordSurprisalScorer", "WorkerDied", "ZipSelector",
           "compression_ratio", "compression_scores", "conditional_size", "evaluate",
           "export_sharegpt", "filter_dedup", "filter_length", "filter_score", "law_check",
           "law_measure", "law_report", "law_track", "load_recipe", "make_engine", "measure",
           "measure_one", "merge_shards", "option", "probe_train", "prune_pool", "read_records",
           "render_text", "run_recipe", "score", "score_compression", "score_lm", "score_words",
           "select_by_score", "select_target", "select_zip", "select_zip_to_file",
           "selection_report", "serialize",
           "write_records", "write_selection"]
