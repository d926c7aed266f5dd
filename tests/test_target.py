"""Selecting toward a target: dict alignment, ZIP-FIT's NCD and DSIR (``entrosel select target``)."""
from __future__ import annotations

import collections
import gzip
import hashlib
import inspect
import json
import math
import random
import re
import shutil
import textwrap

import numpy as np
import pytest

from entrosel.cli import main
from entrosel.errors import InputError
from entrosel.scoring.target import DictionaryAlignment, NcdAlignment, dictionary_shards
from entrosel.selection.target import TargetSelector
from tests.conftest import write_jsonl


def _docstrings(*modules) -> list[str]:
    out = []
    for module in modules:
        for _, fn in sorted(inspect.getmembers(module, inspect.isfunction)):
            doc = inspect.getdoc(fn)
            if doc and len(doc) >= 150 and doc not in out:
                out.append(doc)
    return out


DOCS = _docstrings(shutil, textwrap, inspect)  # real English technical prose, ~100 texts


def _numbers(n: int, seed: int) -> list[str]:
    """Texts with nothing in common with the docstrings: rows of random numbers (a small
    vocabulary, as a real other source repeats its own words)."""
    rng = random.Random(seed)
    return [" ".join(str(rng.randrange(50)) for _ in range(60)) for _ in range(n)]


def _ids(text: str) -> list[int]:
    # the bucketing of data-selection's get_ngram_counts, written out independently
    words = re.findall(r"\w+|[^\w\s]+", text.lower())
    grams = words + [f"{a} {b}" for a, b in zip(words, words[1:])]
    return [int(hashlib.sha256(g.encode()).hexdigest(), 16) % 10_000 for g in grams]


def test_dict_alignment_is_near_one_inside_the_target_and_near_zero_outside():
    record = DOCS[5].encode()
    inside = DictionaryAlignment([d.encode() for d in DOCS[:40]])
    unrelated = DictionaryAlignment([t.encode() for t in _numbers(40, 1)])
    [a_in], [a_out] = inside.alignments([record]), unrelated.alignments([record])
    assert a_in > 0.9
    assert abs(a_out) < 0.05
    # a related text the target does not hold lies in between
    [a_near] = inside.alignments([DOCS[60].encode()])
    assert a_out < a_near < a_in


def test_a_target_cut_into_several_dictionaries_still_finds_each_record():
    items = [d.encode() for d in DOCS[:40]]
    shards = dictionary_shards(items, 4000)
    assert len(shards) > 3 and b"\n\n".join(shards) == b"\n\n".join(items)
    assert all(len(s) <= 4000 or s in items for s in shards)
    cut = DictionaryAlignment(items, shard_bytes=4000)
    assert len(cut.shards) == len(shards)
    assert min(cut.alignments([items[0], items[39]])) > 0.9


def test_ncd_is_zip_fits_formula_with_gzip():
    target = [d.encode() for d in DOCS[:6]]
    pool = [d.encode() for d in DOCS[20:24]] + [_numbers(1, 2)[0].encode()]

    def c(b: bytes) -> int:
        return len(gzip.compress(b, compresslevel=9))

    expected = [np.mean([1 - (c(x + t) - min(c(x), c(t))) / max(c(x), c(t)) for t in target]) for x in pool]
    assert NcdAlignment(target).alignments(pool) == pytest.approx(expected, abs=1e-12)
    assert NcdAlignment(target, level=1).alignments(pool)[0] != pytest.approx(expected[0], abs=1e-6)


def test_dsir_weights_are_the_direct_formula():
    target, pool = DOCS[:10], DOCS[10:30] + _numbers(10, 3)
    selector = TargetSelector(method="dsir", workers=1).fit([{"text": t} for t in target])
    scores = selector.score([{"text": t} for t in pool])

    def model(texts):
        counts = collections.Counter(i for t in texts for i in _ids(t))
        total = sum(counts.values())
        return lambda f: math.log((counts[f] + 1) / (total + 10_000))

    p_target, p_pool = model(target), model(pool)
    expected = [sum(p_target(f) - p_pool(f) for f in _ids(t)) for t in pool]
    assert scores == pytest.approx(expected, rel=1e-9, abs=1e-9)


@pytest.fixture
def files(tmp_path):
    rng = random.Random(0)
    pool = [{"id": f"d{i}", "text": d} for i, d in enumerate(DOCS[10:50])]
    pool += [{"id": f"n{i}", "conversations": [{"from": "human", "value": t}, {"from": "gpt", "value": "ok"}]}
             for i, t in enumerate(_numbers(60, 4))]
    rng.shuffle(pool)
    target = [{"text": d} for d in DOCS[:10]]
    return write_jsonl(tmp_path / "pool.jsonl", pool), write_jsonl(tmp_path / "target.jsonl", target)


@pytest.mark.parametrize("method", ["dict", "ncd", "dsir"])
def test_each_method_picks_the_targets_kind_and_is_deterministic(files, method):
    pool, target = files
    picks = [TargetSelector(method=method, budget=20, seed=1, workers=w).fit(target).select(pool)
             for w in (1, 2)]
    assert picks[0] == picks[1]  # the same whatever the number of worker processes
    rows = [json.loads(line) for line in open(pool)]
    assert sum(rows[i]["id"].startswith("d") for i in picks[0]) >= 18


