"""docs/extending.md as it stands: its Python blocks define a filter, a scorer, a selector and an
engine and run the generic checks on them; each is then used from the library and from the
command line."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from entrosel import ENGINES, FILTERS, SCORERS, SELECTORS, ZipSelector, render_text
from entrosel.cli import main
from entrosel.io import read_records

from .conftest import write_jsonl
from .doc_blocks import python_blocks, run_blocks

DOC = Path(__file__).resolve().parents[1] / "docs" / "extending.md"
REGISTERED = {FILTERS: "keyword", SCORERS: "length", SELECTORS: "shortest", ENGINES: "threads"}


@pytest.fixture
def parts():
    """The doc's blocks run as modules; their registrations are undone afterwards."""
    assert len(python_blocks(DOC)) == 5
    try:
        with run_blocks(DOC, "extending_example") as found:
            yield {k: v for k, v in found.items() if k.endswith(("Filter", "Scorer", "Selector", "Engine"))}
    finally:
        for registry, name in REGISTERED.items():
            if name in registry:
                registry.unregister(name)


POOL = [{"id": f"r{i}", "conversations": [{"from": "human", "value": "say " + "word " * (i % 7)},
                                           {"from": "gpt", "value": "ok " * (i % 5 + 1)}]}
        for i in range(30)]


def test_the_scorer_from_the_doc(tmp_path, parts, capsys):
    pool = write_jsonl(tmp_path / "pool.jsonl", POOL)
    out = tmp_path / "lengths.jsonl"
    assert main(["score", "length", str(pool), "-o", str(out), "--unit", "words"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [r["id"] for r in POOL]
    # "say" + i%7 words, a blank line, "ok" x (i%5+1)
    assert [r["length"] for r in rows] == [1 + i % 7 + i % 5 + 1 for i in range(30)]
    assert rows[6]["longest_turn"] == 7
    with pytest.raises(SystemExit) as refused:  # argparse refuses a value outside the choices
        main(["score", "length", str(pool), "-o", str(out), "--unit", "bytes"])
    assert refused.value.code == 2 and "invalid choice: 'bytes'" in capsys.readouterr().err
    s = parts["LengthScorer"]().score_file(pool, tmp_path / "chars.csv")
    assert s.records == 30 and (tmp_path / "chars.csv").read_text().startswith("index,id,length")
    # a registered scorer is a recipe step too, and its scores feed the next selector
    from entrosel.commands.recipe import run_recipe
    recipe = tmp_path / "r.yaml"
    recipe.write_text("steps:\n  - score length: {unit: words}\n  - select topk: {by: length, budget: 3}\n")
    run_recipe(recipe, pool, tmp_path / "longest.jsonl")
    longest = sorted(range(30), key=lambda i: (-(1 + i % 7 + i % 5 + 1), i))[:3]
    assert [r.data["id"] for r in read_records(tmp_path / "longest.jsonl")] == [f"r{i}" for i in longest]


def test_the_selector_from_the_doc(tmp_path, parts, capsys):
    pandas = pytest.importorskip("pandas")
    pool = write_jsonl(tmp_path / "pool.jsonl", POOL)
    out = tmp_path / "short.jsonl"
    assert main(["select", "shortest", str(pool), "-o", str(out), "--budget", "3"]) == 0
    shortest = [POOL[i]["id"] for i in sorted(range(30), key=lambda i: (len(render_text(POOL[i])), i))[:3]]
    assert [r.data["id"] for r in read_records(out)] == shortest
    frame = pandas.DataFrame(POOL)
    subset = parts["ShortestSelector"](budget=3).subset(frame)
    assert isinstance(subset, pandas.DataFrame) and subset["id"].tolist() == shortest
    assert main(["select", "shortest", str(pool), "-o", str(out), "--budget", "31"]) == 2
    assert "--budget (31) is above the pool's 30 readable records" in capsys.readouterr().err


def test_the_engine_from_the_doc(tmp_path, parts):
    pool = write_jsonl(tmp_path / "pool.jsonl", POOL)
    assert main(["score", "compression", str(pool), "-o", str(tmp_path / "local.jsonl"), "--workers", "1"]) == 0
    assert main(["score", "compression", str(pool), "-o", str(tmp_path / "threads.jsonl"),
                 "--engine", "threads", "--workers", "2"]) == 0
    assert (tmp_path / "threads.jsonl").read_bytes() == (tmp_path / "local.jsonl").read_bytes()
    options = dict(budget=8, k1=20, k2=10, k3=4)
    assert ZipSelector(engine=parts["ThreadEngine"](workers=2), **options).select(POOL) == \
        ZipSelector(workers=1, **options).select(POOL)


def test_the_filter_from_the_doc(tmp_path, parts):
    pool = write_jsonl(tmp_path / "pool.jsonl", POOL + [
        {"id": "ai", "conversations": [{"from": "human", "value": "hi"},
                                       {"from": "gpt", "value": "As an AI, I have no opinion."}]}])
    out = tmp_path / "clean.jsonl"
    assert main(["filter", "keyword", str(pool), "-o", str(out), "--words", "as an ai, opinion"]) == 0
    assert [r.data["id"] for r in read_records(out)] == [r["id"] for r in POOL]
    from entrosel.commands.recipe import run_recipe
    recipe = tmp_path / "r.yaml"
    recipe.write_text('steps:\n  - filter keyword: {words: "say word word word"}\n')
    run_recipe(recipe, pool, tmp_path / "kept.jsonl")
    assert len(list(read_records(tmp_path / "kept.jsonl"))) == 31 - sum(i % 7 >= 3 for i in range(30))


def test_the_doc_parts_are_gone_afterwards():
    assert "keyword" not in FILTERS and "length" not in SCORERS and "shortest" not in SELECTORS
    assert "threads" not in ENGINES
