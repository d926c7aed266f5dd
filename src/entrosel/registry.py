"""Named registries of the parts a user picks by name: scorers, selectors, filters, engines.

One registration line puts a class on the command line and in recipes (Data-Juicer's
operator registry)::

    @SCORERS.register("length")
    class LengthScorer(Scorer): ...

A name is looked up here and nowhere else: an unknown one is an :class:`InputError` that
lists the known names.
"""
from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from entrosel.errors import InputError

T = TypeVar("T", bound=type)


class Registry(Generic[T]):
    """Classes of one kind (``"scorer"``, ``"engine"``, ...) by name, in registration order."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._classes: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator: register the class under ``name`` and set its ``name`` attribute."""
        def add(cls: T) -> T:
            if name in self._classes and self._classes[name] is not cls:
                raise ValueError(f"{self.kind} {name!r} is registered already ({self._classes[name]!r})")
            cls.name = name
            self._classes[name] = cls
            return cls
        return add

    def unregister(self, name: str) -> T:
        """Remove ``name`` (a plugin unloaded, a test cleaning up); returns its class."""
        return self._classes.pop(name)

    def __getitem__(self, name: str) -> T:
        try:
            return self._classes[name]
        except KeyError:
            raise InputError(f"unknown {self.kind} {name!r}; choose one of "
                             f"{', '.join(self._classes)}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._classes

    def __iter__(self) -> Iterator[str]:
        return iter(self._classes)

    def __len__(self) -> int:
        return len(self._classes)

    def names(self) -> tuple[str, ...]:
        return tuple(self._classes)

    def values(self) -> Iterator[T]:
        return iter(self._classes.values())

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(self._classes.items())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._classes)})"
