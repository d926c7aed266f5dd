"""Filters: length, exact and near dedup, score bands; the library and the command line."""
from __future__ import annotations

import gzip
import json
import random
import re

import numpy as np
import pytest
import yaml

from entrosel.cli import main
from entrosel.commands.filter import filter_dedup, filter_length, filter_score
from entrosel.errors import InputError
from entrosel.filters import Dedup, LengthFilter, ParameterError, ScoreFilter
from entrosel.filters import dedup as dedup_module
from entrosel.filters.minhash import lsh_params, shingle_hashes
from tests.conftest import write_jsonl


def chat(user: str, answer: str, id_: str | None = None) -> dict:
    r = {"conversations": [{"from": "human", "value": user}, {"from": "gpt", "value": answer}]}
    return r if id_ is None else {"id": id_, **r}


def lines(path) -> list[bytes]:
    return path.read_bytes().splitlines()


def test_length_bounds_are_inclusive_and_counted_by_first_failing_bound(tmp_path):
    records = [chat("hi", "x" * 20, "a"),   # 2 + 2 + 20 = 24 chars
               chat("hi", "x" * 6, "b"),    # 10 chars: under min_chars
               chat("hello there " * 20, "fine, thanks", "c"),  # too many chars
               chat("a b c d e f", "y" * 11, "d")]  # 24 chars, 7 words
    pool = write_jsonl(tmp_path / "pool.jsonl", records)
    s = filter_length(pool, tmp_path / "out.jsonl", min_chars=24, max_chars=100, max_words=6,
                      removed_out=tmp_path / "removed.jsonl")
    assert s.records == 1 and s.judged == 4
    assert s.removed == {"min_chars": 1, "max_chars": 1, "max_words": 1}
    assert lines(tmp_path / "out.jsonl") == [lines(pool)[0]]  # byte for byte
    removed = [json.loads(x) for x in lines(tmp_path / "removed.jsonl")]
    assert [(r["id"], r["reason"]) for r in removed] == [("b", "min_chars"), ("c", "max_chars"),
                                                          ("d", "max_words")]
    assert removed[0]["detail"] == "10 chars < --min-chars 24"


def test_min_response_chars_applies_to_every_assistant_turn(tmp_path):
    two_turns = {"conversations": [{"from": "human", "value": "q1"}, {"from": "gpt", "value": "long answer here"},
                                   {"from": "human", "value": "q2"}, {"from": "gpt", "value": "ok"}]}
    records = [chat("question", "a full answer"), two_turns, {"text": "a document with no reply"}]
    step = LengthFilter(min_response_chars=5).fit(records)
    assert [step.is_kept(i) for i in range(3)] == [True, False, False]
    assert step.removed_[2].detail == "no assistant turn"
    assert [r.index for r in step.filter(records)] == [0]


def test_min_tokens_counts_with_the_tokenizer(tmp_path):
    pytest.importorskip("tokenizers")
    from tests.lm_fixtures import bpe_tokenizer_file

    texts = ["the cat sat on the mat", "a dog ran far away from home today", "hi"]
    tok = bpe_tokenizer_file(texts * 20, tmp_path / "tok.json")
    records = [{"text": t} for t in texts]
    counts = [len(tok.encode(t, add_special_tokens=False).ids) for t in texts]
    floor = sorted(counts)[1]
    step = LengthFilter(min_tokens=floor, tokenizer=str(tmp_path / "tok.json")).fit(records)
    assert [step.is_kept(i) for i in range(3)] == [c >= floor for c in counts]


@pytest.mark.parametrize("kwargs, message", [
    ({}, "give at least one bound"),
    ({"min_chars": -1}, "--min-chars must be an integer >= 0, not -1"),
    ({"min_chars": 2.5}, "--min-chars must be an integer >= 0, not 2.5"),
    ({"min_chars": 10, "max_chars": 5}, "--min-chars (10) is above --max-chars (5)"),
    ({"min_tokens": 5}, "give --tokenizer"),
])
def test_length_refuses_bad_options_before_reading(kwargs, message):
    with pytest.raises(InputError, match=re.escape(message)):
        LengthFilter(**kwargs).fit("no-such-file.jsonl")


