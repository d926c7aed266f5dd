"""Long-memory ZIP: conditional compression with zstd (docs/zip.md, scoring/conditional.py)."""
from __future__ import annotations

import math
import random

import numpy as np
import pytest

zstd = pytest.importorskip("zstandard")

from entrosel import ZipSelector, render_text, select_zip  # noqa: E402
from entrosel.errors import InputError  # noqa: E402
from entrosel.formats.serialize import Serialization  # noqa: E402
from entrosel.pool import Pool  # noqa: E402
from entrosel.scoring import conditional  # noqa: E402
from entrosel.scoring.anchored import ConditionalEvaluator, EvaluatorFactory  # noqa: E402
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


def test_same_selection_for_any_number_of_workers(real_exchanges, monkeypatch):
    records = real_exchanges[:200]
    options = dict(k1=60, k2=20, k3=8, compressor="zstd")
    one = select_zip(records, 45, workers=1, **options)
    monkeypatch.setattr(conditional, "SLICE_MIN_ITEMS", 1)  # every call on threads
    assert select_zip(records, 45, workers=2, **options) == one
    assert select_zip(records, 45, workers=3, serialize="text", **options) == one
    # on worker processes, as with a zstandard that has no C threads
    monkeypatch.setattr(EvaluatorFactory, "threaded", lambda self, threads: None)
    assert select_zip(records, 45, workers=2, **options) == one


@pytest.mark.parametrize("level", [1, 3, 9])
@pytest.mark.parametrize("c_threads", [False, True])
def test_sizes_on_threads_are_those_of_one_at_a_time(real_exchanges, monkeypatch, level, c_threads):
    texts = _texts(real_exchanges)
    digested = LongMemory(level).digest(b"\n\n".join(texts[:50]))
    monkeypatch.setattr(conditional, "SLICE_MIN_ITEMS", 1)
    # slices on Python threads, or (many strings) one call on zstd's C threads
    monkeypatch.setattr(conditional, "C_THREADS_MIN_ITEMS", 1 if c_threads else 10 ** 9)
    assert conditional.can_thread()
    alone = digested.sizes(texts[50:])
    assert digested.sizes(texts[50:], threads=3) == alone == [digested.size(x) for x in texts[50:]]


def test_level_changes_the_match_finder_and_is_in_the_checkpoint(tmp_path, real_exchanges):
    records = real_exchanges[:150]
    sel = ZipSelector(budget=30, k1=50, k2=15, k3=5, compressor="zstd", workers=1,
                      checkpoint=tmp_path / "cp")
    sel.select(records)
    meta = (tmp_path / "cp" / "meta.json").read_text()
    assert '"strategy": "conditional"' in meta and '"level": 1' in meta and "libzstd" in meta
    other = select_zip(records, 30, k1=50, k2=15, k3=5, compressor="zstd", level=9, workers=1)
    assert len(other) == 30  # level 9's lazy2 match finder runs the same algorithm


@pytest.mark.parametrize("rescore", ["all", "lazy"])
def test_resume_replays_the_selection_round_by_round(tmp_path, real_exchanges, monkeypatch, rescore):
    from entrosel.selection import zip as zip_module
    from entrosel.selection.zip import Interrupted

    records = real_exchanges[:150]
    options = dict(k1=50, k2=15, k3=5, workers=1, compressor="zstd", rescore=rescore)
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


# --- memory past zstd's reach ------------------------------------------------------------

def test_the_dictionary_cut_to_zstd_s_window_gives_the_same_sizes():
    """zstd's fast match finders read only a dictionary's last 16 MiB, so the evaluator keeps
    only those (tables sized to the whole anchor): the same sizes as the whole anchor."""
    rng = np.random.default_rng(0)
    words = np.array([w.encode() for w in "the of and to in is that it for on with as was at by an "
                      "be this are from or have not but which one all were they we when there".split()])
    chunks = [b" ".join(rng.choice(words, 400)) + b"\n\n%d\n\n" % k for k in range(12000)]
    anchor = b"".join(chunks)
    assert len(anchor) > (16 << 20) + 2_000_000
    memory = LongMemory(1)
    assert memory.window_bytes == 16 << 20
    early, late = chunks[10], chunks[-10]  # before and inside the last 16 MiB
    xs = [early, late, b" ".join(rng.choice(words, 300))]
    whole = memory.digest(anchor).sizes(xs)
    assert memory.digest(anchor[-memory.window_bytes:], len(anchor)).sizes(xs) == whole
    assert whole[0] > 10 * whole[1]  # the early chunk is past the reach: no cheaper than new text


def _own_ratio_order(texts: list[bytes]) -> np.ndarray:
    memory = LongMemory()
    return np.argsort([len(t) / memory.size(t) for t in texts], kind="stable")


def test_an_exact_copy_of_an_early_pick_past_the_reach_is_not_picked_again(real_exchanges,
                                                                            monkeypatch):
    """A copy of a round-1 pick, left in the pool, meets that pick again only once it lies
    further back than zstd's reach (cut to 4 KiB here so the test is small): zstd alone then
    sees fresh text and picks it again; the pick index refuses it."""
    records = real_exchanges[:80]
    texts = _texts(records)
    first = int(_own_ratio_order(texts)[4])  # K2=5: four score lower, so round 1's batch is them and it
    copy = dict(records[first], id="planted copy")
    pool = records + [copy]
    options = dict(k1=len(pool), k2=5, k3=5, compressor="zstd", workers=1)
    # within the reach, zstd alone refuses it
    within = select_zip(pool, 40, **options)
    assert first in within[:5] and len(records) not in within
    monkeypatch.setattr(LongMemory, "window_bytes", property(lambda self: 4096))
    past = ZipSelector(budget=40, **options)
    assert len(records) not in past.select(pool)
    assert first in past.selected_[:5]
    assert any("past zstd's reach" in n for n in past.notes_)
    # without the index the copy is picked again
    from entrosel.scoring.anchored import PickIndex
    monkeypatch.setattr(PickIndex, "copies", lambda self, candidates: [])
    forgetful = select_zip(pool, 40, **options)
    assert len(records) in forgetful


