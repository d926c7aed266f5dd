"""``hf://`` names in ``score`` and ``run``, and ``measure --on-error skip`` on one (issue 28),
offline, from a data set saved in a temporary ``datasets`` cache."""
from __future__ import annotations

import json
import textwrap

import pytest

from entrosel.cli import main
from entrosel.commands.recipe import run_recipe

from .test_io import _hub_cache, offline_hub  # noqa: F401 (the fixture)

NAME = "hf://datasets/tiny-org/pool:train"


def test_score_reads_a_hub_name(offline_hub, tmp_path):
    assert main(["score", "compression", NAME, "-o", str(tmp_path / "s.jsonl")]) == 0
    rows = [json.loads(x) for x in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [r["id"] for r in offline_hub]


def test_a_recipe_runs_on_a_hub_name_and_caches_by_its_fingerprint(offline_hub, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(textwrap.dedent("""\
        steps:
          - filter length: {min_chars: 30}
          - select zip: {budget: 1, workers: 1}
        """))
    out = tmp_path / "out.jsonl"
    first = run_recipe(recipe, NAME, out, trace=tmp_path / "t.jsonl")
    assert (first.ran, first.records) == (2, 1)
    trace = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    kept = [json.loads(x)["id"] for x in out.read_text().splitlines()]
    assert sorted(kept + [r["id"] for r in trace]) == [r["id"] for r in offline_hub]
    assert run_recipe(recipe, NAME, out).cached == 2  # the same data set: its steps are cached
    assert not list(tmp_path.glob("hf:*")), "no folder named after the Hub name"


def test_measure_skip_on_a_hub_name_writes_its_rejects_here(tmp_path, monkeypatch, capsys):
    datasets = pytest.importorskip("datasets")
    import huggingface_hub.constants

    rows = [{"id": "h0", "text": "some text here"}, {"id": "h1", "text": None}]
    cache = _hub_cache(tmp_path, "tiny-org/gaps", rows)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.chdir(tmp_path)
    assert main(["measure", "hf://datasets/tiny-org/gaps:train", "--on-error", "skip", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert (row["records"], row["rejected"]) == (1, 1)
    assert row["rejects_file"] == "tiny-org__gaps__train.rejects.jsonl"
    assert json.loads((tmp_path / row["rejects_file"]).read_text())["index"] == 1
    assert not (tmp_path / "hf:").exists()
