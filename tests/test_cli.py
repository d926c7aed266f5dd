"""The command line end to end, as a user runs it."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from entrosel import select_zip
from tests.conftest import write_jsonl


def entrosel(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "entrosel", *map(str, args)],
                          capture_output=True, text=True, check=check)


@pytest.mark.parametrize("verb", [
    [], ["score"], ["score", "compression"], ["score", "lm"], ["score", "words"], ["measure"],
    ["select"], ["select", "zip"], ["select", "prune"], ["select", "topk"], ["select", "band"],
    ["select", "random"], ["probe"], ["probe", "train"], ["prune"], ["law"], ["law", "measure"],
    ["law", "track"], ["law", "check"], ["law", "report"], ["data"], ["data", "sharegpt"]])
def test_help_everywhere(verb):
    r = entrosel(*verb, "--help")
    assert r.returncode == 0 and "usage: entrosel" in r.stdout


def test_usage_error_exits_2():
    assert entrosel("select", "zip", "x.jsonl").returncode == 2
    assert entrosel("frobnicate").returncode == 2


def test_score_measure_select_end_to_end(tmp_path, real_exchanges):
    records = real_exchanges[:300]
    pool = write_jsonl(tmp_path / "pool.jsonl", records)

    r = entrosel("score", "compression", pool, "-o", tmp_path / "scores.csv", check=True)
    assert "300 records" in r.stderr
    assert (tmp_path / "scores.csv").read_text().startswith("index,id,compression_ratio,bytes,compressed_bytes\n")

    r = entrosel("measure", pool, pool, "--json", check=True)
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(rows) == 2 and rows[0]["records"] == 300 and rows[0] == rows[1]
    r = entrosel("measure", pool, check=True)
    assert r.stdout.splitlines()[0].split()[-1] == "R"  # the set's ratio, named as in the law

    out = tmp_path / "sel.jsonl"
    r = entrosel("select", "zip", pool, "-o", out, "--budget", 25, "--k1", 100, "--k2", 20,
                 "--k3", 10, "--serialize", "repr", "--scores-out", tmp_path / "sel_scores.jsonl", check=True)
    assert "25 records selected in 3 rounds" in r.stderr
    expected = select_zip(records, 25, k1=100, k2=20, k3=10, serialize="repr", workers=1)
    assert [json.loads(x) for x in out.read_text().splitlines()] == [records[i] for i in expected]
    scores = [json.loads(x) for x in (tmp_path / "sel_scores.jsonl").read_text().splitlines()]
    assert [s["index"] for s in scores] == expected
    assert list(scores[0]) == ["rank", "index", "id", "round", "stage2_ratio", "stage3_ratio"]

    parquet_out = tmp_path / "sel.parquet"
    entrosel("select", "zip", pool, "-o", parquet_out, "--budget", 5, "--k1", 50, "--k2", 10, "--k3", 5, check=True)
    import pyarrow.parquet as pq
    assert pq.read_table(parquet_out).num_rows == 5


@pytest.mark.parametrize("content,message", [
    ('{"text": "a"}\n{"text": \n', "bad.jsonl:2: record 1: malformed JSON"),
    ('{"text": "a"}\n{"other": 1}\n', "bad.jsonl:2: record 1: no text found"),
    ("", "bad.jsonl: input holds no records"),
])
def test_bad_input_exit_2_and_no_output(tmp_path, content, message):
    src = tmp_path / "bad.jsonl"
    src.write_text(content)
    for args in (["score", "compression", src, "-o", tmp_path / "o.jsonl"],
                 ["select", "zip", src, "-o", tmp_path / "o.jsonl", "--budget", 1]):
        r = entrosel(*args)
        assert r.returncode == 2, r.stderr
        assert message in r.stderr
        assert "Traceback" not in r.stderr
        assert not (tmp_path / "o.jsonl").exists()


def test_non_utf8_exit_2(tmp_path):
    src = tmp_path / "bad.jsonl"
    src.write_bytes(b'{"text": "ok"}\n{"text": "\xc3\x28"}\n')
    r = entrosel("measure", src)
    assert r.returncode == 2 and "bad.jsonl:2: record 1: not valid UTF-8" in r.stderr


def test_on_error_skip_reports_and_writes_rejects(tmp_path):
    src = tmp_path / "mixed.jsonl"
    src.write_text('{"text": "alpha"}\n{"bogus": 1}\n{"text": "beta"}\nnope\n{"text": "gamma"}\n')
    out = tmp_path / "sel.jsonl"
    r = entrosel("select", "zip", src, "-o", out, "--budget", 2, "--on-error", "skip", check=True)
    assert "2 rejected" in r.stderr
    assert len(out.read_text().splitlines()) == 2
    rejects = [json.loads(x) for x in (tmp_path / "sel.jsonl.rejects.jsonl").read_text().splitlines()]
    assert [x["line"] for x in rejects] == [2, 4]


def test_template_from_the_shell(tmp_path, alpaca_records):
    src = write_jsonl(tmp_path / "a.jsonl", alpaca_records)
    r = entrosel("score", "compression", src, "-o", tmp_path / "s.jsonl",
                 "--template", r"{instruction}\n{output}", check=True)
    first = json.loads((tmp_path / "s.jsonl").read_text().splitlines()[0])
    assert first["bytes"] == len("Add the numbers.\n5")
    assert "3 records" in r.stderr


def test_data_sharegpt_export(tmp_path):
    out = tmp_path / "ex.jsonl"
    r = entrosel("data", "sharegpt", "--split", "exchanges", "--limit", 50, "-o", out, check=True)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 50 and "50 exchanges" in r.stderr
    assert all(len(x["conversations"]) == 2 for x in rows)