def test_on_error_skip_writes_rejects_and_counts_them(tmp_path):
    pool = tmp_path / "pool.jsonl"
    pool.write_text(json.dumps(chat("hello", "world, a good answer")) + "\n{broken\n"
                    + json.dumps({"conversations": []}) + "\n")
    with pytest.raises(InputError, match="pool.jsonl:2: record 1: malformed JSON"):
        filter_length(pool, tmp_path / "out.jsonl", min_chars=1)
    assert not (tmp_path / "out.jsonl").exists()
    s = filter_length(pool, tmp_path / "out.jsonl", min_chars=1, on_error="skip")
    assert (s.records, s.rejected) == (1, 2)
    rejects = [json.loads(x) for x in lines(tmp_path / "out.jsonl.rejects.jsonl")]
    assert [r["index"] for r in rejects] == [1, 2]
    assert "2 rejected" in s.line("filter length")


def test_exact_dedup_keeps_the_first_and_names_it(tmp_path):
    records = [chat("q", "same answer", "a"), chat("q", "other", "b"), chat("q", "same answer", "c"),
               chat("Q", "same   answer", "d"), chat("q", "same answer", "e")]
    pool = write_jsonl(tmp_path / "pool.jsonl", records)
    s = filter_dedup(pool, tmp_path / "out.jsonl", removed_out=tmp_path / "removed.jsonl")
    assert s.removed == {"exact_duplicate": 2}
    assert lines(tmp_path / "out.jsonl") == [lines(pool)[i] for i in (0, 1, 3)]
    removed = [json.loads(x) for x in lines(tmp_path / "removed.jsonl")]
    assert [(r["id"], r["duplicate_of"], r["duplicate_of_id"]) for r in removed] == [("c", 0, "a"), ("e", 0, "a")]
    loose = Dedup(lowercase=True, normalize_whitespace=True).fit(records)
    assert sorted(loose.removed_) == [2, 3, 4]


