"""Token counts with a Hugging Face tokenizer (the ``[lm]`` extra)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import numpy as np

from entrosel.errors import InputError


def load_tokenizer(name_or_path: str) -> Any:
    """A ``tokenizer.json`` file (``tokenizers``), or a folder / hub name (``transformers``)."""
    path = Path(name_or_path)
    if path.is_file():
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise InputError("--tokenizer needs the [lm] extra: pip install 'entrosel[lm]'") from None
        try:
            return Tokenizer.from_file(str(path))
        except Exception as e:
            raise InputError(f"not a tokenizer.json file: {e}", path) from None
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise InputError("--tokenizer with a folder or hub name needs the [lm] extra: "
                         "pip install 'entrosel[lm]'") from None
    try:
        return AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError) as e:
        raise InputError(f"cannot load tokenizer {name_or_path!r}: {e}") from None


def count_tokens(texts: Iterable[str], tokenizer: Any, batch_size: int = 1024) -> np.ndarray:
    """Number of tokens in each text, without special tokens."""
    counts: list[int] = []
    batch: list[str] = []

    def flush() -> None:
        if not batch:
            return
        if hasattr(tokenizer, "encode_batch"):  # tokenizers.Tokenizer
            counts.extend(len(e.ids) for e in tokenizer.encode_batch(batch, add_special_tokens=False))
        else:  # transformers tokenizer
            counts.extend(len(ids) for ids in tokenizer(batch, add_special_tokens=False)["input_ids"])
        batch.clear()

    for text in texts:
        batch.append(text)
        if len(batch) >= batch_size:
            flush()
    flush()
    return np.asarray(counts, dtype=np.int64)


def record_token_counts(source: Any, indices: Iterable[int] | None, tokenizer: str,
                        options: Any) -> np.ndarray:
    """Token counts of the rendered text of the records at input ``indices`` (in that order),
    or of every readable record in input order when ``indices`` is None.

    ``options`` is the :class:`entrosel.pool.InputOptions` the records were read with.
    """
    from entrosel.formats.render import turns_text
    from entrosel.io.records import Rejects
    from entrosel.pool import iter_records, rendered_records

    if indices is None:  # records that do not render were rejected where they were read
        texts = (turns_text(turns) for _, turns in rendered_records(source, options, Rejects("skip")))
    else:
        renderer = options.serialization.renderer
        records = iter_records(source, options.input_format, Rejects("skip"))
        order = [int(i) for i in indices]
        wanted = set(order)
        by_index = {r.index: renderer.text(r.data) for r in records if r.index in wanted}
        texts = (by_index[i] for i in order)
    return count_tokens(texts, load_tokenizer(tokenizer))
