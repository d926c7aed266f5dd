"""Filters that clean a pool before selection: length, exact and near dedup, score bands.

``FILTERS`` maps each ``entrosel filter NAME`` to its class; the command line and recipes
build every filter from it.
"""
from entrosel.filters.base import Filter, Removal
from entrosel.filters.dedup import Dedup
from entrosel.filters.length import LengthFilter
from entrosel.filters.params import Param, ParameterError
from entrosel.filters.score import ScoreFilter

FILTERS: dict[str, type[Filter]] = {f.name: f for f in (LengthFilter, Dedup, ScoreFilter)}

__all__ = ["FILTERS", "Dedup", "Filter", "LengthFilter", "Param", "ParameterError", "Removal",
           "ScoreFilter"]
