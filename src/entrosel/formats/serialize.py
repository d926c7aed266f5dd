"""How a set of records becomes one byte string, the thing whose compression ratio counts.

A serialization is ``open + sep.join(item(r) for r in records) + close``:

- ``text`` (default): each record rendered to its text (:func:`render_text`), records
  joined by a blank line; no ids, keys or role names.
- ``repr`` (the reference's): ``str(list_of_records).encode()`` as in the official ZIP.py,
  i.e. ``"[" + ", ".join(repr(r) for r in records) + "]"``; ids, keys and roles count too.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from entrosel.formats.render import TURN_SEPARATOR, Renderer

SERIALIZATIONS = ("text", "repr")
RECORD_SEPARATOR = TURN_SEPARATOR


@dataclass(frozen=True)
class Framing:
    """The bytes around and between items; all that the compressors need to know."""

    open: bytes
    sep: bytes
    close: bytes

    def join(self, items: Iterable[bytes]) -> bytes:
        return self.open + self.sep.join(items) + self.close


@dataclass(frozen=True)
class Serialization:
    kind: str = "text"
    renderer: Renderer = field(default_factory=Renderer)

    def __post_init__(self) -> None:
        if self.kind not in SERIALIZATIONS:
            raise ValueError(f"serialize must be one of {', '.join(SERIALIZATIONS)}, not {self.kind!r}")

    @property
    def framing(self) -> Framing:
        if self.kind == "repr":
            return Framing(b"[", b", ", b"]")
        return Framing(b"", RECORD_SEPARATOR.encode(), b"")

    def item(self, record: Mapping[str, Any]) -> bytes:
        """One record's bytes (raises ``RenderError`` for text without text)."""
        if self.kind == "repr":
            return repr(record).encode("utf-8", "surrogatepass")
        return self.renderer.text(record).encode("utf-8", "surrogatepass")

    def serialize(self, records: Iterable[Mapping[str, Any]]) -> bytes:
        return self.framing.join(self.item(r) for r in records)


def serialize(records: Iterable[Mapping[str, Any]], how: str = "text",
              text_field: str | None = None, template: str | None = None) -> bytes:
    """The byte string of a set of records under serialization ``how`` (``text`` or ``repr``)."""
    return Serialization(how, Renderer(text_field, template)).serialize(records)
