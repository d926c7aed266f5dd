"""Long-memory ZIP: conditional compression with zstd (docs/zip.md, scoring/conditional.py)."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest

zstd = pytest.importorskip("zstandard")

from entrosel import ZipSelector, render_text, select_zip  # noqa: E402
from entrosel.formats.serialize import Serialization  # noqa: E402
from entrosel.pool import Pool  # noqa: E402
from entrosel.scoring import conditional  # noqa: E402
from entrosel.scoring.anchored import ConditionalEvaluator  # noqa: E402
from entrosel.scoring.conditional import LongMemory, conditional_size  # noqa: E402


def _texts(records: list[dict]) -> list[bytes]:
    return [render_text(r).encode() for r in records]


def _direct_size(x: bytes, anchor: bytes, level: int) -> int:
    """C(x | anchor) from zstandard itself, with the parameters docs/zip.md states."""
    base = zstd.ZstdCompressionParameters.from_level(level)
    below = 3 if base.strategy in (zstd.STRATEGY_FAST, zstd.STRATEGY_DFAST) else 2
    log = min(24, max(12, math.ceil(math.log2(len(anchor))) - below))
    params = zstd.ZstdCompressionParameters(
        strategy=base.strategy, search_log=base.search_log, min_match=base.min_match,
        target_length=base.target_length, window_log=27, hash_log=log, chain_log=log,
        write_content_size=False, write_checksum=False, write_dict_id=False)
    d = zstd.ZstdCompressionDict(anchor, dict_type=zstd.DICT_TYPE_RAWCONTENT)
    d.precompute_compress(compression_params=params)
    frame = zstd.ZstdCompressor(dict_data=d, compression_params=params).compress(x)
    # the frame really encodes x given the anchor, and its header is the 6 bytes left out
    back = zstd.ZstdDecompressor(dict_data=zstd.ZstdCompressionDict(
        anchor, dict_type=zstd.DICT_TYPE_RAWCONTENT)).decompressobj().decompress(frame)
    assert back == x
    assert zstd.frame_header_size(frame) == 6
    return len(frame) - 6


@pytest.mark.parametrize("level", [1, 3, 5, 9])
def test_conditional_size_equals_a_direct_zstandard_computation(real_exchanges, level):
    texts = _texts(real_exchanges[:120])
    anchor = b"\n\n".join(texts[:100])
    digested = LongMemory(level).digest(anchor)
    for x in texts[100:]:
        assert digested.size(x) == _direct_size(x, anchor, level) == conditional_size(x, anchor, level)


def test_a_copy_costs_little_however_far_back(real_exchanges):
    texts = _texts(real_exchanges)
    copy = max(texts[:20], key=len)
    anchor = b"\n\n".join([copy] + texts[20:])  # the copy at the anchor's far end
    assert len(anchor) > 200_000 and len(copy) > 1000
    memory = LongMemory()
    assert memory.digest(anchor).size(copy) < 0.05 * memory.size(copy)
    assert memory.digest(b"").size(copy) == memory.size(copy)


def test_evaluator_ratios_follow_the_definition(real_exchanges):
    """ratio(A + [x]) = (|A| + |x|) / (C(A) + C(x | A)), C(A) summed per extension."""
    texts = _texts(real_exchanges[:60])
    framing = Serialization("text").framing
    with Pool.from_items(texts) as pool:
        ev = ConditionalEvaluator(pool.items.open(), framing, LongMemory().level)
        cands = list(range(40, 60))
        own = ev.ratios(cands)
        assert own.tolist() == [len(texts[i]) / LongMemory().size(texts[i]) for i in cands]
        ev.extend([0, 1, 2])
        ev.extend([3])
        block1 = texts[0] + b"\n\n" + texts[1] + b"\n\n" + texts[2]
        anchor = block1 + b"\n\n" + texts[3]
        cost = LongMemory().size(block1) + conditional_size(b"\n\n" + texts[3], block1)
        expected = [(len(anchor) + 2 + len(texts[i])) /
                    (cost + conditional_size(b"\n\n" + texts[i], anchor)) for i in cands]
        assert ev.ratios(cands).tolist() == expected
        ev.reset()
        assert ev.ratios(cands).tolist() == own.tolist()


def _planted(records: list[dict], copies: int, seed: int = 0) -> list[dict]:
    """``records`` plus exact copies (new ids, same content) of random ones, shuffled in."""
    rng = random.Random(seed)
    dup = [dict(r, id=f"{r['id']}-copy{k}") for k, r in enumerate(rng.choices(records, k=copies))]
    pool = records + dup
    rng.shuffle(pool)
    return pool


def _repeats(records: list[dict], selected: list[int]) -> int:
    seen: set[str] = set()
    n = 0
    for i in selected:
        text = render_text(records[i])
        n += text in seen
        seen.add(text)
    return n


@pytest.mark.parametrize("serialize", ["text", "repr"])
def test_long_memory_does_not_repick_planted_copies(real_exchanges, serialize):
    """A small version of the benchmark's table (benchmarks/bench_zip.py --part long):
    ZIP as the paper (zlib) re-picks copies once the selection outgrows its 32 KiB window;
    long-memory ZIP does not."""
    originals = [r for r in real_exchanges if len(render_text(r)) >= 300][:300]
    pool = _planted(originals, 150)
    options = dict(k1=150, k2=40, k3=20, serialize=serialize, workers=1)
    zstd_picks = select_zip(pool, 200, compressor="zstd", **options)
    zlib_picks = select_zip(pool, 200, **options)
    assert sum(len(render_text(pool[i])) for i in zstd_picks) > 4 * 32 * 1024
    # (with the anchor cut to zlib's 32 KiB this picks 8 in text and 10 in repr)
    assert _repeats(pool, zstd_picks) <= 2
    assert _repeats(pool, zlib_picks) >= 5


def test_same_selection_for_any_number_of_workers(real_exchanges):
    records = real_exchanges[:200]
    options = dict(k1=60, k2=20, k3=8, compressor="zstd")
    one = select_zip(records, 45, workers=1, **options)
    assert select_zip(records, 45, workers=2, **options) == one
    assert select_zip(records, 45, workers=3, serialize="text", **options) == one


def test_level_changes_the_match_finder_and_is_in_the_checkpoint(tmp_path, real_exchanges):
    records = real_exchanges[:150]
    sel = ZipSelector(budget=30, k1=50, k2=15, k3=5, compressor="zstd", workers=1,
                      checkpoint=tmp_path / "cp")
    sel.select(records)
    meta = (tmp_path / "cp" / "meta.json").read_text()
    assert '"strategy": "conditional"' in meta and '"level": 1' in meta and "libzstd" in meta
    other = select_zip(records, 30, k1=50, k2=15, k3=5, compressor="zstd", level=9, workers=1)
    assert len(other) == 30  # level 9's lazy2 match finder runs the same algorithm


def test_resume_replays_the_selection_round_by_round(tmp_path, real_exchanges, monkeypatch):
    from entrosel.selection import zip as zip_module
    from entrosel.selection.zip import Interrupted

    records = real_exchanges[:150]
    options = dict(k1=50, k2=15, k3=5, workers=1, compressor="zstd")
    expected = ZipSelector(budget=60, **options)
    expected.select(records)
    original = zip_module.ZipSelector._round
    calls = {"n": 0}

    def interrupted_round(self, *args):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(zip_module.ZipSelector, "_round", interrupted_round)
    with pytest.raises(Interrupted):
        select_zip(records, 60, checkpoint=tmp_path / "cp", **options)
    monkeypatch.setattr(zip_module.ZipSelector, "_round", original)
    resumed = ZipSelector(budget=60, checkpoint=tmp_path / "cp", resume=True, **options)
    assert resumed.select(records) == expected.selected_
    # the stage-2 ratios depend on C(selection), which the replay must rebuild exactly
    assert resumed.stage2_ratios_ == expected.stage2_ratios_


def test_outgrowing_the_reach_is_said_once(real_exchanges, monkeypatch, capsys):
    monkeypatch.setattr(conditional.LongMemory, "reach_bytes", property(lambda self: 20_000))
    sel = ZipSelector(budget=40, k1=50, k2=15, k3=5, compressor="zstd", workers=1)
    sel.select(real_exchanges[:150])
    err = capsys.readouterr().err
    assert err.count("past zstd's reach of 0 MiB") == 1
    assert len(sel.notes_) == 1 and "the selection holds" in sel.notes_[0]
    plain = ZipSelector(budget=40, k1=50, k2=15, k3=5, workers=1)
    plain.select(real_exchanges[:150])
    assert plain.notes_ == [] and "reach" not in capsys.readouterr().err


def test_a_pool_that_runs_out_before_the_budget_is_said(real_exchanges, capsys):
    # 150 records, each round removes K2=15 and keeps K3=5: 10 rounds, 50 picks < 60
    sel = ZipSelector(budget=60, k1=50, k2=15, k3=5, workers=1)
    assert len(sel.select(real_exchanges[:150])) == 50
    assert sel.notes_ == ["the pool ran out at 50 of the --budget 60: every round removes its "
                          "K2=15 batch and keeps K3=5 of it; a smaller K2/K3 ratio or a larger "
                          "pool reaches the budget"]
    assert "entrosel: note: the pool ran out at 50 of the --budget 60" in capsys.readouterr().err


def test_reach_by_level():
    assert LongMemory(3).reach_bytes == 16 << 20
    assert LongMemory(5).reach_bytes == 32 << 20
    assert np.diff([conditional.table_log(n, 2) for n in (1, 10**4, 10**6, 10**9)]).min() >= 0
