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


def test_same_selection_as_local(local_ray, real_exchanges):
    records = real_exchanges[:200]
    options = dict(k1=60, k2=20, k3=8, serialize="repr")
    local = select_zip(records, 40, workers=1, **options)
    assert select_zip(records, 40, workers=2, engine="ray", **options) == local


def test_killed_actor_is_replaced_and_the_answer_stays(local_ray, real_exchanges, monkeypatch):
    records = real_exchanges[:200]
    options = dict(k1=60, k2=20, k3=8)
    expected = select_zip(records, 40, workers=1, **options)
    groups = []
    original = ray_engine.RayEvaluatorGroup.ratios
    calls = {"n": 0}

    def ratios(self, anchor, candidates):
        calls["n"] += 1
        if calls["n"] == 30:  # mid-run, inside some round's stage 3
            os.kill(ray.get(self.actors[0].pid.remote()), signal.SIGKILL)
            groups.append(self)
        return original(self, anchor, candidates)

    monkeypatch.setattr(ray_engine.RayEvaluatorGroup, "ratios", ratios)
    sel = ZipSelector(budget=40, workers=2, engine="ray", **options)
    assert sel.select(records) == expected
    assert groups and groups[0].restarts >= 1
