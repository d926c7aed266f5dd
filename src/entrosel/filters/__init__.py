"""Filters that clean a pool before selection: length, exact and near dedup, score bands.

:data:`FILTERS` holds each ``entrosel filter NAME``'s class; the command line and recipes
build every filter from it.
"""
from entrosel.filters.base import FILTERS, Filter, Removal
from entrosel.filters.length import LengthFilter  # noqa: I001  (registration order: --help's)
from entrosel.filters.dedup import Dedup
from entrosel.filters.params import Param, ParameterError
from entrosel.filters.score import ScoreFilter

__all__ = ["FILTERS", "Dedup", "Filter", "LengthFilter", "Param", "ParameterError", "Removal",
           "ScoreFilter"]
