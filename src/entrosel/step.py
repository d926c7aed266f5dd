"""What every step shares, filter, scorer or selector: a dataclass of hyper-parameters
(scikit-learn style: the constructor only stores them, ``validate`` checks them before any
work, learned attributes end in ``_``), registered under a ``name`` from which the command
line builds ``entrosel filter|score|select NAME`` and recipes build their step.

Every step runs the same way, whoever runs it: :meth:`Step.apply` takes records read once
and returns a :class:`StepResult` (the positions kept, or a score file). Each kind of step
implements ``apply`` once over its usual method (a filter's ``judge``, a scorer's ``rows``,
a selector's ``select``), so a new step, a plugin's too, writes only that method."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping, Self, Sequence

from entrosel.params import check_fields, constraints, hyper_parameters

if TYPE_CHECKING:
    from entrosel.engines.base import Engine
    from entrosel.io.records import Record
    from entrosel.io.trace import Removal


@dataclass(frozen=True)
class StepFiles:
    """Where a step leaves its files in a work folder, all named after one ``stem``
    (``work/02-filter-dedup``): ``path("kept.npy")`` is ``work/02-filter-dedup.kept.npy``.
    A recipe's step leaves ``kept.npy`` (the positions it passes on), ``scores.jsonl``,
    ``removed.jsonl.gz`` and ``rejects.jsonl`` (the rows of the records it removed and of the
    bad records it met), ``drops.jsonl`` (why each record went, for ``--trace``), a report
    (``html`` or ``md``) and its completion marker ``done.json``."""

    stem: Path

    def path(self, suffix: str) -> Path:
        return self.stem.with_name(f"{self.stem.name}.{suffix}")


@dataclass(frozen=True)
class StepResult:
    """What :meth:`Step.apply` did to the records it was given.

    ``kept``: the positions of the records it passes on, in their new order (``None``: all
    of them, unchanged, as a scorer does); ``scores``: the score file it wrote, if any;
    ``line``: its one-line summary; ``drops``: when called (for ``--trace`` only, as it may
    cost a pass), why each other record went (position -> :class:`Removal`, a duplicate
    naming the position it repeats)."""

    kept: list[int] | None
    line: str
    scores: Path | None = None
    drops: Callable[[], dict[int, Removal]] | None = None


class Step:
    """Base of :class:`~entrosel.filters.Filter`, :class:`~entrosel.scoring.Scorer` and
    :class:`~entrosel.selection.Selector`."""

    name: ClassVar[str]
    help: ClassVar[str] = ""
    description: ClassVar[str] = ""
    # the shared option groups of its command (see entrosel.commands.options.GROUP_TITLES)
    option_groups: ClassVar[tuple[str, ...]] = ()
    # fields naming files whose content the result depends on (a recipe step's cache and a
    # shard marker hash them)
    content_fields: ClassVar[tuple[str, ...]] = ()
    # its kind's command (``entrosel filter|score|select NAME``), set by each kind's base
    verb: ClassVar[str]

    def get_params(self) -> dict[str, Any]:
        """The hyper-parameters, by name (what a recipe or shard marker fingerprints)."""
        return hyper_parameters(self)

    def apply(self, records: Sequence[Record], files: StepFiles, *,
              reading: Mapping[str, Any] | None = None, engine: Engine | None = None,
              progress: bool | None = None) -> StepResult:
        """Run the step on ``records`` (a :class:`~entrosel.pool.RecordSet`: read once, a
        record's index its position), leaving its files as ``files`` names them.
        ``reading``: how records become text, as a recipe's top level gives them
        (``text_field``, ``template``, ``on_error``, ``input_format``); ``engine``: where
        heavy work runs (``None``: the step's own choice, local processes by default);
        ``progress``: progress bars (``None``: on a terminal)."""
        raise NotImplementedError(f"{type(self).__name__} is not a filter, scorer or selector")

    def resumable(self, folder: Path) -> Self:
        """This step keeping its state in ``folder`` as it goes and continuing from it when a
        run of the same step left it there (a recipe hands each step a folder, named after
        the step's fingerprint, and removes it once the step is done). Steps that have no
        state worth keeping return themselves."""
        return self

    def _given(self, reading: Mapping[str, Any] | None, **run: Any) -> Self:
        """This step with the reading options and the run's settings (``engine``,
        ``progress``: those not ``None``) that its class holds as fields, for the steps that
        take them in their constructor (scorers, selectors); itself when nothing changes.
        A copy, so the hyper-parameters the caller built are never rewritten."""
        fields = {f.name for f in dataclasses.fields(self) if f.init}
        given = {k: v for k, v in {**(reading or {}), **run}.items()
                 if k in fields and v is not None and v != getattr(self, k)}
        return dataclasses.replace(self, **given) if given else self

    def validate(self) -> Self:
        """Check every hyper-parameter before any work; raises :class:`ParameterError` or
        :class:`InputError`."""
        check_fields(self)
        self._check()
        return self

    def _check(self) -> None:
        """Checks across hyper-parameters (a minimum above its maximum, ...)."""

    @classmethod
    def reads_scores(cls) -> bool:
        """Whether the step cannot run without a score file (its ``scores`` option is required;
        ``select random`` may take one, so it does not need one)."""
        param = constraints(cls).get("scores")
        return param is not None and param.required

    @classmethod
    def example_options(cls, folder: Path) -> dict[str, Any]:
        """The fewest options this step runs with on a small pool: the generic checks of
        :func:`entrosel.testing.check_step` use them (``folder`` holds the check's
        ``pool.jsonl``; write any other file the options name there)."""
        return {}
