"""Compression ratios, the live-compressor identity on real data, scoring and measuring."""
from __future__ import annotations

import json
import lzma
import random
import zlib

import pytest

from entrosel import compression_ratio, measure
from entrosel.commands.score import score_compression
from entrosel.errors import InputError
from entrosel.formats.serialize import Serialization
from entrosel.pool import InputOptions, load_pool
from entrosel.scoring.anchored import LiveZlibEvaluator, RecompressEvaluator
from entrosel.scoring.compression import Compressor
from tests.conftest import write_jsonl


def test_compression_ratio_definition():
    s = b"abc" * 1000
    assert compression_ratio(s) == len(s) / len(zlib.compress(s, 9))
    assert compression_ratio(s.decode(), level=1) == len(s) / len(zlib.compress(s, 1))
    assert compression_ratio(s, compressor="lzma") == len(s) / len(lzma.compress(s, preset=9))
    assert compression_ratio(b"") == 0.0
    with pytest.raises(InputError, match="level"):
        compression_ratio(s, level=10)
    with pytest.raises(InputError, match="unknown compressor"):
        compression_ratio(s, compressor="brotli")


@pytest.mark.parametrize("how", ["repr", "text"])
def test_live_compressor_equals_recompressing_on_real_data(real_exchanges, how):
    rng = random.Random(7)
    with load_pool(real_exchanges[:300], InputOptions(serialize=how)) as pool:
        items = pool.items.open()
        framing = Serialization(how).framing
        live = LiveZlibEvaluator(items, framing, 9)
        slow = RecompressEvaluator(items, framing, Compressor("zlib", 9))
        order = list(range(len(pool)))
        rng.shuffle(order)
        anchor: list[int] = []
        for step in range(12):
            candidates = rng.sample(range(len(pool)), 25)
            expected = [len(framing.join([items[i] for i in anchor + [c]])) /
                        len(zlib.compress(framing.join([items[i] for i in anchor + [c]]), 9))
                        for c in candidates]
            assert live.ratios(candidates).tolist() == expected
            assert slow.ratios(candidates).tolist() == expected
            new = order[step * 9:(step + 1) * 9]  # the anchor grows past deflate's 32 KiB window
            live.extend(new)
            slow.extend(new)
            anchor += new


def test_score_compression_rows(tmp_path, alpaca_records):
    src = write_jsonl(tmp_path / "in.jsonl", alpaca_records + [{"text": "no id here"}])
    out = tmp_path / "scores.jsonl"
    summary = score_compression(src, out, workers=1)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert summary.records == 4 and summary.rejected == 0
    assert [r["index"] for r in rows] == [0, 1, 2, 3]
    assert [r.get("id") for r in rows] == ["a1", "a2", "a3", None]
    assert list(rows[0]) == ["index", "id", "compression_ratio", "bytes", "compressed_bytes"]
    text = b"Add the numbers.\n\n2 and 3\n\n5"
    assert rows[0]["bytes"] == len(text)
    assert rows[0]["compressed_bytes"] == len(zlib.compress(text, 9))
    assert rows[0]["compression_ratio"] == len(text) / len(zlib.compress(text, 9))


def test_score_compression_repr_and_workers_agree(tmp_path, real_exchanges):
    src = write_jsonl(tmp_path / "in.jsonl", real_exchanges[:200])
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    score_compression(src, one, serialize="repr", workers=1)
    score_compression(src, two, serialize="repr", workers=2)
    assert one.read_bytes() == two.read_bytes()
    first = str([real_exchanges[0]]).encode()
    line = one.read_text().splitlines()[1].split(",")
    assert int(line[-2]) == len(first) and int(line[-1]) == len(zlib.compress(first, 9))


def test_score_compression_skip_writes_rejects(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "a"}\n{"body": "no text"}\n{oops\n{"text": "d"}\n')
    out = tmp_path / "s.jsonl"
    with pytest.raises(InputError, match=r"in.jsonl:2: record 1: no text found"):
        score_compression(src, out)
    assert not out.exists()
    s = score_compression(src, out, on_error="skip", workers=1)
    assert (s.records, s.rejected) == (2, 2)
    assert [json.loads(x)["index"] for x in out.read_text().splitlines()] == [0, 3]
    rejected = [json.loads(x) for x in (tmp_path / "s.jsonl.rejects.jsonl").read_text().splitlines()]
    assert [(r["index"], r["line"]) for r in rejected] == [(1, 2), (2, 3)]


@pytest.mark.parametrize("compressor", ["zstd", "lzma"])
def test_other_compressors(tmp_path, alpaca_records, compressor):
    src = write_jsonl(tmp_path / "in.jsonl", alpaca_records)
    out = tmp_path / "s.jsonl"
    score_compression(src, out, compressor=compressor, workers=1)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert all(r["compression_ratio"] > 0 for r in rows)


def test_measure_repr_equals_the_reference_formula(tmp_path, real_exchanges):
    records = real_exchanges[:300]
    src = write_jsonl(tmp_path / "in.jsonl", records)
    [row] = measure([src], serialize="repr")
    s = str(records).encode()
    assert row["R"] == len(s) / len(zlib.compress(s, 9))
    assert row["compression_ratio"] == row["R"]  # the older key, kept for scripts that read it
    assert (row["records"], row["bytes"], row["compressed_bytes"]) == (300, len(s), len(zlib.compress(s, 9)))


def test_measure_sees_redundancy(tmp_path, real_exchanges):
    base = real_exchanges[:200]
    a = write_jsonl(tmp_path / "a.jsonl", base)
    b = write_jsonl(tmp_path / "b.jsonl", base[:100] + base[:100])
    ra, rb = (r["R"] for r in measure([a, b]))
    assert rb > ra


@pytest.mark.parametrize("workers", [1, 2])
def test_compression_scores_in_memory(workers):
    from entrosel.commands.score import compression_scores

    texts = ["", "abc" * 400, "x", "héllo wörld", b"raw bytes " * 50] * 300
    expected = [0.0 if not t else
                len(b := (t.encode() if isinstance(t, str) else t)) / len(zlib.compress(b, 9))
                for t in texts]
    assert compression_scores(texts, workers=workers).tolist() == expected