def test_planted_exact_copies_are_all_removed_and_nothing_else(real_exchanges):
    first = Dedup().fit(real_exchanges[:400])  # the real data holds a few duplicates of its own
    base = list(first.filter(real_exchanges[:400]))
    rng = random.Random(0)
    pool = [(r.data, False) for r in base]
    for _ in range(100):  # each copy after its original
        original = base[rng.randrange(len(base) // 2)].data
        at = next(p for p, (r, _) in enumerate(pool) if r is original) + 1
        pool.insert(rng.randrange(at, len(pool) + 1), (dict(original), True))
    step = Dedup().fit([r for r, _ in pool])
    assert set(step.removed_) == {i for i, (_, copy) in enumerate(pool) if copy}
    assert step.counts_ == {"exact_duplicate": 100}


def replace_words(text: str, k: int, rng: random.Random) -> str:
    words = text.split(" ")
    for i in rng.sample(range(len(words)), k):
        words[i] = f"zq{rng.randrange(10**6)}"
    return " ".join(words)


def near_copies(records: list[dict], n: int, seed: int = 0) -> tuple[list[dict], set[int]]:
    """``records`` plus ``n`` copies of long ones with 3 words replaced, each after its original;
    returns the pool and the positions of the copies."""
    rng = random.Random(seed)
    long = [i for i, r in enumerate(records) if len(r["conversations"][1]["value"].split(" ")) >= 150]
    pool = [(r, False) for r in records]
    for i in rng.sample(long, n):
        copy = json.loads(json.dumps(records[i]))
        copy["conversations"][1]["value"] = replace_words(copy["conversations"][1]["value"], 3, rng)
        at = next(p for p, (r, _) in enumerate(pool) if r is records[i]) + 1
        pool.insert(rng.randrange(at, len(pool) + 1), (copy, True))
    return [r for r, _ in pool], {p for p, (_, c) in enumerate(pool) if c}


def test_near_dedup_finds_planted_near_copies_and_keeps_the_distinct(real_exchanges):
    base = [r.data for r in Dedup(near=True).fit(real_exchanges).filter(real_exchanges)]
    pool, copies = near_copies(base, 60)
    step = Dedup(near=True, threshold=0.7).fit(pool)
    removed = set(step.removed_)
    assert len(removed & copies) >= 0.9 * len(copies)
    distinct = set(range(len(pool))) - copies
    assert len(distinct - removed) >= 0.98 * len(distinct)
    assert all(step.removed_[i].reason == "near_duplicate" for i in removed & copies)
    # keep-first: the original, earlier in the pool, stays; its copy names it
    for i in removed & copies:
        assert step.removed_[i].duplicate_of < i and step.is_kept(step.removed_[i].duplicate_of)


def test_near_dedup_keeps_whichever_comes_first():
    words = [f"w{i}" for i in range(200)]
    a = " ".join(words)
    b = " ".join(words[:100] + ["x1"] + words[101:])  # one word replaced
    step = Dedup(near=True).fit([{"text": b}, {"text": "something else entirely"}, {"text": a}])
    assert sorted(step.removed_) == [2] and step.removed_[2].duplicate_of == 0
    step = Dedup(near=True).fit([{"text": a}, {"text": b}])
    assert sorted(step.removed_) == [1] and step.removed_[1].duplicate_of == 0


def test_near_dedup_does_not_chain_through_removed_records():
    words = [f"w{i}" for i in range(300)]
    a = words
    b = words[:150] + [f"b{i}" for i in range(25)] + words[175:]   # Jaccard 0.83 to a
    c = b[:40] + [f"c{i}" for i in range(25)] + b[65:]              # 0.83 to b, 0.69 to a
    step = Dedup(near=True, threshold=0.76, num_perm=256).fit([{"text": " ".join(x)} for x in (a, b, c)])
    assert sorted(step.removed_) == [1]  # b goes as a's copy; c is not a's, so it stays


def test_a_record_similar_to_two_kept_ones_names_the_earliest():
    z = [f"w{i}" for i in range(300)]
    x = z[:50] + [f"x{i}" for i in range(40)] + z[90:]     # Jaccard 0.75 to z
    y = z[:200] + [f"y{i}" for i in range(40)] + z[240:]   # 0.75 to z, 0.56 to x
    step = Dedup(near=True, threshold=0.65, num_perm=256).fit([{"text": " ".join(t)} for t in (x, y, z)])
    assert sorted(step.removed_) == [2] and step.removed_[2].duplicate_of == 0


def test_lsh_candidates_are_verified_against_the_threshold(real_exchanges):
    loose = Dedup(near=True, bands=64).fit(real_exchanges)  # 2 rows a band: many candidates
    assert loose.candidate_pairs_ > 300
    strict = Dedup(near=True).fit(real_exchanges)
    assert set(loose.removed_) >= set(strict.removed_)
    assert len(loose.removed_) < 0.05 * len(real_exchanges)
    assert all(r.similarity >= 0.7 for r in loose.removed_.values())


def test_chunked_signatures_match_one_chunk(monkeypatch, real_exchanges, tmp_path):
    pool, _ = near_copies(real_exchanges[:300], 20, seed=1)
    wordless = [{"text": t} for t in ("!!!", "???", "...", "-- --", "¿?")]  # no shingle: never near
    for i, record in enumerate(wordless):
        pool.insert(40 * i + 7, record)
    whole = Dedup(near=True, workers=1).fit(pool)
    assert not {pool.index(r) for r in wordless} & set(whole.removed_)
    monkeypatch.setattr(dedup_module, "_CHUNK_BYTES", 20_000)  # many chunks, two workers
    work = tmp_path / "work"
    chunked = Dedup(near=True, workers=2, work_dir=str(work)).fit(pool)
    assert chunked.removed_ == whole.removed_ and len(whole.removed_) >= 18
    assert list(work.iterdir()) == []  # signatures and band tables are removed afterwards


def test_shingle_hashes_match_a_python_reference():
    texts = ["The cat, the CAT!  the cat sat.", "the cat the cat the cat sat", "one two",
             "", "   ", "café au lait café", "sat cat the"]
    hashes, offsets = shingle_hashes(texts, 3)
    rows = [set(hashes[offsets[i]:offsets[i + 1]].tolist()) for i in range(len(texts))]

    def ref(text):
        words = re.findall(r"[0-9a-z_\u0080-\U0010ffff]+", text.lower())
        if not words:
            return set()
        return {tuple(words[i:i + 3]) for i in range(max(1, len(words) - 2))}

    assert [len(r) for r in rows] == [len(ref(t)) for t in texts]
    assert rows[0] == rows[1]            # punctuation and case do not matter
    assert rows[2] and not rows[3] and not rows[4]
    assert not rows[6] & rows[1]         # word order does
    assert offsets.dtype == np.uint64 and len(offsets) == len(texts) + 1


def test_lsh_params_are_datasketchs():
    from datasketch.lsh import _optimal_param

    for threshold in (0.5, 0.7, 0.85):
        for num_perm in (64, 128):
            assert lsh_params(threshold, num_perm) == _optimal_param(threshold, num_perm, 0.5, 0.5)


@pytest.mark.parametrize("kwargs, message", [
    ({"threshold": 0}, "--threshold must be a number in (0, 1], not 0"),
    ({"threshold": 1.5}, "--threshold must be a number in (0, 1], not 1.5"),
    ({"ngram": 0}, "--ngram must be an integer in [1, 64], not 0"),
    ({"num_perm": 1}, "--num-perm must be an integer in [2, 1024], not 1"),
    ({"bands": 300}, "--bands (300) cannot exceed --num-perm (128)"),
    ({"near": "yes"}, "--near must be true or false, not 'yes'"),
])
def test_dedup_refuses_bad_options(kwargs, message):
    with pytest.raises(InputError, match=re.escape(message)):
        Dedup(**kwargs).validate()


def test_score_filter_keeps_a_band(tmp_path):
    records = [chat("q", f"answer {i}", f"r{i}") for i in range(5)]
    pool = write_jsonl(tmp_path / "pool.jsonl", records)
    scores = tmp_path / "scores.csv"
    scores.write_text("index,perplexity\n0,10\n1,30\n2,\n3,60\n4,45\n")
    s = filter_score(pool, tmp_path / "out.jsonl", scores=str(scores), by="perplexity", min=30, max=50)
    assert lines(tmp_path / "out.jsonl") == [lines(pool)[i] for i in (1, 4)]
    assert s.removed == {"min_perplexity": 1, "no_score": 1, "max_perplexity": 1}
    scores.write_text("index,perplexity\n0,10\n1,30\n")
    with pytest.raises(InputError, match="record 2 has no row in the score file"):
        filter_score(pool, tmp_path / "out.jsonl", scores=str(scores), by="perplexity", min=1)
    with pytest.raises(InputError, match="give --min and/or --max"):
        ScoreFilter(str(scores), "perplexity").validate()
    with pytest.raises(ParameterError, match="--by must be a string"):
        ScoreFilter(str(scores)).validate()


def test_cli_filters_print_one_line_and_exit_2_on_bad_options(tmp_path, capsys, real_exchanges):
    pool = write_jsonl(tmp_path / "pool.jsonl", real_exchanges[:200] + real_exchanges[:5])
    assert main(["filter", "dedup", str(pool), "-o", str(tmp_path / "d.jsonl"), "--near"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("entrosel filter dedup: ")
    assert "exact_duplicate 5" in err[0] and "14 bands x 9 rows" in err[0]
    assert main(["filter", "length", str(pool), "-o", str(tmp_path / "l.jsonl"), "--min-chars", "50"]) == 0
    assert "removed" in capsys.readouterr().err
    for argv, message in [
        (["filter", "length", str(pool), "-o", "x.jsonl", "--min-chars", "-3"],
         "--min-chars must be an integer >= 0, not -3"),
        (["filter", "dedup", str(pool), "-o", "x.jsonl", "--threshold", "0.8"],
         "--threshold applies to near duplicates: add --near"),
        (["filter", "dedup", str(pool), "-o", "x.jsonl", "--near", "--threshold", "2"],
         "--threshold must be a number in (0, 1], not 2.0"),
        (["filter", "score", str(pool), "-o", "x.jsonl", "--scores", "none.csv", "--by", "x", "--min", "1"],
         "none.csv: no such score file"),
        (["filter", "length", str(pool), "-o", "x.unknown", "--min-chars", "1"],
         "cannot tell the output format"),
    ]:
        assert main(argv) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "x.jsonl").exists()


@pytest.mark.parametrize("first_workers", [2, 1])
def test_dedup_after_a_dedup_in_the_same_process_does_not_hang(tmp_path, first_workers):
    """rensa signs on a Rust thread pool; a worker forked from a process where that pool had
    started waited on it for ever (a second near dedup in one Python process: a recipe, a
    notebook). With 2 workers the first dedup signs in its workers only; with 1 it signs
    here, and the second one's workers then come from a fork server (so the script has its
    main guard). Run in a child so that a hang fails the test instead of stopping the suite."""
    import subprocess
    import sys

    script = tmp_path / "two.py"
    script.write_text(f"""
import json, random
from entrosel import Dedup
from entrosel.commands.filter import filter_to_file

def main():
    random.seed(0)
    words = [f"w{{i}}" for i in range(5000)]
    for name, n, workers in (("small", 1500, {first_workers}), ("big", 3500, 2)):
        with open(r"{tmp_path}/" + name + ".jsonl", "w") as f:  # one chunk of text, then two
            for i in range(n):
                f.write(json.dumps({{"text": " ".join(random.choices(words, k=300))}}) + "\\n")
        filter_to_file(Dedup(near=True, workers=workers), r"{tmp_path}/" + name + ".jsonl",
                       r"{tmp_path}/" + name + ".out.jsonl")
    print("done")

if __name__ == "__main__":
    main()
""")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"


def test_a_duplicate_of_a_record_removed_later_names_its_id_in_the_verb_and_a_recipe(tmp_path):
    words = [f"w{i}" for i in range(300)]
    near = words[:150] + [f"b{i}" for i in range(20)] + words[170:]  # Jaccard ~0.87 to words
    pool = write_jsonl(tmp_path / "pool.jsonl", [
        {"id": "orig", "text": " ".join(words)}, {"id": "near", "text": " ".join(near)},
        {"id": "copy", "text": " ".join(near)}])
    # the exact pass keeps "near" and removes "copy" as its copy; the near pass then removes
    # "near" itself: the row of "copy" still gives the id of the record it repeats
    assert main(["filter", "dedup", str(pool), "-o", str(tmp_path / "out.jsonl"), "--near",
                 "--removed-out", str(tmp_path / "removed.jsonl"), "--no-progress"]) == 0
    by_verb = [json.loads(x) for x in lines(tmp_path / "removed.jsonl")]
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"input": str(pool), "output": str(tmp_path / "sel.jsonl"),
                                      "steps": [{"filter dedup": {"near": True}}]}))
    assert main(["run", str(recipe), "--no-progress"]) == 0
    [removed] = (tmp_path / "sel.jsonl.steps").glob("*.removed.jsonl.gz")
    by_recipe = [json.loads(x) for x in gzip.decompress(removed.read_bytes()).splitlines()]
    assert by_verb == by_recipe
    assert [(r["id"], r["duplicate_of_id"]) for r in by_recipe] == [("near", "orig"), ("copy", "near")]
