"""What every step shares, filter, scorer or selector: a dataclass of hyper-parameters
(scikit-learn style: the constructor only stores them, ``validate`` checks them before any
work, learned attributes end in ``_``), registered under a ``name`` from which the command
line builds ``entrosel filter|score|select NAME`` and recipes build their step."""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Self

from entrosel.params import check_fields, constraints, hyper_parameters


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

    def get_params(self) -> dict[str, Any]:
        """The hyper-parameters, by name (what a recipe or shard marker fingerprints)."""
        return hyper_parameters(self)

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
