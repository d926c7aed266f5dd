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


def test_packing_training_and_held_out_loss(real_exchanges):
    import torch

    from entrosel.formats.render import render_text
    from entrosel.probe.train import (evaluation_loss, pack_blocks, probe_size, train_model,
                                      train_tokenizer)

    texts = [render_text(r) for r in real_exchanges[:40]]
    spec = probe_size("tiny")
    tokenizer = train_tokenizer(texts, 600)
    blocks, n_tokens = pack_blocks(texts, tokenizer, spec.context)
    ids = [t for text in texts for t in tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]]
    assert n_tokens == len(ids) and blocks.shape == (len(ids) // spec.context, spec.context)
    assert blocks.flatten().tolist() == ids[: blocks.numel()]
    capped, _ = pack_blocks(texts, tokenizer, spec.context, max_blocks=3)
    assert torch.equal(capped, blocks[:3])

    model, metrics = train_model(blocks, tokenizer, spec, seed=1, progress=False)
    assert metrics["steps"] == -(-len(blocks) // spec.batch_size)
    held = blocks[:5]
    # the mean NLL of every predicted token, computed here from the logits
    with torch.inference_mode():
        logp = torch.log_softmax(model(input_ids=held).logits[:, :-1].double(), dim=-1)
        expected = -logp.gather(-1, held[:, 1:, None]).mean().item()
    assert evaluation_loss(model, held, batch_size=2) == pytest.approx(expected, rel=1e-5)


def test_device_reaches_probe_training(tmp_path, monkeypatch, alpaca_records):
    """prune and law --probe hand --device to the probe's training (one vocabulary)."""
    from entrosel.cli import main
    from entrosel.commands import probe
    from tests.conftest import write_jsonl

    from entrosel.errors import InputError

    seen = []

    def fake_probe_train(*args, device="unset", **kwargs):
        seen.append(device)
        raise InputError("stopped here")  # the CLI turns it into exit 2

    monkeypatch.setattr(probe, "probe_train", fake_probe_train)  # law imports it from there
    pool = write_jsonl(tmp_path / "p.jsonl", alpaca_records)
    assert main(["prune", str(pool), "-o", str(tmp_path / "o.jsonl"), "--keep", "0.5",
                 "--device", "cpu:0"]) == 2
    assert main(["law", "measure", str(pool), "--probe", "--device", "cpu:1"]) == 2
    assert seen == ["cpu:0", "cpu:1"]
