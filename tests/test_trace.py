"""--trace, the id lists and `entrosel explain` (issue 28): every dropped record once, with
the step and the reason with its numbers; the kept records are the rest."""
from __future__ import annotations

import json
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from entrosel import Dedup, LengthFilter, ZipSelector
from entrosel.cli import main
from entrosel.commands.filter import filter_to_file
from entrosel.commands.recipe import run_recipe
from entrosel.errors import InputError
from entrosel.io.trace import DropLog, explain, write_ids
from entrosel.selection import SELECTORS

from .conftest import write_jsonl
from .integrations_common import pool_records

ROOT = Path(__file__).resolve().parents[1]


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def pool(tmp_path) -> Path:
    """The integrations page's pool (51 records, three exact copies), a near copy of its
    first 35-word record (``near``, index 51), a record without an id (52), one without text
    (53) and a line that is not JSON (54)."""
    records = pool_records()
    j = next(i for i, r in enumerate(records) if len(r["text"].split()) == 35 and i not in (5, 17, 30))
    near = records[j]["text"].split()
    records.append({"id": "near", "of": records[j]["id"], "text": " ".join(near[:-1] + ["entropy"])})
    records.append({"text": "a record with no id of its own but long enough to stay", "source": "web"})
    records.append({"id": "notext", "source": "web"})
    path = write_jsonl(tmp_path / "pool.jsonl", records)
    with open(path, "a") as f:
        f.write("{not json\n")
    return path


def input_ids(path: Path) -> list:
    out = []
    for i, line in enumerate(path.read_text().splitlines()):
        try:
            out.append(json.loads(line).get("id", i))
        except ValueError:
            out.append(i)
    return out


def test_a_filter_traces_each_drop_with_its_numbers(pool, tmp_path):
    out = tmp_path / "long.jsonl"
    s = filter_to_file(LengthFilter(min_chars=40), pool, out, on_error="skip",
                       trace=tmp_path / "t.jsonl", kept_ids=tmp_path / "kept.txt",
                       removed_ids=tmp_path / "removed.parquet")
    trace = rows(tmp_path / "t.jsonl")
    short = next(r for r in trace if r["id"] == "d01")
    assert short == {"id": "d01", "index": 1, "step": "filter length", "reason": "min_chars",
                     "detail": "17 chars < --min-chars 40", "value": 17, "threshold": 40}
    bad = [r for r in trace if r["reason"] == "rejected"]
    assert [(r["id"], r["index"]) for r in bad] == [("notext", 53), ("54", 54)]  # ids as one type
    assert "no text" in bad[0]["detail"] and "malformed JSON" in bad[1]["detail"]
    kept = (tmp_path / "kept.txt").read_text().splitlines()
    assert kept == [str(json.loads(x).get("id", 52)) for x in out.read_text().splitlines()]
    assert sorted(kept + [str(r["id"]) for r in trace]) == sorted(map(str, input_ids(pool)))
    import pyarrow.parquet as pq
    assert pq.read_table(tmp_path / "removed.parquet").column("id").to_pylist() == [r["id"] for r in trace]
    assert "drops traced" in s.line("filter length")


def test_dedup_names_the_kept_record_by_id(pool, tmp_path):
    filter_to_file(Dedup(near=True, threshold=0.5), pool, tmp_path / "c.jsonl", on_error="skip",
                   trace=tmp_path / "t.parquet")
    import pyarrow.parquet as pq
    trace = {r["id"]: r for r in pq.read_table(tmp_path / "t.parquet").to_pylist()}
    assert trace["copy5"]["detail"] == "exact duplicate of id d05"
    assert (trace["copy5"]["duplicate_of"], trace["copy5"]["similarity"]) == ("d05", 1.0)
    near, of = trace["near"], json.loads(pool.read_text().splitlines()[51])["of"]
    assert near["reason"] == "near_duplicate" and near["duplicate_of"] == of
    assert near["detail"] == f"near duplicate of id {of}, Jaccard {near['similarity']:.2f}"
    assert explain("copy5", tmp_path / "t.parquet") == (
        "copy5 (input index 48): dropped at filter dedup: exact_duplicate: exact duplicate of id d05")


