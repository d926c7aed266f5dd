"""What every scorer shares: one row of scores per readable record, written to a score file.

A scorer is a dataclass of hyper-parameters (scikit-learn style) registered in
:data:`SCORERS`; its fields made with :func:`entrosel.params.option` are its options, on the
command line (``entrosel score NAME``) and in the library alike. A scorer writes only
:meth:`Scorer.rows`; :meth:`Scorer.score_file` reads, writes the rows, the rejects and the
metadata, :meth:`Scorer.apply` does so on a recipe's records (they pass on unchanged), and
:func:`entrosel.commands.sharded.score` runs it on an engine, in shards or not.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, Mapping, Sequence

from entrosel.errors import InputError
from entrosel.io.atomic import atomic_path
from entrosel.io.readers import hub_name
from entrosel.io.records import Record, Rejects, rejects_path
from entrosel.io.writers import output_format_for, write_records
from entrosel.params import Param, option
from entrosel.pool import InputOptions, Source, reusable
from entrosel.registry import Registry
from entrosel.step import Step, StepFiles, StepResult

if TYPE_CHECKING:
    from entrosel.engines.base import Engine
    from entrosel.engines.shards import Shard

SCORERS: Registry = Registry("scorer")


@dataclass
class RunSummary:
    """What a command did, for its one-line summary."""

    records: int
    rejected: int
    seconds: float
    output: Path | None
    rejects_file: Path | None = None
    bytes: int = 0
    note: str = ""  # e.g. which shard ran, whether the shards were merged


def id_row(record: Record) -> dict[str, Any]:
    """The first columns of a score row: ``index`` and, when the record has one, ``id``."""
    id_ = record.data.get("id")
    return {"index": record.index} if id_ is None else {"index": record.index, "id": id_}


@dataclass(kw_only=True)
class Scorer(Step):
    """Base of the scorers. A subclass sets ``help`` and ``description`` (for ``entrosel
    score --help``), adds its hyper-parameters as fields and writes :meth:`rows`."""

    input_format: str | None = option(None, group="input")
    text_field: str | None = option(None, group="input")
    template: str | None = option(None, group="input")
    on_error: str = option("raise", group="input", param=Param(str, choices=("raise", "skip")))

    option_groups: ClassVar[tuple[str, ...]] = ("input",)
    verb: ClassVar[str] = "score"
    # True: it scores on the engine's workers (the command takes --workers)
    parallel: ClassVar[bool] = False
    # the column summed into RunSummary.bytes (bytes or tokens scored), if any
    measured: ClassVar[str | None] = None
    # True: every worker of a distributed run first calls load() (e.g. reads a model)
    loads_model: ClassVar[bool] = False
    serialize: ClassVar[str] = "text"  # how records become text; a field where a scorer lets users choose

    def input_options(self) -> InputOptions:
        return InputOptions(self.input_format, self.serialize, self.text_field, self.template,
                            self.on_error)

    def load(self) -> Any:
        """What a worker loads once for many shards (``loads_model``), passed back as ``loaded``."""
        return None

    def wants_gpu(self) -> bool:
        """Whether the loaded model would use a GPU that a worker has."""
        return False

    def rows(self, source: Source, rejects: Rejects, *, engine: Engine, shard: Shard | None,
             loaded: Any, progress: bool | None) -> Iterator[dict[str, Any]]:
        """One row per readable record of ``source`` (of ``shard``), in input order, starting
        with :func:`id_row`; bad records go to ``rejects``."""
        raise NotImplementedError

    def merge(self, rows: list[dict[str, Any]]) -> None:
        """Columns that need every row (e.g. z-scored over the pool), set in place; called
        once on the rows of a whole run, sharded or not."""

    def meta(self) -> dict[str, Any] | None:
        """What goes to ``SCORES.meta.json`` (the options used), or ``None`` for no file."""
        return None

    def summary(self, s: RunSummary) -> str:
        """The part of the command's one-line summary after the record count."""
        return ""

    def score_file(self, source: Source, output: str | Path, *, engine: Engine | None = None,
                   shard: Shard | None = None, loaded: Any = None,
                   progress: bool | None = None) -> RunSummary:
        """Score ``source`` (a path or dict records) into ``output``; see the module docstring."""
        from entrosel.engines.base import make_engine

        t0 = time.perf_counter()
        self.validate()
        source = reusable(source)  # a scorer may read it twice (word frequencies first)
        output_format_for(output, "-o")
        if isinstance(source, (str, os.PathLike)) and not Path(source).exists() \
                and hub_name(source, self.input_format) is None:  # a Hub data set is no file
            raise InputError("no such file or folder", source)
        engine = make_engine(engine or "local")
        rejects = Rejects(self.on_error, scope=shard.owns if shard is not None else None)
        rows = self.rows(source, rejects, engine=engine, shard=shard, loaded=loaded, progress=progress)
        measured = {"total": 0}

        def counted(rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
            for row in rows:
                if self.measured:
                    measured["total"] += row[self.measured]
                yield row

        if type(self).merge is not Scorer.merge:  # needs every row before writing
            rows = list(counted(rows))
            self.merge(rows)
            n = write_records(rows, output)
        else:
            n = write_records(counted(rows), output)
        meta = self.meta()
        if meta is not None:
            with atomic_path(f"{output}.meta.json") as tmp:
                tmp.write_text(json.dumps({"scorer": self.name, **meta}, indent=1) + "\n")
        return RunSummary(n, len(rejects), time.perf_counter() - t0, Path(output),
                          rejects.write(rejects_path(output)), measured["total"])

    def apply(self, records: Sequence[Record], files: StepFiles, *,
              reading: Mapping[str, Any] | None = None, engine: Engine | None = None,
              progress: bool | None = None) -> StepResult:
        """Score ``records`` into ``files``' ``scores.jsonl`` (see :meth:`Step.apply`); the
        records pass on unchanged (``kept`` is ``None``)."""
        scorer = self._given(reading)
        output = files.path("scores.jsonl")
        s = scorer.score_file(records, output, engine=engine, progress=progress)
        return StepResult(None, f"entrosel {self.verb} {self.name}: {s.records:,} records scored"
                                f"{scorer.summary(s)} in {s.seconds:.1f}s -> {output}", scores=output)
