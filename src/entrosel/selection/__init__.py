"""Choosing a subset. :data:`SELECTORS` holds the selectors of ``entrosel select``; a new
selector is a module with one ``@SELECTORS.register(NAME)`` class, imported below."""
from entrosel.selection.base import SELECTORS, Selector, write_selection
from entrosel.selection.zip import ZipSelector  # noqa: I001  (registration order: --help's order)
from entrosel.selection.score_selectors import (BandSelector, PruneSelector, RandomSelector,
                                                TopKSelector)
from entrosel.selection.target import TargetSelector

__all__ = ["SELECTORS", "BandSelector", "PruneSelector", "RandomSelector", "Selector",
           "TargetSelector", "TopKSelector", "ZipSelector", "write_selection"]
