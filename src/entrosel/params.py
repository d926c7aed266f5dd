"""Hyper-parameters as typed, documented dataclass fields.

A scorer, selector or engine is a dataclass; each of its fields made with :func:`option`
carries its help text and its allowed values (a :class:`Param`). The same field then gives
the command-line flag (``min_chars`` -> ``--min-chars``, help and default from here: the
one place they are written) and the check that runs before any work
(:func:`check_fields`, a :class:`ParameterError` naming the flag and what is allowed).
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import os
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from entrosel.errors import InputError

__all__ = ["Param", "ParameterError", "check_fields", "check_params", "check_range", "constraints",
           "flag", "hyper_parameters", "option"]


def option(default: Any = None, help: str = "", *, param: Param | None = None,
           metavar: str | None = None, flags: tuple[str, ...] = (), group: str | None = None,
           required: bool = False, cli: bool = True) -> Any:
    """A dataclass field with its help text and allowed values. ``flags``: extra spellings
    (older names kept as aliases); ``group``: a shared option group of the command line
    (``"input"``, ``"lm"``, ...) that builds this flag; ``required``: the flag must be given
    (a value the library may also take another way); ``cli=False``: library-only."""
    return dataclasses.field(default=default, metadata={
        "help": help, "param": param, "metavar": metavar, "flags": flags, "group": group, "required": required,
        "cli": cli})


def constraints(obj: Any) -> dict[str, Param]:
    """Each field's :class:`Param`, by name."""
    return {f.name: f.metadata["param"] for f in dataclasses.fields(obj)
            if f.metadata.get("param") is not None}


def check_fields(obj: Any) -> None:
    """Refuse, as :class:`ParameterError`, the first field whose value its :class:`Param` refuses."""
    check_params(hyper_parameters(obj), constraints(obj))


def hyper_parameters(obj: Any) -> dict[str, Any]:
    """A dataclass part's hyper-parameters (its constructor's fields), by name."""
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.init}

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
            return isinstance(value, (bool, np.bool_))
        if isinstance(value, (bool, np.bool_)):  # True is an int to Python, never to a user
            return False
        if self.kind is float:  # NumPy's numbers too
            if not isinstance(value, numbers.Real) or not math.isfinite(value):
                return False
        elif self.kind is int:
            if not isinstance(value, numbers.Integral):
                return False
        elif self.kind is str:  # a path is a string to a user
            if not isinstance(value, (str, os.PathLike)):
                return False
            return True
        elif not isinstance(value, self.kind):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            return False
        return True


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


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
