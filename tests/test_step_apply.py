"""One way to run a step, whatever its kind: ``Step.apply`` on records read once returns the
positions kept or a score file (a :class:`StepResult`), and a recipe runs every registered
step through it, a plugin's too."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

import pytest

from entrosel.commands.recipe import run_recipe, steps
from entrosel.filters import FILTERS, Dedup, Filter, LengthFilter, Removal
from entrosel.io.readers import read_records
from entrosel.params import Param, option
from entrosel.pool import RecordSet
from entrosel.scoring import CompressionScorer
from entrosel.selection import TopKSelector, ZipSelector
from entrosel.step import StepFiles, StepResult

from .conftest import write_jsonl


def _exchange(i: int, answer: str) -> dict:
    return {"id": f"r{i}", "conversations": [{"from": "human", "value": f"Question {i}?"},
                                             {"from": "gpt", "value": answer}]}


# r3 repeats r0 word for word; r4 is short; r5 repeats itself (it compresses best)
POOL = [_exchange(0, "Rivers carry water downhill to the sea, shaping valleys as they go."),
        _exchange(1, "Prime numbers have exactly two divisors: one and themselves, nothing else."),
        _exchange(2, "Bread rises because yeast turns sugar into carbon dioxide while it proves."),
        _exchange(0, "Rivers carry water downhill to the sea, shaping valleys as they go."),
        _exchange(4, "Yes."),
        _exchange(5, "tea tea tea tea tea tea tea tea tea tea tea tea tea tea tea tea tea tea.")]


@pytest.fixture
def records() -> RecordSet:
    return RecordSet.read(POOL)


def test_a_filter_returns_the_positions_it_keeps_and_why_the_others_went(tmp_path, records):
    result = Dedup().apply(records, StepFiles(tmp_path / "01-filter-dedup"))
    assert isinstance(result, StepResult)
    assert result.kept == [0, 1, 2, 4, 5] and result.scores is None
    assert result.line.startswith("entrosel filter dedup: 5 of 6 records kept, 1 removed")
    assert result.line.endswith(f"-> {tmp_path / '01-filter-dedup.kept.npy'}")
    drops = result.drops()
    assert list(drops) == [3] and drops[3].duplicate_of == 0
    # the removed record's row, naming the kept record it repeats
    [row] = [r.data for r in read_records(tmp_path / "01-filter-dedup.removed.jsonl.gz")]
    assert row["index"] == 3 and row["duplicate_of"] == 0

    result = LengthFilter(min_response_chars=10).apply(records, StepFiles(tmp_path / "02-filter-length"))
    assert result.kept == [0, 1, 2, 3, 5] and result.drops()[4].reason


def test_a_scorer_writes_a_score_file_and_passes_every_record_on(tmp_path, records):
    result = CompressionScorer().apply(records, StepFiles(tmp_path / "01-score-compression"),
                                       reading={"on_error": "raise"})
    assert result.kept is None and result.drops is None
    assert result.scores == tmp_path / "01-score-compression.scores.jsonl"
    rows = [json.loads(line) for line in result.scores.read_text().splitlines()]
    assert [r["index"] for r in rows] == list(range(len(POOL)))
    assert result.line.startswith("entrosel score compression: 6 records scored")
    assert result.line.endswith(f"-> {result.scores}")


def test_a_selector_returns_the_positions_it_picks_in_its_order(tmp_path, records):
    scored = CompressionScorer().apply(records, StepFiles(tmp_path / "01-score-compression"))
    ratio = {r["index"]: r["compression_ratio"]
             for r in map(json.loads, scored.scores.read_text().splitlines())}
    selector = TopKSelector(scores=str(scored.scores), by="compression_ratio", budget=2)
    result = selector.apply(records, StepFiles(tmp_path / "02-select-topk"), progress=False)
    assert result.kept == sorted(ratio, key=lambda i: (-ratio[i], i))[:2]
    assert result.kept[0] == 5 and result.scores is None
    assert result.line.startswith("entrosel select topk: 2 records")
    drops = result.drops()
    assert sorted(drops) == sorted(set(range(6)) - set(result.kept))
    assert {d.reason for d in drops.values()} == {"not_top"}


def test_the_run_settings_go_to_a_copy_of_a_selector_that_holds_them(tmp_path, records):
    zip_ = ZipSelector(budget=3, workers=1)
    result = zip_.apply(records, StepFiles(tmp_path / "01-select-zip"), progress=False,
                        reading={"on_error": "skip"})
    assert len(result.kept) == 3 and 3 not in result.kept[:2]  # r3 repeats r0: not picked early
    assert (zip_.progress, zip_.on_error) == (None, "raise")  # the caller's hyper-parameters stay


@dataclass
class NoYesFilter(Filter):
    """A plugin's filter, known to no recipe code: drop answers that are only a given word
    (registered by the test that uses it, so no other test's command line sees it)."""

    word: str = option("yes.", "the answer to drop", param=Param(str))

    help: ClassVar[str] = "drop one-word answers"

    def judge(self, batch):
        return [Removal("one_word", f"answers {self.word!r}") if turns[-1].text.lower() == self.word
                else None for _, turns in batch]


@pytest.fixture
def plugin():
    FILTERS.register("no_yes")(NoYesFilter)
    try:
        yield NoYesFilter
    finally:
        FILTERS.unregister("no_yes")
        steps()  # and the recipe forgets its step


def test_a_plugin_filter_is_a_recipe_step_run_through_apply(tmp_path, plugin, monkeypatch):
    applied = []
    inherited = Filter.apply

    def spy(self, records, files, **run):
        applied.append((type(self), len(records)))
        return inherited(self, records, files, **run)

    monkeypatch.setattr(Filter, "apply", spy)
    pool = write_jsonl(tmp_path / "pool.jsonl", POOL)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("steps:\n  - filter dedup: {}\n  - filter no_yes: {word: 'yes.'}\n")
    out = tmp_path / "out.jsonl"
    result = run_recipe(recipe, pool, out, trace=tmp_path / "trace.jsonl")
    assert applied == [(Dedup, 6), (NoYesFilter, 5)]
    assert [r.data["id"] for r in read_records(out)] == ["r0", "r1", "r2", "r5"]
    assert result.lines[1].startswith("entrosel filter no_yes: 4 of 5 records kept, 1 removed (one_word 1)")
    trace = {r.data["id"]: r.data for r in read_records(tmp_path / "trace.jsonl")}
    assert trace["r4"]["step"] == "filter no_yes" and trace["r4"]["reason"] == "one_word"
