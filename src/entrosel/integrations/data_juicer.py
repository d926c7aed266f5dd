"""entrosel's selection as Data-Juicer operators (``pip install 'entrosel[data-juicer]'``).

Importing this module registers, with ``@OPERATORS.register_module``:

- ``entrosel_zip_selector``: ZIP (``entrosel select zip``) with its options as typed keywords;
- ``entrosel_selector``: any registered entrosel selector by name (``method: target``, ...)
  with its options in ``params``.

A Data-Juicer config loads them through ``custom_operator_paths``, naming the file that
:func:`operator_path` gives (the module itself cannot be named there: Data-Juicer imports a
file under its base name, and ``data_juicer`` is Data-Juicer's own package)::

    custom_operator_paths: ['/path/printed/by/operator_path']
    process:
      - entrosel_zip_selector: {budget: 1000}

Each operator reads the samples' ``text_key`` field (Data-Juicer's, ``text`` by default) as
the text, so it picks the same samples as the command line on the same records, and returns
the dataset's picked rows, every column kept, in selection order. A selection needs every
sample: under Ray, Data-Juicer runs selectors on one node's copy of the data set.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

try:
    from data_juicer.ops.base_op import OPERATORS, Selector
except ImportError:  # pragma: no cover - depends on the environment
    raise ImportError("entrosel.integrations.data_juicer needs Data-Juicer: "
                      "pip install 'entrosel[data-juicer]'") from None

from entrosel.selection import SELECTORS, ZipSelector

__all__ = ["EntroselSelector", "EntroselZipSelector", "operator_path"]


def operator_path() -> str:
    """The file to list under ``custom_operator_paths`` in a Data-Juicer config."""
    return str(Path(__file__).with_name("entrosel_dj_ops.py"))


def _picked(selector: Any, dataset: Any) -> Any:
    if len(dataset) == 0:
        return dataset
    return dataset.select(selector.select(dataset))


@OPERATORS.register_module("entrosel_zip_selector")
class EntroselZipSelector(Selector):
    """Select ``budget`` samples with ZIP (``entrosel select zip``): greedily the samples that
    keep the selection's compression ratio lowest. ``compressor: zstd`` is long-memory ZIP."""

    def __init__(self, budget: int = 1000, k1: int = 10_000, k2: int = 200, k3: int = 100,
                 compressor: str = "zlib", level: Optional[int] = None, serialize: str = "text",
                 workers: Optional[int] = None, *args, **kwargs):
        """
        :param budget: number of samples to select
        :param k1: stage-1 candidates per round
        :param k2: stage-2 batch size
        :param k3: stage-3 picks per round
        :param compressor: zlib (ZIP.py's), zstd (long memory), gzip, bz2 or lzma
        :param level: compression level (default: the compressor's)
        :param serialize: how a sample becomes bytes: text (rendered) or repr (ZIP.py's)
        :param workers: processes (default: all cores)
        """
        super().__init__(*args, **kwargs)
        self.selector = ZipSelector(budget=budget, k1=k1, k2=k2, k3=k3, compressor=compressor,
                                    level=level, serialize=serialize, workers=workers,
                                    text_field=self.text_key).validate()

    def process(self, dataset):
        return _picked(self.selector, dataset)


@OPERATORS.register_module("entrosel_selector")
class EntroselSelector(Selector):
    """Any entrosel selector (``entrosel select METHOD``): ``method`` names it, ``params``
    holds its options as in a recipe (``{budget: 500, target: data/target.jsonl}``)."""

    def __init__(self, method: str = "zip", params: Optional[dict] = None, *args, **kwargs):
        """
        :param method: the selector's name: zip, target, random, ... (entrosel select --help)
        :param params: its options, by name
        """
        super().__init__(*args, **kwargs)
        params = dict(params or {})
        if "template" not in params:
            params.setdefault("text_field", self.text_key)
        self.selector = SELECTORS[method](**params).validate()

    def process(self, dataset):
        return _picked(self.selector, dataset)
