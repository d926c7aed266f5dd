"""``filter length``: drop records whose rendered text is too short or too long."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from entrosel.errors import InputError
from entrosel.filters.base import Batch, FILTERS, Filter, Removal
from entrosel.params import Param, check_range, flag, option
from entrosel.formats.render import turns_text
from entrosel.pool import InputOptions, Source

_COUNT = Param(int, low=0)


@FILTERS.register("length")
@dataclass
class LengthFilter(Filter):
    """Keep records whose rendered text (turns joined by a blank line, as every scorer sees
    it) has between ``min_*`` and ``max_*`` characters, words (whitespace-separated) and
    tokens (of ``tokenizer``), bounds inclusive; ``None`` means no bound.
    ``min_response_chars``: every assistant turn (Alpaca: the output) must have at least that
    many characters; a record without one is removed. A removed record is counted under the
    first bound it fails, in the order of the parameters."""

    min_chars: int | None = option(None, "at least N characters", param=_COUNT, metavar="N")
    max_chars: int | None = option(None, "at most N characters", param=_COUNT, metavar="N")
    min_words: int | None = option(None, "at least N whitespace-separated words", param=_COUNT,
                                   metavar="N")
    max_words: int | None = option(None, "at most N whitespace-separated words", param=_COUNT,
                                   metavar="N")
    min_tokens: int | None = option(None, "at least N tokens of --tokenizer", param=_COUNT, metavar="N")
    max_tokens: int | None = option(None, "at most N tokens of --tokenizer", param=_COUNT, metavar="N")
    tokenizer: str | None = option(None, "Hugging Face tokenizer for --min-tokens/--max-tokens "
                                   "([lm] extra)", param=Param(str), metavar="PATH_OR_NAME")
    min_response_chars: int | None = option(None, "every assistant turn has at least N characters",
                                            param=_COUNT, metavar="N")

    help: ClassVar[str] = "drop records too short or too long"

    @classmethod
    def example_options(cls, folder: Path) -> dict[str, Any]:
        return {"min_chars": 150}
    content_fields: ClassVar[tuple[str, ...]] = ("tokenizer",)

    def _check(self) -> None:
        params = self.get_params()
        bounds = [k for k in params if k not in ("tokenizer",) and params[k] is not None]
        if not bounds:
            raise InputError("give at least one bound: " + ", ".join(
                flag(k) for k in params if k != "tokenizer"))
        for unit in ("chars", "words", "tokens"):
            check_range(params, f"min_{unit}", f"max_{unit}")
        wants_tokens = self.min_tokens is not None or self.max_tokens is not None
        if wants_tokens and not self.tokenizer:
            raise InputError("--min-tokens/--max-tokens count tokens of a Hugging Face "
                             "tokenizer: give --tokenizer PATH_OR_NAME")
        if self.tokenizer and not wants_tokens:
            raise InputError("--tokenizer is only used by --min-tokens/--max-tokens")

    def _start(self, source: Source, options: InputOptions) -> None:
        self.tokenizer_: Any = None
        if self.min_tokens is not None or self.max_tokens is not None:
            from entrosel.scoring.tokens import load_tokenizer
            self.tokenizer_ = load_tokenizer(self.tokenizer)

    def judge(self, batch: Batch) -> list[Removal | None]:
        texts = [turns_text(turns) for _, turns in batch]
        tokens = None
        if self.tokenizer_ is not None:
            from entrosel.scoring.tokens import count_tokens
            tokens = count_tokens(texts, self.tokenizer_).tolist()
        out: list[Removal | None] = []
        for i, ((_, turns), text) in enumerate(zip(batch, texts)):
            counts = {"chars": len(text)}
            if self.min_words is not None or self.max_words is not None:
                counts["words"] = len(text.split())
            if tokens is not None:
                counts["tokens"] = tokens[i]
            out.append(self._bounds(counts) or self._responses(turns))
        return out

    def _bounds(self, counts: dict[str, int]) -> Removal | None:
        for unit in ("chars", "words", "tokens"):
            n = counts.get(unit)
            if n is None:
                continue
            low, high = getattr(self, f"min_{unit}"), getattr(self, f"max_{unit}")
            if low is not None and n < low:
                return Removal(f"min_{unit}", f"{n} {unit} < {flag('min_' + unit)} {low}",
                               value=n, threshold=low)
            if high is not None and n > high:
                return Removal(f"max_{unit}", f"{n} {unit} > {flag('max_' + unit)} {high}",
                               value=n, threshold=high)
        return None

    def _responses(self, turns) -> Removal | None:
        if self.min_response_chars is None:
            return None
        responses = [len(t.text) for t in turns if t.role == "assistant"]
        if not responses:
            return Removal("min_response_chars", "no assistant turn")
        shortest = min(responses)
        if shortest < self.min_response_chars:
            return Removal("min_response_chars", f"an assistant turn of {shortest} chars < "
                                                 f"--min-response-chars {self.min_response_chars}",
                           value=shortest, threshold=self.min_response_chars)
        return None
