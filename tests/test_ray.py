"""ZIP on Ray actors: the same selection as the local engine, also when an actor dies."""
from __future__ import annotations

import os
import signal

import pytest

ray = pytest.importorskip("ray")

from entrosel import ZipSelector, select_zip  # noqa: E402
from entrosel.engines import ray as ray_engine  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.mark.parametrize("compressor", ["zlib", "zstd"])
def test_same_selection_as_local(local_ray, real_exchanges, compressor):
    records = real_exchanges[:200]
    options = dict(k1=60, k2=20, k3=8, serialize="repr", compressor=compressor)
    local = select_zip(records, 40, workers=1, **options)
    assert select_zip(records, 40, workers=2, engine="ray", **options) == local


@pytest.mark.parametrize("compressor", ["zlib", "zstd"])
def test_killed_actor_is_replaced_and_the_answer_stays(local_ray, real_exchanges, monkeypatch,
                                                       compressor):
    records = real_exchanges[:200]
    options = dict(k1=60, k2=20, k3=8, compressor=compressor)
    expected = select_zip(records, 40, workers=1, **options)
    groups = []
    original = ray_engine.RayWorkerGroup.scatter
    calls = {"n": 0}

    def scatter(self, method, items, *args):
        calls["n"] += 1
        # mid-run: stage 2 of round 3 (the selection's anchor replayed call by call; stage 3
        # runs on the driver)
        if calls["n"] == 3:
            os.kill(ray.get(self.actors[0].pid.remote()), signal.SIGKILL)
            groups.append(self)
        return original(self, method, items, *args)

    monkeypatch.setattr(ray_engine.RayWorkerGroup, "scatter", scatter)
    sel = ZipSelector(budget=40, workers=2, engine="ray", **options)
    assert sel.select(records) == expected
    assert groups and groups[0].restarts >= 1


def _many_records(path, n):
    import json
    import random

    rng = random.Random(1)
    words = ["alpha", "beta", "gamma", "delta", "epsilon"]
    path.write_text("".join(json.dumps({"id": i, "text": " ".join(rng.choice(words) for _ in range(rng.randint(1, 30)))})
                            + "\n" for i in range(n)))
    return path


def test_score_compression_on_ray_equals_local(local_ray, tmp_path):
    from entrosel.commands.sharded import score

    pool = _many_records(tmp_path / "pool.jsonl", 9000)  # 3 blocks of 4096 records: 3 shards with rows
    score("compression", pool, tmp_path / "local.jsonl", workers=1)
    s = score("compression", pool, tmp_path / "ray.jsonl", engine="ray", shards=4)
    assert s.records == 9000
    assert (tmp_path / "ray.jsonl").read_bytes() == (tmp_path / "local.jsonl").read_bytes()
    assert len(list((tmp_path / "ray.jsonl.shards").glob("*.done"))) == 4


def test_score_lm_and_prune_on_ray_equal_local(local_ray, tmp_path, real_exchanges):
    pytest.importorskip("transformers")
    from entrosel.commands.sharded import score
    from entrosel.io.writers import write_records
    from entrosel import prune_pool
    from tests.lm_fixtures import tiny_lm

    model = str(tiny_lm(tmp_path / "lm"))
    pool = tmp_path / "pool.jsonl"
    write_records(real_exchanges[:40], pool)
    options = dict(model=model, device="cpu", batch_size=4, max_length=64)
    score("lm", pool, tmp_path / "local.jsonl", **options)
    score("lm", pool, tmp_path / "ray.jsonl", engine="ray", actors=2, **options)
    assert (tmp_path / "ray.jsonl").read_bytes() == (tmp_path / "local.jsonl").read_bytes()
    prune = dict(keep=0.5, model=model, device="cpu", max_length=64)
    prune_pool(pool, tmp_path / "kept-local.jsonl", **prune)
    prune_pool(pool, tmp_path / "kept-ray.jsonl", engine="ray", **prune)
    assert (tmp_path / "kept-ray.jsonl").read_bytes() == (tmp_path / "kept-local.jsonl").read_bytes()


@pytest.mark.parametrize("method", ["dict", "ncd", "dsir"])
def test_select_target_on_ray_equals_local(local_ray, real_exchanges, method):
    from entrosel import TargetSelector

    pool, target = real_exchanges[:300], real_exchanges[400:440]
    options = dict(method=method, budget=30, seed=3)
    local = TargetSelector(workers=1, **options).fit(target)
    picked = local.select(pool)
    on_ray = TargetSelector(engine="ray", workers=2, **options).fit(target)
    assert on_ray.select(pool) == picked
    assert on_ray.scores_.tolist() == local.scores_.tolist()


def test_work_shipped_to_ray_carries_its_bytes(local_ray, real_exchanges, monkeypatch):
    """A Ray task may run on a node without the driver's temporary files: what it is handed
    holds the pool's bytes, not a path to them."""
    from entrosel import TargetSelector
    from entrosel.commands.score import compression_scores
    from entrosel.engines import RayEngine
    from entrosel.pool import PoolBytes, PoolItems

    seen = []
    original = RayEngine.map

    def spy(self, fn, chunks):
        seen.append(fn)
        return original(self, fn, chunks)

    monkeypatch.setattr(RayEngine, "map", spy)
    pool, target = real_exchanges[:120], real_exchanges[400:420]
    on_ray = TargetSelector(engine="ray", workers=2, budget=10).fit(target).select(pool)
    assert on_ray == TargetSelector(workers=1, budget=10).fit(target).select(pool)
    texts = [r["conversations"][0]["value"] for r in pool]
    assert compression_scores(texts, engine="ray").tolist() == compression_scores(texts, workers=1).tolist()
    shipped = [v for fn in seen for v in fn.keywords.values()]
    assert any(isinstance(v, PoolBytes) for v in shipped)
    assert not any(isinstance(v, PoolItems) for v in shipped)
