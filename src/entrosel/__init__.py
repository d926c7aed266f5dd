"""entrosel: select training data for language models through the compression view of data."""
from entrosel.commands.data import export_sharegpt
from entrosel.commands.law import law_check, law_measure, law_report, law_track
from entrosel.commands.measure import measure, measure_one
from entrosel.commands.probe import probe_train, prune_pool
from entrosel.commands.score import compression_scores, score_compression, score_lm, score_words
from entrosel.commands.select import select_by_score, select_zip_to_file, write_selection
from entrosel.commands.sharded import merge_shards, score
from entrosel.errors import InputError
from entrosel.formats import Renderer, RenderError, Serialization, render_text, serialize
from entrosel.io import Record, Rejects, read_records, write_records
from entrosel.scoring.compression import Compressor, compression_ratio
from entrosel.selection.zip import ZipSelector, select_zip

__version__ = "0.1.0"

__all__ = ["Compressor", "InputError", "Record", "Rejects", "RenderError", "Renderer",
           "Serialization", "ZipSelector", "compression_ratio", "compression_scores",
           "export_sharegpt", "law_check", "law_measure", "law_report", "law_track", "measure",
           "measure_one", "merge_shards", "probe_train", "prune_pool", "read_records",
           "render_text", "score", "score_compression", "score_lm", "score_words",
           "select_by_score", "select_zip", "select_zip_to_file", "serialize", "write_records",
           "write_selection"]