def test_dsir_resamples_with_its_seed(files):
    pool, target = files
    sel = TargetSelector(method="dsir", keep=0.5).fit(target)
    a, b, c = sel.select(pool), sel.select(pool), TargetSelector(method="dsir", keep=0.5, seed=7).fit(target).select(pool)
    assert a == b and len(a) == 50
    assert a != c


def test_diverse_avoids_copies_of_one_aligned_record(tmp_path):
    pool = [{"text": DOCS[3]}] * 8 + [{"text": d} for d in DOCS[20:30]] + [{"text": t} for t in _numbers(10, 5)]
    target = [{"text": d} for d in DOCS[:10]]
    plain = TargetSelector(budget=6).fit(target).select(pool)
    diverse = TargetSelector(budget=6, diverse=True).fit(target).select(pool)
    copies = lambda picks: sum(i < 8 for i in picks)
    assert copies(plain) == 6  # the copy of a target record ranks first, 8 times over
    assert copies(diverse) <= 2 and len(diverse) == 6 and len(set(diverse)) == 6
    with pytest.raises(InputError, match="--keep must be a number in"):  # an empty selection is refused
        TargetSelector(keep=0.0, diverse=True).fit(target).select(pool)


def test_a_token_budget_stops_once_reached(files, tmp_path):
    pytest.importorskip("tokenizers")
    from tests.lm_fixtures import bpe_tokenizer_file

    pool, target = files
    tok = bpe_tokenizer_file(DOCS, tmp_path / "tokenizer.json")
    sel = TargetSelector(budget_tokens=2000, tokenizer=str(tmp_path / "tokenizer.json")).fit(target)
    picked = sel.select(pool)
    by_index = {i: json.loads(line) for i, line in enumerate(open(pool))}
    counts = [len(tok.encode(by_index[i]["text"], add_special_tokens=False).ids) for i in picked]
    assert sel.tokens_ == sum(counts) >= 2000 > sum(counts[:-1])
    assert picked == TargetSelector(budget=len(picked)).fit(target).select(pool)


def test_cli_writes_the_records_unchanged_best_first_with_scores(files, tmp_path):
    pool, target = files
    out, scores = tmp_path / "out.jsonl", tmp_path / "scores.csv"
    assert main(["select", "target", str(pool), "--target", str(target), "-o", str(out),
                 "--budget", "12", "--scores-out", str(scores), "--no-progress"]) == 0
    lines = open(pool, "rb").read().splitlines()
    picked = out.read_bytes().splitlines()
    assert len(picked) == 12 and all(line in lines for line in picked)
    rows = list(csv_rows(scores))
    assert len(rows) == 100 and {r["rank"] for r in rows} >= {"0", "11"}
    best = max(rows, key=lambda r: float(r["alignment"]))
    assert best["rank"] == "0" and picked[0] == lines[int(best["index"])]


def csv_rows(path):
    import csv
    with open(path, newline="") as f:
        yield from csv.DictReader(f)


def test_on_error_skip_writes_the_bad_records_aside(files, tmp_path):
    pool, target = files
    with open(pool, "a") as f:
        f.write('{"nothing": 1}\n')
    out = tmp_path / "out.jsonl"
    assert main(["select", "target", str(pool), "--target", str(target), "-o", str(out), "--keep", "0.1",
                 "--on-error", "skip", "--method", "dsir"]) == 0
    assert len(out.read_text().splitlines()) == 10
    assert json.loads((tmp_path / "out.jsonl.rejects.jsonl").read_text())["index"] == 100


@pytest.mark.parametrize("change, message", [
    ({"target": "empty"}, "input holds no records"),
    ({"target": "missing"}, "no such file"),
    ({"pool": "missing"}, "no such file"),
    ({"extra": ["--level", "30"]}, "--level"),
    ({"extra": ["--method", "ncd", "--level", "12"]}, "--level"),
    ({"budget": ["--budget", "-1"]}, "--budget"),
    ({"budget": ["--keep", "2"]}, "--keep"),
    ({"budget": ["--budget-tokens", "10"]}, "--tokenizer"),
    ({"budget": ["--budget-tokens", "10", "--tokenizer", "EMPTY"]}, "not a tokenizer.json"),
    ({"extra": ["--candidates", "0.5", "--diverse"]}, "--candidates"),
    ({"output": "out.txt"}, "output format"),
])
def test_bad_input_exits_2_without_a_traceback(files, tmp_path, capsys, change, message):
    pool, target = files
    (tmp_path / "empty.jsonl").write_text("")
    paths = {"empty": tmp_path / "empty.jsonl", "missing": tmp_path / "nope.jsonl"}
    argv = ["select", "target", str(paths.get(change.get("pool"), pool)),
            "--target", str(paths.get(change.get("target"), target)),
            "-o", str(tmp_path / change.get("output", "out.jsonl")),
            *change.get("budget", ["--budget", "3"]), *change.get("extra", [])]
    argv = [str(paths["empty"]) if a == "EMPTY" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out.jsonl").exists()


def test_a_target_without_text_is_refused():
    with pytest.raises(InputError, match="no text"):
        TargetSelector().fit([{"text": ""}])
    with pytest.raises(InputError, match="give the target"):
        TargetSelector().score([{"text": "a"}])
    with pytest.raises(SystemExit) as e:
        main(["select", "target", "p.jsonl", "--target", "t.jsonl", "-o", "o.jsonl", "--budget", "1",
              "--method", "cosine"])
    assert e.value.code == 2
