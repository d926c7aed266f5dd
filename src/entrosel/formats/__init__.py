"""Record formats (ShareGPT, messages, Alpaca, text) and rendering a record to text."""
from entrosel.formats.render import (FORMATS, TURN_SEPARATOR, Renderer, RenderError, Turn,
                                     detect_record_format, render_text, turns_text)

__all__ = ["FORMATS", "TURN_SEPARATOR", "RenderError", "Renderer", "Turn",
           "detect_record_format", "render_text", "turns_text"]
from entrosel.formats.serialize import SERIALIZATIONS, Framing, Serialization, serialize

__all__ += ["SERIALIZATIONS", "Framing", "Serialization", "serialize"]
