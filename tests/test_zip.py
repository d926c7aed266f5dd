"""ZIP selection: exactly the reference algorithm, on real and adversarial records."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from entrosel import ZipSelector, select_zip
from entrosel.errors import InputError
from entrosel.selection import zip as zip_module
from entrosel.selection.zip import Interrupted
from tests.conftest import write_jsonl
from tests.reference_zip import reference_zip

SETTINGS = [  # (k1, k2, k3, budget)
    (5, 3, 2, 7),
    (10, 4, 3, 10),
    (1000, 200, 100, 13),   # pool smaller than K1 and K2
    (7, 7, 7, 20),
    (3, 1, 1, 5),
    (50, 10, 4, 9),         # budget not a multiple of K3
    (8, 5, 5, None),        # budget = the pool: runs until the pool is empty, short of it
]


def adversarial_records() -> list[dict]:
    long_text = " ".join(f"token{i % 97}-{i * 7919 % 10007}" for i in range(6000))
    recs = [
        {"id": "dup", "text": "the same words again and again"},
        {"id": "dup", "text": "the same words again and again"},
        {"id": "empty", "text": ""},
        {"id": "empty2", "text": ""},
        {"id": "long", "text": long_text},
        {"id": "uni", "text": "naïve café — 日本語のテキスト 🚀🚀 ελληνικά \u200b zero-width"},
        {"text": "keys in another order", "id": "order"},
        {"id": "esc", "text": "quotes ' \" and backslashes \\ and \t tabs\nnewlines"},
        {"id": "chat", "conversations": [{"from": "human", "value": "hi"},
                                         {"from": "gpt", "value": "hello there"}]},
        {"id": "alp", "instruction": "Say hi", "input": "", "output": "hi"},
        {"id": "dup", "text": "the same words again and again"},
        {"id": "long2", "text": long_text[:20000]},
    ]
    recs += [{"id": f"n{i}", "text": f"sample {i} " + "abc" * (i % 5)} for i in range(20)]
    return recs


@pytest.mark.parametrize("k1,k2,k3,budget", SETTINGS)
@pytest.mark.parametrize("how", ["repr", "text"])
def test_matches_reference_on_real_records(real_exchanges, k1, k2, k3, budget, how):
    records = real_exchanges[:40]
    budget = len(records) if budget is None else budget
    expected = reference_zip(records, budget, k1, k2, k3, how)
    got = select_zip(records, budget, k1=k1, k2=k2, k3=k3, serialize=how, workers=1)
    assert got == expected
    assert len(got) == len(set(got))
    assert len(got) <= budget


@pytest.mark.parametrize("k1,k2,k3,budget", SETTINGS)
@pytest.mark.parametrize("how", ["repr", "text"])
def test_matches_reference_on_adversarial_records(k1, k2, k3, budget, how):
    records = adversarial_records()
    budget = len(records) if budget is None else budget
    expected = reference_zip(records, budget, k1, k2, k3, how)
    assert select_zip(records, budget, k1=k1, k2=k2, k3=k3, serialize=how, workers=1) == expected


def test_budget_is_exact_and_a_prefix(real_exchanges):
    records = real_exchanges[:60]
    full = select_zip(records, 30, k1=20, k2=10, k3=4, workers=1)
    for budget in (1, 3, 4, 5, 17, 29):
        assert select_zip(records, budget, k1=20, k2=10, k3=4, workers=1) == full[:budget]


def test_ties_go_to_the_lower_row():
    records = [{"text": "identical sample text"}] * 12
    got = select_zip(records, 7, k1=5, k2=3, k3=2, workers=1)
    assert got == reference_zip(records, 7, 5, 3, 2, "text")
    # round 1: batch {0, 1, 2}, picks 0 then 1 (2 is dropped); round 2: batch {3, 4, 5}
    assert got[:4] == [0, 1, 3, 4]


def test_pool_exhaustion_drops_unpicked_batch_members():
    records = [{"text": f"record number {i} " * (i + 1)} for i in range(10)]
    got = select_zip(records, 10, k1=10, k2=4, k3=2, workers=1)
    # every round removes K2=4 samples and keeps K3=2 of them: rounds of 4, 4, 2 samples
    assert len(got) == 2 + 2 + 2


def test_a_budget_the_pool_cannot_hold_is_refused_before_the_work():
    records = [{"text": f"record number {i} " * (i + 1)} for i in range(10)]
    for budget, message in ((0, "--budget must be an integer >= 1, not 0"),
                            (11, r"--budget \(11\) is above the pool's 10 readable records")):
        with pytest.raises(InputError, match=message):
            select_zip(records, budget, k1=10, k2=4, k3=2, workers=1)


@pytest.mark.parametrize("workers", [2, 3])
def test_same_selection_for_any_worker_count(real_exchanges, workers):
    records = real_exchanges[:200]
    one = select_zip(records, 40, k1=60, k2=20, k3=8, workers=1)
    assert select_zip(records, 40, k1=60, k2=20, k3=8, workers=workers) == one


def test_live_and_recompress_strategies_agree(real_exchanges):
    records = real_exchanges[:120]
    live = select_zip(records, 25, k1=40, k2=12, k3=5, workers=1, strategy="live")
    slow = select_zip(records, 25, k1=40, k2=12, k3=5, workers=1, strategy="recompress")
    assert live == slow


@pytest.mark.parametrize("compressor", ["zstd", "lzma"])
def test_other_compressors_run_the_same_algorithm(real_exchanges, compressor):
    records = real_exchanges[:30]
    got = select_zip(records, 10, k1=10, k2=5, k3=3, compressor=compressor, level=6, workers=1)
    assert len(got) == 10 and len(set(got)) == 10


def test_selector_attributes(real_exchanges):
    sel = ZipSelector(budget=10, k1=20, k2=8, k3=4, workers=1)
    got = sel.select(real_exchanges[:50])
    assert got == sel.selected_
    assert sel.rounds_ == [1, 1, 1, 1, 2, 2, 2, 2, 3, 3]
    assert len(sel.stage2_ratios_) == len(sel.stage3_ratios_) == 10
    assert sel.ids_ == [real_exchanges[i]["id"] for i in got]
    # the first pick of a round is scored against an empty anchor: its own ratio
    assert sel.stage3_ratios_[0] == pytest.approx(sel.stage2_ratios_[0])


def test_token_budget(tmp_path, real_exchanges):
    from entrosel.formats import render_text
    from tests.lm_fixtures import bpe_tokenizer_file

    records = real_exchanges[:80]
    texts = [render_text(r) for r in records]
    path = tmp_path / "tokenizer.json"
    tok = bpe_tokenizer_file(texts, path)
    counts = [len(tok.encode(t, add_special_tokens=False).ids) for t in texts]

    by_samples = select_zip(records, 80, k1=30, k2=10, k3=5, workers=1)
    budget = sum(counts[i] for i in by_samples[:23]) - 1
    sel = ZipSelector(budget_tokens=budget, tokenizer=str(path), k1=30, k2=10, k3=5, workers=1)
    got = sel.select(records)
    assert got == by_samples[:23]
    assert sel.tokens_ == sum(counts[i] for i in got) >= budget
    assert sum(counts[i] for i in got[:-1]) < budget


def test_budget_errors():
    with pytest.raises(InputError, match="budget"):
        ZipSelector().select([{"text": "x"}])
    with pytest.raises(InputError, match="--tokenizer"):
        ZipSelector(budget_tokens=10).select([{"text": "x"}])
    with pytest.raises(InputError, match="--k2"):
        ZipSelector(budget=1, k2=0).select([{"text": "x"}])


def test_ctrl_c_saves_and_resume_is_identical(tmp_path, real_exchanges, monkeypatch):
    records = real_exchanges[:150]
    options = dict(k1=50, k2=15, k3=5, workers=1)
    expected = select_zip(records, 60, **options)

    original = zip_module.ZipSelector._round
    calls = {"n": 0}

    def interrupted_round(self, *args):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(zip_module.ZipSelector, "_round", interrupted_round)
    cp = tmp_path / "cp"
    with pytest.raises(Interrupted, match="after round 3 with 15 selected"):
        select_zip(records, 60, checkpoint=cp, **options)
    monkeypatch.setattr(zip_module.ZipSelector, "_round", original)

    with pytest.raises(InputError, match="--resume"):
        select_zip(records, 60, checkpoint=cp, **options)
    with pytest.raises(InputError, match="differs in: budget"):
        select_zip(records, 61, checkpoint=cp, resume=True, **options)
    assert select_zip(records, 60, checkpoint=cp, resume=True, **options) == expected
    # resuming a finished run gives the same answer again
    assert select_zip(records, 60, checkpoint=cp, resume=True, **options) == expected


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "entrosel", *args]


def _state_round(cp) -> int:
    try:
        with np.load(cp / "state.npz") as z:
            return int(z["round"])
    except (OSError, ValueError, KeyError, EOFError):
        return -1


@pytest.mark.parametrize("sig,compressor", [(signal.SIGKILL, "zlib"), (signal.SIGINT, "zlib"),
                                            (signal.SIGKILL, "zstd")])
def test_killed_run_resumes_byte_identical(tmp_path, real_exchanges, sig, compressor):
    pool = write_jsonl(tmp_path / "pool.jsonl", real_exchanges)
    # K1 = the whole pool: rounds slow enough that the signal lands mid-run on a busy machine
    opts = ["--budget", "250", "--k1", "600", "--k2", "8", "--k3", "4", "--workers", "2",
            "--compressor", compressor]
    full = tmp_path / "full.jsonl"
    subprocess.run(_cli("select", "zip", str(pool), "-o", str(full), *opts), check=True)

    cp = tmp_path / "cp"
    out = tmp_path / "resumed.jsonl"
    scratch = tmp_path / "tmp"  # the run's temporary files; a SIGKILL leaves them here
    scratch.mkdir()
    # SIGINT at its default in the run even when the tests run in the background (a shell
    # starts background jobs with it ignored, and Python then installs no handler for it)
    proc = subprocess.Popen(_cli("select", "zip", str(pool), "-o", str(out), *opts,
                                 "--checkpoint", str(cp)), stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(scratch)},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while _state_round(cp) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "run finished before it could be interrupted; make it longer"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    if sig == signal.SIGINT:
        assert proc.returncode == 130
        assert "rerun with --resume" in err
        assert not list(scratch.iterdir())  # a clean exit removes its temporary files
    assert not out.exists()
    killed_at = _state_round(cp)
    assert 2 <= killed_at < 62  # 250 samples take 63 rounds of 4

    subprocess.run(_cli("select", "zip", str(pool), "-o", str(out), *opts,
                        "--checkpoint", str(cp), "--resume"), check=True)
    assert out.read_bytes() == full.read_bytes()
    assert json.loads(out.read_text().splitlines()[0]) == real_exchanges[
        select_zip(real_exchanges, 1, k1=600, k2=8, k3=4, workers=1, compressor=compressor)[0]]


# --compressor and --level against the independent reference (issue 15): a selector that
# ignored either option, or scored lzma some other way than recompressing the whole
# string, would pass the tests above, which all run zlib at level 9.
# (long-memory zstd has its own reference in tests/test_long_memory.py)
# (compressor, level, serialization, pool size): lzma at preset 6 costs about 10 ms a ratio
OTHER_COMPRESSION = [("zlib", 1, "text", 30), ("zlib", 6, "text", 30), ("zlib", 6, "repr", 30),
                     ("lzma", 0, "repr", 30), ("lzma", 6, "text", 16)]


@pytest.mark.parametrize("compressor,level,how,n", OTHER_COMPRESSION)
def test_compressor_and_level_match_the_reference(real_exchanges, compressor, level, how, n):
    from tests.reference_zip import pick_ratios

    records = real_exchanges[:n]
    k1, k2, k3, budget = 8, 4, 3, 6
    expected = reference_zip(records, budget, k1, k2, k3, how, level, compressor)
    sel = ZipSelector(budget=budget, k1=k1, k2=k2, k3=k3, serialize=how, compressor=compressor,
                      level=level, workers=1)
    assert sel.select(records) == expected
    # the ratios each pick was scored by, exactly: the same bytes compressed the same way
    stage2, stage3 = pick_ratios(records, expected, sel.rounds_, how, level, compressor)
    assert sel.stage2_ratios_ == stage2
    assert sel.stage3_ratios_ == stage3
    # the check can fail: under the default compression (zlib 9) these ratios are others
    assert pick_ratios(records, expected, sel.rounds_, how) != (stage2, stage3)


def test_lzma_level_reaches_the_selector(real_exchanges):
    # lzma's presets 0 and 6 differ in match finder: the same picks get other ratios, so a
    # selector that dropped --level for lzma is seen (the test above runs one level per case)
    from tests.reference_zip import pick_ratios

    records = real_exchanges[:12]
    sel = ZipSelector(budget=4, k1=6, k2=4, k3=2, compressor="lzma", level=0, workers=1)
    got = sel.select(records)
    assert got == reference_zip(records, 4, 6, 4, 2, "text", 0, "lzma")
    assert sel.stage3_ratios_ == pick_ratios(records, got, sel.rounds_, "text", 0, "lzma")[1]
    assert sel.stage3_ratios_ != pick_ratios(records, got, sel.rounds_, "text", 6, "lzma")[1]


@pytest.mark.parametrize("compressor,level", [("lzma", "0"), ("zlib", "1")])
def test_cli_compressor_and_level_match_the_reference(tmp_path, real_exchanges, compressor, level):
    # the CLI's own path from --compressor/--level to the selector, which the API tests skip
    from tests.reference_zip import pick_ratios

    records = real_exchanges[:14]
    pool = write_jsonl(tmp_path / "pool.jsonl", records)
    out, scores = tmp_path / "out.jsonl", tmp_path / "scores.jsonl"
    subprocess.run(_cli("select", "zip", str(pool), "-o", str(out), "--scores-out", str(scores),
                        "--budget", "5", "--k1", "6", "--k2", "4", "--k3", "2", "--workers", "1",
                        "--compressor", compressor, "--level", level), check=True)
    expected = reference_zip(records, 5, 6, 4, 2, "text", int(level), compressor)
    rows = [json.loads(x) for x in scores.read_text().splitlines()]
    assert [r["index"] for r in rows] == expected
    assert [json.loads(x) for x in out.read_text().splitlines()] == [records[i] for i in expected]
    stage2, stage3 = pick_ratios(records, expected, [r["round"] for r in rows], "text",
                                 int(level), compressor)
    assert [r["stage2_ratio"] for r in rows] == stage2
    assert [r["stage3_ratio"] for r in rows] == stage3
    # the check can fail: zlib at its default level scores these picks otherwise
    assert pick_ratios(records, expected, [r["round"] for r in rows], "text") != (stage2, stage3)


def test_stage_one_s_partition_is_the_stable_sort():
    from entrosel.selection.zip import lowest

    rng = np.random.default_rng(0)
    for n, k, distinct in [(1, 1, 3), (50, 10, 3), (1000, 100, 7), (1000, 999, 2), (500, 600, 5),
                           (2000, 300, 1000)]:
        values = rng.integers(0, distinct, n) / 3.0
        values[rng.random(n) < 0.05] = np.inf
        np.testing.assert_array_equal(lowest(values, k), np.argsort(values, kind="stable")[:k])
    values = np.array([1.0, np.nan, 0.5, np.nan, 0.5])
    np.testing.assert_array_equal(lowest(values, 4), np.argsort(values, kind="stable")[:4])


@pytest.mark.parametrize("every_s,saves", [(0.0, 1 + 4 + 1), (3600.0, 1 + 1)])
def test_a_checkpoint_is_saved_at_most_as_often_as_asked(tmp_path, real_exchanges, monkeypatch,
                                                         every_s, saves):
    """--checkpoint saves after every round; a recipe's step (save_every_s) less often: the
    pool's ratios, then the rounds as time allows, then the end."""
    from entrosel.selection.checkpoint import Checkpoint

    calls = []
    save = Checkpoint.save
    monkeypatch.setattr(Checkpoint, "save", lambda self, state: calls.append(state.round) or save(self, state))
    sel = ZipSelector(budget=40, k1=60, k2=20, k3=10, workers=1, checkpoint=str(tmp_path / "cp"),
                      save_every_s=every_s)
    assert sel.select(real_exchanges[:200]) == select_zip(real_exchanges[:200], 40, k1=60, k2=20,
                                                           k3=10, workers=1)
    assert len(calls) == saves and calls[0] == 0 and calls[-1] == 4
