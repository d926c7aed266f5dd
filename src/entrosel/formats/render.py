"""Recognise a record's format and render it to text.

Formats, detected per record by their keys:

- ``sharegpt``: ``conversations``, a list of ``{"from": ..., "value": ...}``
- ``messages``: ``messages``, a list of ``{"role": ..., "content": ...}`` (OpenAI style)
- ``alpaca``:   ``instruction``, optional ``input``, ``output``
- ``text``:     ``text``, a string

A record renders to its turns' texts joined by a blank line (``TURN_SEPARATOR``): no ids,
no keys, no role names. ``text_field`` (a field holding the text) or ``template`` (a
``str.format`` template over the record's fields) override detection.
"""
from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any, Mapping

FORMATS = ("sharegpt", "messages", "alpaca", "text")
TURN_SEPARATOR = "\n\n"

# ShareGPT dumps name the assistant after the product that answered.
_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "chatgpt": "assistant",
          "bing": "assistant", "bard": "assistant", "assistant": "assistant", "model": "assistant",
          "system": "system"}


class RenderError(ValueError):
    """A record has no text the format can find; the message says why."""


@dataclass(frozen=True, slots=True)
class Turn:
    """One piece of a record's text. ``role`` is ``user``, ``assistant``, ``system``, ``tool``
    or ``text`` (plain documents and templates)."""

    role: str
    text: str


def turns_text(turns: list[Turn]) -> str:
    """The text of a record's turns: their texts joined by a blank line."""
    return TURN_SEPARATOR.join(t.text for t in turns)


def detect_record_format(record: Mapping[str, Any]) -> str | None:
    """The format of one record, or ``None`` when no known layout matches."""
    if "conversations" in record:
        return "sharegpt"
    if "messages" in record:
        return "messages"
    if "instruction" in record and "output" in record:
        return "alpaca"
    if "text" in record:
        return "text"
    return None


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise RenderError(f"{where} must be a string, found {type(value).__name__}")
    return value


def _chat_turns(record: Mapping[str, Any], key: str, role_key: str, text_key: str) -> list[Turn]:
    turns = record[key]
    if not isinstance(turns, list):
        raise RenderError(f"'{key}' must be a list of turns, found {type(turns).__name__}")
    if not turns:
        raise RenderError(f"'{key}' is empty: the record has no text")
    out = []
    for i, turn in enumerate(turns):
        # isinstance(dict) first: JSON gives dicts, and the ABC check is slow on hot paths
        if not (isinstance(turn, dict) or isinstance(turn, Mapping)) or text_key not in turn:
            raise RenderError(f"{key}[{i}] has no '{text_key}'")
        text = turn[text_key]
        if not isinstance(text, str):
            _string(text, f"{key}[{i}].{text_key}")
        role = turn.get(role_key)
        role = "user" if role is None else str(role).lower()
        out.append(Turn(_ROLES.get(role, role), text))
    return out


def _alpaca_turns(record: Mapping[str, Any]) -> list[Turn]:
    prompt = _string(record["instruction"], "'instruction'")
    extra = record.get("input")
    if extra:
        prompt += TURN_SEPARATOR + _string(extra, "'input'")
    return [Turn("user", prompt), Turn("assistant", _string(record["output"], "'output'"))]


def _template_fields(template: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


@dataclass(frozen=True)
class Renderer:
    """Turns records into text. ``text_field`` or ``template`` override format detection."""

    text_field: str | None = None
    template: str | None = None

    def __post_init__(self) -> None:
        if self.text_field and self.template:
            raise ValueError("give text_field or template, not both")
        if self.template is not None:
            try:
                _template_fields(self.template)
            except ValueError as e:
                raise RenderError(f"bad template {self.template!r}: {e}") from None

    def turns(self, record: Mapping[str, Any]) -> list[Turn]:
        if self.text_field:
            if self.text_field not in record:
                raise RenderError(f"no field {self.text_field!r} (fields: {', '.join(map(str, record))})")
            return [Turn("text", _string(record[self.text_field], repr(self.text_field)))]
        if self.template is not None:
            missing = [f for f in _template_fields(self.template) if f not in record]
            if missing:
                raise RenderError(f"template field {missing[0]!r} is not in the record "
                                  f"(fields: {', '.join(map(str, record))})")
            try:
                return [Turn("text", self.template.format_map(record))]
            except (KeyError, IndexError, AttributeError, ValueError, TypeError) as e:
                raise RenderError(f"template does not apply to the record: {e}") from None
        fmt = detect_record_format(record)
        if fmt == "sharegpt":
            return _chat_turns(record, "conversations", "from", "value")
        if fmt == "messages":
            return _chat_turns(record, "messages", "role", "content")
        if fmt == "alpaca":
            return _alpaca_turns(record)
        if fmt == "text":
            return [Turn("text", _string(record["text"], "'text'"))]
        keys = ", ".join(map(str, record)) or "none"
        raise RenderError(f"no text found (fields: {keys}); expected conversations, messages, "
                          "instruction/output or text; name the field with --text-field or "
                          "give a --template")

    def text(self, record: Mapping[str, Any]) -> str:
        return turns_text(self.turns(record))


def render_text(record: Mapping[str, Any], text_field: str | None = None,
                template: str | None = None) -> str:
    """Render one record to the text entrosel scores.

    The record's turns (conversation turns, or instruction+input then output, or the
    ``text`` field) joined by a blank line; no ids, keys or role names. Raises
    :class:`RenderError` when the record has no text the format can find.
    """
    return Renderer(text_field, template).text(record)
