"""What the tests of docs/integrations.md share: the page's pool (``data/pool.jsonl``, short
records and exact copies among them) and the ids the command line keeps from it."""
from __future__ import annotations

import json
import random
from pathlib import Path

from entrosel.cli import main

from .conftest import write_jsonl

DOC = Path(__file__).resolve().parents[1] / "docs" / "integrations.md"
_WORDS = ("data model train token text compress select ratio entropy law budget sample pool "
          "shard filter copy the a of and to in is it that").split()


def pool_records() -> list[dict]:
    """48 records of 3 to 35 words (some under 40 characters), then copies of three."""
    rng = random.Random(7)
    rows = [{"id": f"d{i:02d}", "text": " ".join(rng.choice(_WORDS) for _ in range(rng.choice([3, 5, 12, 20, 35]))),
             "source": "books" if i % 3 == 0 else "web"} for i in range(48)]
    rows += [{"id": f"copy{j}", "text": rows[j]["text"], "source": "mirror"} for j in (5, 17, 30)]
    return rows


def write_pool(folder: Path) -> Path:
    """``folder/data/pool.jsonl``, the file the page's examples read."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    return write_jsonl(folder / "data" / "pool.jsonl", pool_records())


def cli_ids(pool: Path, work: Path, *, clean: bool = True) -> list[str]:
    """The ids the page's commands keep, in output order: length filter and dedup (``clean``),
    then ZIP with a budget of 8."""
    source = pool
    if clean:
        assert main(["filter", "length", str(pool), "-o", str(work / "long.jsonl"), "--min-chars", "40"]) == 0
        assert main(["filter", "dedup", str(work / "long.jsonl"), "-o", str(work / "clean.jsonl")]) == 0
        source = work / "clean.jsonl"
    assert main(["select", "zip", str(source), "-o", str(work / "picked.jsonl"), "--budget", "8"]) == 0
    return jsonl_ids(work / "picked.jsonl")


def jsonl_ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines() if line.strip()]
