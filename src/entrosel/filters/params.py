"""Parameter constraints: one table per step, one error type (scikit-learn's pattern).

Each step class lists its parameters' allowed values beside its keywords; :func:`check_params`
raises a :class:`ParameterError` naming the parameter, what is allowed and the value
received. The command line names the parameter as its flag (``--min-chars``), a recipe as
its YAML key (``min_chars``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from entrosel.errors import InputError


def flag(name: str) -> str:
    """The command-line flag of a parameter: ``min_chars`` -> ``--min-chars``."""
    return "--" + name.replace("_", "-")


class ParameterError(InputError):
    """A parameter holds a value outside its allowed range."""

    def __init__(self, name: str, allowed: str, value: Any) -> None:
        self.name, self.allowed, self.value = name, allowed, value
        super().__init__(self.message(flag(name)))

    def message(self, shown_as: str) -> str:
        return f"{shown_as} must be {self.allowed}, not {self.value!r}"


@dataclass(frozen=True)
class Param:
    """What one parameter may hold: a kind (``int``, ``float``, ``bool``, ``str``), optional
    bounds (``low_open``/``high_open``: strict), optional choices; ``None`` allowed unless
    ``required``."""

    kind: type
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] | None = None
    required: bool = False

    def describe(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(map(str, self.choices))
        what = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[self.kind]
        if self.low is not None and self.high is not None:
            return (f"{what} in {'(' if self.low_open else '['}{_num(self.low)}, "
                    f"{_num(self.high)}{')' if self.high_open else ']'}")
        if self.low is not None:
            return f"{what} {'>' if self.low_open else '>='} {_num(self.low)}"
        if self.high is not None:
            return f"{what} {'<' if self.high_open else '<='} {_num(self.high)}"
        return what

    def accepts(self, value: Any) -> bool:
        if value is None:
            return not self.required
        if self.choices is not None:
            return value in self.choices
        if self.kind is bool:
            return isinstance(value, bool)
        if isinstance(value, bool):  # True is an int to Python, never to a user
            return False
        if self.kind is float:
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                return False
        elif not isinstance(value, self.kind):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            return False
        return True


def _num(x: float) -> str:
    return f"{x:g}"


def check_params(values: Mapping[str, Any], constraints: Mapping[str, Param]) -> None:
    """Raise :class:`ParameterError` for the first value its constraint refuses."""
    for name, param in constraints.items():
        value = values.get(name)
        if not param.accepts(value):
            raise ParameterError(name, param.describe() if value is not None or not param.required
                                 else param.describe() + " (required)", value)


def check_range(values: Mapping[str, Any], low: str, high: str) -> None:
    """Refuse a lower bound above its upper bound."""
    lo, hi = values.get(low), values.get(high)
    if lo is not None and hi is not None and lo > hi:
        raise InputError(f"{flag(low)} ({lo}) is above {flag(high)} ({hi})")
