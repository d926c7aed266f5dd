"""The data probe and the one-command pruning pipeline."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from entrosel.commands.probe import probe_train  # noqa: E402
from entrosel.scoring.lm import load_causal_lm  # noqa: E402
from tests.conftest import write_jsonl  # noqa: E402
from tests.test_cli import entrosel  # noqa: E402


@pytest.fixture(scope="module")
def pool(tmp_path_factory, real_exchanges):
    return write_jsonl(tmp_path_factory.mktemp("probe") / "pool.jsonl", real_exchanges[:60])


def test_probe_is_deterministic_and_loadable(tmp_path, pool):
    a = probe_train(pool, tmp_path / "a", epochs=2, seed=3)
    b = probe_train(pool, tmp_path / "b", epochs=2, seed=3)
    assert a["losses"] == b["losses"]
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()
    c = probe_train(pool, tmp_path / "c", epochs=1, seed=4)
    assert c["losses"] != a["losses"][: len(c["losses"])]
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert metrics["first_epoch_loss"] == pytest.approx(sum(metrics["losses"][: metrics["steps"] // 2]) / (metrics["steps"] // 2))
    assert metrics["epoch_losses"][1] < metrics["epoch_losses"][0]  # it learns
    model, tok = load_causal_lm(str(tmp_path / "a"))
    assert tok.bos_token_id is not None and model.config.n_layer == 2


def test_prune_pipeline_cli(tmp_path, pool):
    out = tmp_path / "kept.jsonl"
    scores = tmp_path / "scores.jsonl"
    # --max-length defaults to 1024; the tiny probe has 128 positions, so windows shrink to it
    r = entrosel("prune", pool, "-o", out, "--keep", "0.5", "--scores-out", scores)
    assert r.returncode == 0, r.stderr
    assert "30 records kept" in r.stderr
    rows = [json.loads(x) for x in scores.read_text().splitlines()]
    threshold = sorted(row["info"] for row in rows)[30]
    kept = {json.loads(x)["id"] for x in out.read_text().splitlines()}
    assert kept == {row["id"] for row in rows if row["info"] >= threshold}
    # the same through the separate verbs, with the probe saved
    entrosel("probe", "train", pool, "-o", tmp_path / "probe", check=True)
    entrosel("score", "lm", pool, "-o", tmp_path / "s2.jsonl", "--model", tmp_path / "probe", check=True)
    assert json.loads((tmp_path / "s2.jsonl.meta.json").read_text())["max_length"] == 128
    assert [json.loads(x)["info"] for x in (tmp_path / "s2.jsonl").read_text().splitlines()] == \
        pytest.approx([row["info"] for row in rows])
    entrosel("select", "prune", pool, "-o", tmp_path / "kept2.jsonl", "--scores", tmp_path / "s2.jsonl",
             "--by", "info", "--keep", "0.5", check=True)
    assert (tmp_path / "kept2.jsonl").read_bytes() == out.read_bytes()
