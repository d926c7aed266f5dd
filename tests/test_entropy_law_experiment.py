"""The experiment script's own logic (benchmarks/entropy_law_experiment.py): the ShareGPT split
and the entropy law's statistics. Its full runs are documented in docs/RESULTS.md."""
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "entropy_law_experiment.py"


@pytest.fixture(scope="module")
def experiment():
    spec = importlib.util.spec_from_file_location("entropy_law_experiment", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_sharegpt_split_keeps_conversations_whole(experiment, tmp_path):
    """Exchanges go with their conversation, also when an empty conversation has the same id
    just before it (ShareGPT has such ids); held-out and pool share no conversation."""
    turn = [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]
    conversations = [{"id": "a", "conversations": turn}, {"id": "b", "conversations": []},
                     {"id": "b", "conversations": turn}] + [{"id": f"c{i}", "conversations": turn} for i in range(6)]
    exchanges = [{"id": "a_0"}, {"id": "a_1"}, {"id": "b_0"}] + [{"id": f"c{i}_0"} for i in range(6)]
    _jsonl(tmp_path / "sharegpt-conversations.jsonl", conversations)
    path = _jsonl(tmp_path / "pool.jsonl", exchanges)
    cfg = experiment.Config(pool=5, heldout=2)
    pool, heldout = experiment.split_sharegpt(cfg, path)
    assert len(pool) == 5 and len(heldout) == 2
    conversation = lambda rows: {r["id"].rsplit("_", 1)[0] for r in rows}
    assert not conversation(pool) & conversation(heldout)
    ids = [r["id"] for r in pool + heldout]
    assert len(ids) == len(set(ids))
    if "a_0" in ids:  # a's two exchanges stay side by side
        assert abs(ids.index("a_0") - ids.index("a_1")) == 1 or "a_1" not in ids


def test_law_fit_recovers_a_plane_and_spearman_ranks(experiment):
    rng = np.random.default_rng(0)
    R, L = rng.uniform(2, 4, 12), rng.uniform(5, 7, 12)
    Z = 1.0 + 0.5 * R - 0.25 * L
    fit = experiment.law_fit(list(R), list(L), list(Z))
    assert fit["a"] == pytest.approx(1.0) and fit["b"] == pytest.approx(0.5) and fit["c"] == pytest.approx(-0.25)
    assert fit["rmse"] < 1e-9 and fit["loo_rmse"] < 1e-9
    assert experiment.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert experiment.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