def test_selectors_say_why_a_record_was_not_picked(pool, tmp_path):
    z = ZipSelector(budget=8, on_error="skip")
    z.select_file(pool, tmp_path / "z.jsonl", trace=tmp_path / "z.trace.jsonl",
                  kept_ids=tmp_path / "z.kept.jsonl")
    trace = rows(tmp_path / "z.trace.jsonl")
    assert len(trace) + 8 == 55
    assert {r["detail"] for r in trace if r["reason"] == "not_selected"} == {
        f"not picked by select zip: budget 8 reached in round {max(z.rounds_)}"}
    assert [r["id"] for r in rows(tmp_path / "z.kept.jsonl")] == [
        json.loads(x).get("id", 52) for x in (tmp_path / "z.jsonl").read_text().splitlines()]

    target = write_jsonl(tmp_path / "target.jsonl", pool_records()[:5])
    t = SELECTORS["target"](target=str(target), budget=5, workers=1, on_error="skip")
    t.select_file(pool, tmp_path / "t.jsonl", trace=tmp_path / "t.trace.jsonl")
    dropped = [r for r in rows(tmp_path / "t.trace.jsonl") if r["reason"] == "not_selected"]
    assert len(dropped) == 55 - 5 - 2 and all(
        r["detail"].startswith(f"not picked by select target: score {r['value']:.6g}; the 5 picked scored ")
        for r in dropped)

    assert main(["score", "compression", str(pool), "-o", str(tmp_path / "s.csv"), "--on-error", "skip"]) == 0
    scores = str(tmp_path / "s.csv")
    cases = {"prune": dict(scores=scores, by="compression_ratio", budget=10),
             "topk": dict(scores=scores, by="compression_ratio", budget=10, largest=False),
             "band": dict(scores=scores, by="compression_ratio", low=20, high=80),
             "random": dict(budget=10, seed=1)}
    for name, options in cases.items():
        selector = SELECTORS[name](**options, on_error="skip")
        selector.select_file(pool, tmp_path / f"{name}.jsonl", trace=tmp_path / f"{name}.trace.jsonl")
        trace = rows(tmp_path / f"{name}.trace.jsonl")
        assert len(trace) + len(selector.selected_) == 55, name
        dropped = [r for r in trace if r["reason"] != "rejected"]
        if name == "random":
            assert {r["detail"] for r in dropped} == {"not drawn by select random: 10 of 53 drawn with seed 1"}
            continue
        for r in dropped:  # the record's score against the edge of what was kept
            assert r["value"] is not None and r["threshold"] is not None, r
            if name == "prune":
                assert r["value"] <= r["threshold"] and r["detail"].startswith("compression_ratio ")
            if name == "topk":
                assert r["value"] >= r["threshold"]


