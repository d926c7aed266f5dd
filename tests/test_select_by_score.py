"""Score-based selectors: prune, top-k, percentile band, random."""
from __future__ import annotations

import json

import numpy as np
import pytest

from entrosel.errors import InputError
from entrosel.selection.by_score import band, prune, random_subset, top_k
from tests.conftest import write_jsonl
from tests.test_cli import entrosel

SCORES = np.array([0.5, 0.1, 0.9, 0.1, 0.7, 0.3])


def test_prune_drops_the_lowest_first_and_keeps_input_order():
    assert prune(SCORES, keep=0.5).tolist() == [0, 2, 4]
    assert prune(SCORES, budget=4).tolist() == [0, 2, 4, 5]
    # ties: position 1 and 3 both score 0.1; the lower position survives longer
    assert prune(SCORES, budget=5).tolist() == [0, 1, 2, 4, 5]
    assert prune(SCORES, budget=2, drop="highest").tolist() == [1, 3]
    assert prune(SCORES, keep=1.0).tolist() == list(range(6))
    assert prune(SCORES, keep=0.0).tolist() == []


def test_token_budget_stops_once_reached():
    tokens = np.array([10, 10, 10, 10, 10, 10])
    assert top_k(SCORES, budget_tokens=25, tokens=tokens).tolist() == [2, 4, 0]
    assert top_k(SCORES, budget_tokens=20, tokens=tokens).tolist() == [2, 4]
    with pytest.raises(InputError, match="token counts"):
        top_k(SCORES, budget_tokens=5)


def test_top_k_ranks():
    assert top_k(SCORES, budget=3).tolist() == [2, 4, 0]
    assert top_k(SCORES, budget=3, largest=False).tolist() == [1, 3, 5]


def test_band_is_a_percentile_band():
    x = np.arange(100, dtype=float)
    assert band(x, 30, 60).tolist() == list(range(30, 60))
    assert band(x, 0, 30).tolist() == list(range(0, 30))
    assert band(x, 60, 100).tolist() == list(range(60, 100))
    with pytest.raises(InputError, match="--low < --high"):
        band(x, 60, 30)


def test_random_is_seeded_and_without_replacement():
    a = random_subset(100, seed=3, budget=20)
    assert a.tolist() == random_subset(100, seed=3, budget=20).tolist()
    assert a.tolist() != random_subset(100, seed=4, budget=20).tolist()
    assert len(set(a.tolist())) == 20


def test_errors():
    with pytest.raises(InputError, match="--keep"):
        prune(SCORES)
    with pytest.raises(InputError, match="fraction"):
        prune(SCORES, keep=1.5)
    with pytest.raises(InputError, match="missing"):
        prune(np.array([1.0, np.nan]), keep=0.5)


def test_cli_prune_topk_band_random(tmp_path, real_exchanges):
    records = real_exchanges[:100]
    pool = write_jsonl(tmp_path / "pool.jsonl", records)
    scores = tmp_path / "scores.csv"
    entrosel("score", "compression", pool, "-o", scores, check=True)
    ratios = np.array([float(line.split(",")[2]) for line in scores.read_text().splitlines()[1:]])

    def out_ids(name):
        return [json.loads(x)["id"] for x in (tmp_path / name).read_text().splitlines()]

    r = entrosel("select", "prune", pool, "-o", tmp_path / "p.jsonl", "--scores", scores,
                 "--by", "compression_ratio", "--keep", "0.7", check=True)
    assert "70 records selected" in r.stderr
    assert out_ids("p.jsonl") == [records[i]["id"] for i in prune(ratios, keep=0.7)]
    entrosel("select", "topk", pool, "-o", tmp_path / "t.jsonl", "--scores", scores,
             "--by", "compression_ratio", "--budget", "5", "--smallest", check=True)
    assert out_ids("t.jsonl") == [records[i]["id"] for i in top_k(ratios, budget=5, largest=False)]
    entrosel("select", "band", pool, "-o", tmp_path / "b.jsonl", "--scores", scores,
             "--by", "compression_ratio", "--low", "30", "--high", "60", check=True)
    assert out_ids("b.jsonl") == [records[i]["id"] for i in band(ratios, 30, 60)]
    entrosel("select", "random", pool, "-o", tmp_path / "r.jsonl", "--budget", "10", "--seed", "7", check=True)
    assert out_ids("r.jsonl") == [records[i]["id"] for i in random_subset(100, seed=7, budget=10)]

    r = entrosel("select", "prune", pool, "-o", tmp_path / "x.jsonl", "--scores", scores,
                 "--by", "info", "--keep", "0.5")
    assert r.returncode == 2 and "no column 'info'" in r.stderr
