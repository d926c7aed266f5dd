"""A pool may be a path, a list of dicts, a pandas DataFrame or a Hugging Face Dataset; the
same selection comes out of each, and ``subset`` gives it back as the kind it came as."""
from __future__ import annotations

import pytest

from entrosel import (CompressionScorer, PruneSelector, RandomSelector, TargetSelector,
                      ZipSelector, read_records)

from .conftest import write_jsonl

pandas = pytest.importorskip("pandas")
datasets = pytest.importorskip("datasets")

RECORDS = [{"id": f"r{i}", "text": f"sample {i}: " + "some words " * (i % 9) + "end " * (i % 4)}
           for i in range(40)]


@pytest.fixture
def pools(tmp_path):
    return {"path": write_jsonl(tmp_path / "pool.jsonl", RECORDS), "list": list(RECORDS),
            "frame": pandas.DataFrame(RECORDS), "dataset": datasets.Dataset.from_list(RECORDS)}


def _ids(subset) -> list[str]:
    if isinstance(subset, pandas.DataFrame):
        return subset["id"].tolist()
    if isinstance(subset, datasets.Dataset):
        return subset["id"]
    return [r["id"] for r in subset]


@pytest.mark.parametrize("make", [
    lambda tmp: ZipSelector(budget=9, k1=20, k2=8, k3=3, workers=1),
    lambda tmp: TargetSelector(target=RECORDS[:5], budget=7, workers=1),
    lambda tmp: RandomSelector(budget=6, seed=2),
], ids=["zip", "target", "random"])
def test_every_kind_of_pool_gives_the_same_subset_back_as_its_kind(pools, tmp_path, make):
    subsets = {kind: make(tmp_path).subset(pool) for kind, pool in pools.items()}
    assert isinstance(subsets["frame"], pandas.DataFrame)
    assert isinstance(subsets["dataset"], datasets.Dataset)
    assert isinstance(subsets["list"], list) and isinstance(subsets["path"], list)
    chosen = _ids(subsets["path"])
    assert len(chosen) > 0 and all(_ids(s) == chosen for s in subsets.values())
    # a DataFrame keeps its index labels: the input rows, in selection order
    assert subsets["frame"].index.tolist() == [int(i[1:]) for i in chosen]


def test_scores_of_a_dataframe_feed_a_selector(pools, tmp_path):
    scores = tmp_path / "scores.jsonl"
    CompressionScorer().score_file(pools["frame"], scores)
    assert [r.data["id"] for r in read_records(scores)] == [r["id"] for r in RECORDS]
    kept = PruneSelector(scores=str(scores), by="compression_ratio", keep=0.5).subset(pools["dataset"])
    assert isinstance(kept, datasets.Dataset) and len(kept) == 20