def test_the_cli_writes_them_and_explain_tells_the_story(pool, tmp_path, capsys):
    trace = tmp_path / "t.jsonl"
    assert main(["filter", "length", str(pool), "-o", str(tmp_path / "l.jsonl"), "--min-chars", "40",
                 "--on-error", "skip", "--trace", str(trace), "--write-removed-ids",
                 str(tmp_path / "removed.txt")]) == 0
    assert "drops traced" in capsys.readouterr().err
    assert main(["explain", "d01", "--trace", str(trace)]) == 0
    assert capsys.readouterr().out == ("d01 (input index 1): dropped at filter length: min_chars: "
                                       "17 chars < --min-chars 40\n")
    assert main(["explain", "d00", "--trace", str(trace)]) == 0
    assert capsys.readouterr().out == f"d00: not in the trace {trace}: kept (never dropped)\n"
    assert main(["explain", "54", "--trace", str(trace)]) == 0  # the bad line: its index is its id
    assert "dropped at filter length: rejected" in capsys.readouterr().out
    assert main(["explain", "d00", "--trace", str(tmp_path / "nosuch.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "nosuch.jsonl: no such trace file" in err and err.count("\n") == 1
    assert main(["explain", "d00", "--trace", str(tmp_path / "l.jsonl")]) == 2
    assert "not a trace" in capsys.readouterr().err
    assert main(["select", "zip", str(pool), "-o", str(tmp_path / "z.jsonl"), "--budget", "4",
                 "--on-error", "skip", "--write-kept-ids", str(tmp_path / "kept.txt")]) == 0
    assert len((tmp_path / "kept.txt").read_text().splitlines()) == 4


def test_id_lists_are_one_id_per_row(tmp_path):
    write_ids(["a", 3], tmp_path / "ids.txt")
    assert (tmp_path / "ids.txt").read_text() == "a\n3\n"
    write_ids(["a", 3], tmp_path / "ids.parquet")  # one column type: strings
    import pyarrow.parquet as pq
    assert pq.read_table(tmp_path / "ids.parquet").to_pylist() == [{"id": "a"}, {"id": "3"}]
    with pytest.raises(InputError, match="line break"):
        write_ids(["a\nb"], tmp_path / "bad.txt")
    with pytest.raises(InputError, match="--trace"):
        DropLog(trace=tmp_path / "t.txt")
    for name in ("empty.jsonl", "empty.parquet"):  # nothing dropped: an empty trace, all kept
        DropLog(trace=tmp_path / name).write()
        assert explain("a", tmp_path / name) == f"a: not in the trace {tmp_path / name}: kept (never dropped)"


DEFAULT = (ROOT / "recipes" / "sft-default.yaml").read_text().replace("budget: 1000", "budget: 30")


def test_the_default_recipe_traces_every_input_record_exactly_once(tmp_path, real_exchanges, capsys):
    """The default recipe over 140 real exchanges, 20 copied (new ids), a record without an
    id and a line that is not JSON: the trace and the output hold every input record once."""
    records = [dict(r) for r in real_exchanges[:120]]
    records += [{**r, "id": f"copy-{r['id']}"} for r in real_exchanges[:20]]
    records.append({"conversations": real_exchanges[130]["conversations"]})  # no id: its index
    pool = write_jsonl(tmp_path / "pool.jsonl", records)
    with open(pool, "a") as f:
        f.write("{not json\n")
    recipe = tmp_path / "sft.yaml"
    recipe.write_text(DEFAULT)
    out, trace = tmp_path / "sft.jsonl", tmp_path / "drops.jsonl"
    result = run_recipe(recipe, pool, out, on_error="skip", trace=trace,
                        removed_ids=tmp_path / "removed.txt", kept_ids=tmp_path / "kept.txt")
    dropped = rows(trace)
    kept = [json.loads(x).get("id", 140) for x in out.read_text().splitlines()]
    assert len(kept) == result.records == 30
    every = [str(i) for i in input_ids(pool)]
    assert len(every) == 142
    assert sorted(str(r["id"]) for r in dropped) + [] == sorted(set(every) - set(map(str, kept)))
    assert Counter(str(r["id"]) for r in dropped) + Counter(map(str, kept)) == Counter(every)
    assert sorted(r["index"] for r in dropped) == sorted(set(range(142)) - {
        every.index(str(k)) for k in kept})
    by_step = Counter((r["step_number"], r["step"]) for r in dropped)
    assert by_step[(0, "read")] == 1 and by_step[(1, "filter length")] > 0
    assert set(by_step) == {(0, "read"), (1, "filter length"), (2, "filter dedup"), (3, "select zip")}
    for r in dropped:  # each copy goes at the length filter with its original, or as its duplicate
        if r["id"].startswith("copy-") and r["step"] != "filter length":
            assert (r["reason"], r["duplicate_of"]) == ("exact_duplicate", r["id"].removeprefix("copy-"))
    assert {r["reason"] for r in dropped if r["step"] == "select zip"} == {"not_selected"}
    assert (tmp_path / "kept.txt").read_text().splitlines() == [str(k) for k in kept]
    assert (tmp_path / "removed.txt").read_text().splitlines() == [str(r["id"]) for r in dropped]
    copy = next(r for r in dropped if r["reason"] == "exact_duplicate")
    assert main(["explain", copy["id"], "--trace", str(trace)]) == 0
    assert capsys.readouterr().out.startswith(
        f"{copy['id']} (input index {copy['index']}): dropped at step 2 (filter dedup): "
        f"exact_duplicate: exact duplicate of id {copy['id'].removeprefix('copy-')}")
    # cached: the same trace from the steps' drops files; an untraced rerun leaves none
    again = run_recipe(recipe, pool, out, on_error="skip", trace=tmp_path / "again.jsonl")
    assert again.cached == 3 and (tmp_path / "again.jsonl").read_bytes() == trace.read_bytes()
    work = Path(f"{out}.steps")
    for drops in work.glob("*.drops.jsonl"):
        drops.unlink()
    # steps cached by an untraced run: the filters' removed rows, ZIP's summary
    run_recipe(recipe, pool, out, on_error="skip", trace=tmp_path / "late.jsonl")
    late = rows(tmp_path / "late.jsonl")
    assert [(r["id"], r["step"], r["reason"]) for r in late] == [
        (r["id"], r["step"], r["reason"] if r["step"] != "select zip" else "not_kept") for r in dropped]


def test_a_recipe_without_trace_leaves_no_drops_file(tmp_path, real_exchanges):
    pool = write_jsonl(tmp_path / "pool.jsonl", real_exchanges[:60])
    recipe = tmp_path / "r.yaml"
    recipe.write_text(textwrap.dedent("""\
        steps:
          - filter length: {min_chars: 200}
        """))
    run_recipe(recipe, pool, tmp_path / "out.jsonl", trace=tmp_path / "t.jsonl")
    assert list(Path(f"{tmp_path}/out.jsonl.steps").glob("*.drops.jsonl"))
    recipe.write_text(recipe.read_text().replace("200", "300"))
    run_recipe(recipe, pool, tmp_path / "out.jsonl")  # reruns the step: its old drops go
    assert not list(Path(f"{tmp_path}/out.jsonl.steps").glob("*.drops.jsonl"))


def test_trace_dataset_gives_every_row_with_why(tmp_path):
    datasets = pytest.importorskip("datasets")
    from entrosel.integrations.hf import filter_dataset, trace_dataset

    ds = datasets.Dataset.from_list(pool_records())
    traced = trace_dataset(ds, LengthFilter(min_chars=40))
    assert traced.column_names == ["id", "text", "source", "drop_reason", "drop_detail"]
    assert traced[1]["drop_reason"] == "min_chars" and traced[1]["drop_detail"] == "17 chars < --min-chars 40"
    kept = traced.filter(lambda row: row["drop_reason"] is None)
    assert kept["id"] == filter_dataset(ds, LengthFilter(min_chars=40))["id"]
    picked = trace_dataset(ds, ZipSelector(budget=8), prefix="zip")
    assert sum(r is None for r in picked["zip_reason"]) == 8
    dedup = trace_dataset(ds, Dedup())
    assert dedup[48]["drop_detail"] == "exact duplicate of id d05"
    with pytest.raises(ValueError, match="drop_reason"):
        trace_dataset(traced, Dedup())


def test_the_integrations_page_shows_what_a_traced_recipe_writes(tmp_path, monkeypatch):
    """docs/integrations.md: the trace rows and `explain` answers it shows are a real run's."""
    from .integrations_common import DOC, write_pool

    pool = write_pool(tmp_path)
    monkeypatch.chdir(tmp_path)
    Path("recipe.yaml").write_text("steps:\n  - filter length: {min_chars: 40}\n  - filter dedup: {}\n"
                                   "  - select zip: {budget: 8}\n")
    assert main(["run", "recipe.yaml", str(pool), "-o", "picked.jsonl", "--trace", "drops.jsonl",
                 "--no-progress"]) == 0
    written = Path("drops.jsonl").read_text().splitlines()
    page = DOC.read_text().splitlines()
    shown = [line for line in page if line.startswith('{"id": ')]
    assert len(shown) == 3 and all(line in written for line in shown)
    asked = [(k, line.split()[3]) for k, line in enumerate(page) if line.startswith("$ entrosel explain")]
    assert len(asked) == 2
    for k, record in asked:
        assert page[k + 1] == explain(record, "drops.jsonl")


def test_the_integrations_pages_trace_dataset_example_runs(tmp_path, monkeypatch):
    pytest.importorskip("datasets")
    from .doc_blocks import run_blocks
    from .integrations_common import DOC, write_pool

    write_pool(tmp_path)
    monkeypatch.chdir(tmp_path)
    with run_blocks(DOC, "integrations_trace", containing="trace_dataset") as ns:
        assert len(ns["short"]) == 21 and ns["traced"].num_rows == 51