def test_a_far_pick_s_copy_costs_what_a_copy_costs(real_exchanges):
    """Past the reach, a candidate that repeats a pick (its normalized text) costs
    min(C(x | window), C(x | the pick)); other candidates are untouched."""
    texts = _texts(real_exchanges[:40])
    framing = Serialization("text").framing
    variant = texts[0].upper().replace(b" ", b"  ")  # the same normalized text
    with Pool.from_items(texts + [variant]) as pool:
        far = ConditionalEvaluator(pool.items.open(), framing, 1, window=2048)
        near = ConditionalEvaluator(pool.items.open(), framing, 1)
        for ev in (far, near):
            ev.extend([0, 1, 2])
            ev.extend(list(range(3, 30)))
        assert far.index.far and not near.index.far
        cands = [0, 35, 40]
        r_far, r_near = far.ratios(cands), near.ratios(cands)
        memory = LongMemory(1)
        x0 = b"\n\n" + texts[0]
        cost0 = min(memory.digest(b"".join(far._blocks)[-2048:], far._length).size(x0),
                    memory.digest(texts[0]).size(x0))
        assert r_far[0] == (far._length + len(x0)) / (far._cost + cost0)
        plain = ConditionalEvaluator(pool.items.open(), framing, 1, window=2048)
        plain.index.copies = lambda candidates: []
        plain.extend([0, 1, 2])
        plain.extend(list(range(3, 30)))
        r_plain = plain.ratios(cands)
        assert r_plain[1] == r_far[1]  # not a copy: the window's cost alone
        # a copy of the far pick: as dear as zstd makes a copy within reach, where the window
        # alone sees new text
        assert r_far[0] > r_plain[0]
        assert abs(r_far[0] - r_near[0]) < 0.01 * r_near[0]
        # its case and spacing variant is found too, and costs what zstd charges it given the pick
        assert [(k, pick) for k, pick in far.index.copies(cands)] == [(0, 0), (2, 0)]


def test_lazy_rescoring_scores_fewer_candidates_and_selects_as_low_a_ratio(real_exchanges, monkeypatch):
    from entrosel.scoring.measure import measure_one

    records = real_exchanges[:600]
    scored = {"n": 0}
    original = ConditionalEvaluator._scored

    def counted(self, candidates):
        scored["n"] += len(candidates)
        return original(self, candidates)

    monkeypatch.setattr(ConditionalEvaluator, "_scored", counted)
    options = dict(k1=300, k2=40, k3=20, compressor="zstd", workers=1)
    results = {}
    for rescore in ("all", "lazy"):
        scored["n"] = 0
        picks = select_zip(records, 120, rescore=rescore, **options)
        results[rescore] = (picks, scored["n"], measure_one([records[i] for i in picks])["R"])
    (all_picks, all_n, all_r), (lazy_picks, lazy_n, lazy_r) = results["all"], results["lazy"]
    assert len(set(lazy_picks)) == len(lazy_picks) == 120
    assert lazy_n < 0.7 * all_n  # the point of it (3,384 of 5,760 here; at scale 2-4x fewer)
    assert lazy_r <= all_r * 1.02  # and the selection compresses as badly (ZIP's aim)
    # the same picks on threads and on worker processes
    monkeypatch.setattr(conditional, "SLICE_MIN_ITEMS", 1)
    assert select_zip(records, 120, rescore="lazy", **{**options, "workers": 2}) == lazy_picks
    monkeypatch.setattr(EvaluatorFactory, "threaded", lambda self, threads: None)
    assert select_zip(records, 120, rescore="lazy", **{**options, "workers": 2}) == lazy_picks


def test_lazy_rescoring_needs_long_memory():
    with pytest.raises(InputError, match="--rescore lazy needs --compressor zstd"):
        ZipSelector(budget=5, rescore="lazy").validate()


@pytest.mark.parametrize("rescore", ["all", "lazy"])
def test_empty_texts_are_scored_on_threads_too(monkeypatch, rescore):
    # empty records first, then one large: a slice of the candidates may hold only empty
    # strings, which zstd compresses one at a time (no batch of them)
    records = [{"text": ""}] * 150 + [{"text": "x y z " * 20000}] + [
        {"text": f"record {i} says {i * 7} and {i * 13}"} for i in range(49)]
    picks = select_zip(records, 20, k1=200, k2=200, k3=100, compressor="zstd", workers=2,
                       rescore=rescore)
    assert len(picks) == len(set(picks)) == 20


def test_lazy_ratios_frame_a_candidate_after_an_empty_pick_with_the_separator():
    records = [{"text": ""}] + [{"text": f"sample {i}: " + "word " * (i % 17 + 3)} for i in range(60)]
    options = dict(k1=61, k2=61, k3=6, compressor="zstd", workers=1)
    exact, lazy = ZipSelector(budget=6, **options), ZipSelector(budget=6, rescore="lazy", **options)
    exact.select(records)
    lazy.select(records)
    # the empty record goes first either way; the second pick's ratio counts the separator
    assert exact.selected_[:2] == lazy.selected_[:2]
    assert lazy.stage3_ratios_[:2] == exact.stage3_ratios_[:2]
