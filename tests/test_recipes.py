"""Recipes: validation before any work, caching by content and options, resume after a kill."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from entrosel.cli import main
from entrosel.commands.recipe import load_recipe, run_recipe
from entrosel.errors import InputError
from tests.conftest import write_jsonl

ROOT = Path(__file__).resolve().parents[1]

RECIPE = """\
steps:
  - filter length:
      min_chars: 200
      min_response_chars: 20
  - filter dedup: {near: true}
  - score compression: {level: 6}
  - filter score: {by: compression_ratio, min: 1.2}
  - select zip: {budget: 40, k1: 200, k2: 20, k3: 10, workers: 1}
"""


def recipe_file(tmp_path: Path, text: str = RECIPE, name: str = "recipe.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def pool(tmp_path, real_exchanges) -> Path:
    return write_jsonl(tmp_path / "pool.jsonl", real_exchanges[:300] + real_exchanges[:20])


def mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def test_a_recipe_runs_every_step_then_is_cached(tmp_path, pool):
    out = tmp_path / "sft.jsonl"
    first = run_recipe(recipe_file(tmp_path), pool, out)
    assert (first.ran, first.cached, first.records) == (5, 0, 40)
    rows = [json.loads(x) for x in out.read_bytes().splitlines()]
    texts = [json.dumps(r["conversations"]) for r in rows]
    assert len(set(texts)) == 40  # no exact duplicate survives
    assert all(sum(len(t["value"]) for t in r["conversations"]) + 2 >= 200 for r in rows)
    work = Path(f"{out}.steps")
    assert sorted(p.name for p in work.glob("*.done.json")) == [
        "01-filter-length.done.json", "02-filter-dedup.done.json",
        "03-score-compression.done.json", "04-filter-score.done.json", "05-select-zip.done.json"]
    before = mtimes(work)
    again = run_recipe(recipe_file(tmp_path), pool, out)
    assert (again.ran, again.cached) == (0, 5) and mtimes(work) == before
    # the work folder holds positions, scores and markers, never a copy of the records
    assert len(np.load(work / "05-select-zip.kept.npy")) == 40
    assert sum(p.stat().st_size for p in work.iterdir()) < pool.stat().st_size / 4


def test_changed_options_rerun_that_step_and_the_ones_after(tmp_path, pool):
    out = tmp_path / "sft.jsonl"
    run_recipe(recipe_file(tmp_path), pool, out)
    # the cache is by content: new scores that keep the same records leave the selection cached
    rescored = run_recipe(recipe_file(tmp_path, RECIPE.replace("{level: 6}", "{level: 5}")), pool, out)
    assert [line.startswith("entrosel run: step") for line in rescored.lines] == [True, True, False, False, True]
    tighter = RECIPE.replace("{level: 6}", "{level: 5}").replace("min: 1.2", "min: 2.5")
    changed = run_recipe(recipe_file(tmp_path, tighter), pool, out)
    assert [line.startswith("entrosel run: step") for line in changed.lines] == [True] * 3 + [False] * 2
    # so does changed input content, from the first step
    write_jsonl(pool, [json.loads(x) for x in pool.read_bytes().splitlines()][:250])
    assert run_recipe(recipe_file(tmp_path), pool, out).ran == 5


def test_a_killed_run_resumes_at_the_first_unfinished_step(tmp_path, pool):
    out = tmp_path / "sft.jsonl"
    recipe = recipe_file(tmp_path)
    # the select step kills its own process (SIGKILL: no cleanup runs) halfway
    killer = textwrap.dedent(f"""
        import os, signal
        from entrosel.commands import recipe as r
        def die(*args):
            os.kill(os.getpid(), signal.SIGKILL)
        import dataclasses
        r.STEPS["select zip"] = dataclasses.replace(r.steps()["select zip"], run=die)
        r.run_recipe({str(recipe)!r}, {str(pool)!r}, {str(out)!r})
    """)
    proc = subprocess.run([sys.executable, "-c", killer], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == -9
    work = Path(f"{out}.steps")
    assert len(list(work.glob("*.done.json"))) == 4 and not out.exists()
    resumed = run_recipe(recipe, pool, out)
    assert (resumed.ran, resumed.cached, resumed.records) == (1, 4, 40)


def test_a_run_killed_inside_zip_resumes_from_its_last_round(tmp_path, pool, monkeypatch):
    out, reference = tmp_path / "sft.jsonl", tmp_path / "reference.jsonl"
    recipe = recipe_file(tmp_path)
    run_recipe(recipe, pool, reference)
    # ZIP kills its own process (SIGKILL: no cleanup runs) as its third round starts
    killer = textwrap.dedent(f"""
        import os, signal
        from entrosel.selection import zip as zip_module
        from entrosel.selection.zip import ZipSelector
        zip_module.RESUMABLE_SAVE_EVERY_S = 0  # saved after every round (a small run is fast)
        original, calls = ZipSelector._round, []
        def round_(self, *args):
            calls.append(1)
            if len(calls) == 3:
                os.kill(os.getpid(), signal.SIGKILL)
            return original(self, *args)
        ZipSelector._round = round_
        from entrosel.commands.recipe import run_recipe
        run_recipe({str(recipe)!r}, {str(pool)!r}, {str(out)!r})
    """)
    proc = subprocess.run([sys.executable, "-c", killer], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == -9, proc.stderr
    work = Path(f"{out}.steps")
    [state] = work.glob("05-select-zip.state-*")  # two rounds saved, under the step's fingerprint
    stale = work / "05-select-zip.state-0123456789abcdef"  # of a run with other options
    shutil.copytree(state, stale)
    from entrosel.selection.checkpoint import Checkpoint

    loaded = []  # (round, picks) of each state read back, as read (the run goes on with it)
    load = Checkpoint.load

    def spy(self):
        state = load(self)
        loaded.append((state.round, len(state.selected)))
        return state

    monkeypatch.setattr(Checkpoint, "load", spy)
    resumed = run_recipe(recipe, pool, out)
    assert (resumed.ran, resumed.cached) == (1, 4)
    assert loaded == [(2, 20)]
    assert out.read_bytes() == reference.read_bytes()
    assert not list(work.glob("05-select-zip.state-*"))  # done: its state and the stale one gone


def test_a_report_step_reports_the_selection_against_the_pool(tmp_path, real_exchanges):
    pytest.importorskip("matplotlib")
    pool = write_jsonl(tmp_path / "pool.jsonl", real_exchanges[:30] + real_exchanges[:5])
    text = "steps:\n  - filter dedup: {}\n  - report: {format: md}\n  - filter length: {min_chars: 1}\n"
    out = tmp_path / "sft.jsonl"
    result = run_recipe(recipe_file(tmp_path, text), pool, out)
    page = Path(f"{out}.steps") / "02-report.md"
    assert result.lines[1].startswith("entrosel report: ") and page.exists()
    # the report passes the records on: the next step reads the dedup step's 30 records
    assert result.records == 30 and len(np.load(Path(f"{out}.steps") / "01-filter-dedup.kept.npy")) == 30
    table = page.read_text()
    assert "| records | 30 | 35 |" in table and "| exact duplicates (records) | 0 | 5 |" in table
    assert run_recipe(recipe_file(tmp_path, text), pool, out).cached == 3


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path, pool, capsys):
    out = tmp_path / "sft.jsonl"
    assert main(["run", str(recipe_file(tmp_path)), str(pool), "-o", str(out), "--dry-run"]) == 0
    plan = capsys.readouterr().out.splitlines()
    assert plan[0].startswith("plan of ") and len(plan) == 6
    assert plan[1].startswith("  1. filter length {min_chars: 200, min_response_chars: 20} -> ")
    assert all(line.endswith("[to run]") for line in plan[1:])
    assert not out.exists() and not Path(f"{out}.steps").exists()
    run_recipe(recipe_file(tmp_path), pool, out)
    assert main(["run", str(recipe_file(tmp_path)), str(pool), "-o", str(out), "--dry-run"]) == 0
    assert all(line.endswith("[cached]") for line in capsys.readouterr().out.splitlines()[1:])


def test_cli_run_ends_with_one_summary_line(tmp_path, pool, capsys):
    out = tmp_path / "sft.jsonl"
    assert main(["run", str(recipe_file(tmp_path)), str(pool), "-o", str(out)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("entrosel filter length: ") and err[-1].startswith(
        "entrosel run: 5 steps (5 run, 0 cached), 40 records in ")


@pytest.mark.parametrize("text, line, message", [
    ("steps:\n  - filter length: {min_chars: 10}\n  - filter lenght: {min_chars: 10}\n", 3,
     "step 2: unknown step 'filter lenght'; steps are: filter length, filter dedup"),
    ("steps:\n  - filter dedup:\n      near: true\n      threshold: 1.5\n", 4,
     "step 1 (filter dedup): threshold must be a number in (0, 1], not 1.5"),
    ("steps:\n  - filter length:\n      min_chars: 10\n      min_char: 5\n", 4,
     "step 1 (filter length): unknown option 'min_char'; options are: min_chars, max_chars"),
    ("steps:\n  - filter length: {min_chars: 10}\n  - select zip: {k1: 10}\n", 3,
     "step 2 (select zip): give a budget"),
    ("steps:\n  - select zip: {budget: 10, compressor: zlib, level: 12}\n", 2,
     "step 1 (select zip): --level for zlib must be in 0..9, not 12"),
    ("steps:\n  - filter score: {by: perplexity, min: 3}\n", 2,
     "step 1 (filter score): needs scores: FILE, or a 'score ...' step before it"),
    ("steps:\n  - select zip:\n      budget: ten\n", 3,
     "step 1 (select zip): budget must be an integer >= 1, not 'ten'"),
    ("steps:\n  - score compression: {compressor: gzip}\n", 2,
     "step 1 (score compression): compressor must be one of zlib, zstd, lzma, not 'gzip'"),
    ("steps:\n  - filter length: {min_chars: 10}\n  - report: {format: pdf}\n", 3,
     "step 2 (report): format must be one of html, md, not 'pdf'"),
    ("steps:\n  - filter length: [min_chars, 10]\n", 2, "step 1 (filter length): options must be a mapping"),
    ("inptu: x.jsonl\nsteps:\n  - filter dedup:\n", 1, "unknown key 'inptu'"),
    ("steps: []\n", 1, "'steps' must be a list of steps"),
    ("steps:\n  - filter dedup: {near: true\n", 3, "not valid YAML"),
    ("steps:\n  - !!python/object/apply:os.system ['echo hacked']\n", 2, "not valid YAML"),
])
def test_bad_recipes_exit_2_naming_the_step_and_line(tmp_path, pool, capsys, text, line, message):
    recipe = recipe_file(tmp_path, text)
    with pytest.raises(InputError) as e:
        load_recipe(recipe)
    assert e.value.line == line and message in e.value.reason
    assert main(["run", str(recipe), str(pool), "-o", str(tmp_path / "out.jsonl")]) == 2
    assert f"{recipe}:{line}: " in capsys.readouterr().err
    assert not (tmp_path / "out.jsonl.steps").exists()  # nothing ran


def test_the_default_recipe_is_valid():
    recipe = load_recipe(ROOT / "recipes" / "sft-default.yaml")
    assert [s.kind for s in recipe.steps] == ["filter length", "filter dedup", "select zip"]
    assert recipe.input == "data/pool.jsonl" and recipe.output == "data/sft.jsonl"


def test_every_registered_scorer_and_selector_is_a_step(tmp_path, pool, real_exchanges):
    target = write_jsonl(tmp_path / "target.jsonl", real_exchanges[400:420])
    text = f"""\
        steps:
          - filter dedup: {{}}
          - score words: {{}}
          - select prune: {{by: word_surprisal, keep: 0.5}}
          - select target: {{target: {target}, method: dsir, budget: 20, seed: 1, workers: 1}}
        """
    out = tmp_path / "picked.jsonl"
    result = run_recipe(recipe_file(tmp_path, text), pool, out)
    assert (result.ran, result.records) == (4, 20)
    work = Path(f"{out}.steps")
    records = [json.loads(x) for x in pool.read_bytes().splitlines()]
    deduped = [records[i] for i in np.load(work / "01-filter-dedup.kept.npy")]
    pruned = [deduped[i] for i in np.load(work / "03-select-prune.kept.npy")]
    assert len(pruned) == round(0.5 * len(deduped))  # the prune step read the words step's scores
    picked = [json.loads(x) for x in out.read_bytes().splitlines()]
    assert all(p in pruned for p in picked)


@pytest.mark.parametrize("step,message", [
    ("select zip: {budget: 5, k4: 3}", "step 1 (select zip): unknown option 'k4'"),
    ("select prune: {scores: s.jsonl, by: info, keep: 1.5}", "keep must be a number in (0, 1], not 1.5"),
    ("select band: {by: info, low: 10, high: 20}", "needs scores: FILE, or a 'score ...' step before it"),
    ("score lm: {}", "model must be a string (required), not None"),
])
def test_a_registered_step_checks_its_options_before_any_work(tmp_path, step, message):
    with pytest.raises(InputError) as e:
        load_recipe(recipe_file(tmp_path, f"steps:\n  - {step}\n"))
    assert message in e.value.reason and e.value.line == 2


def test_a_file_named_in_a_steps_options_is_part_of_its_cache_key(tmp_path, pool, real_exchanges):
    target = write_jsonl(tmp_path / "target.jsonl", real_exchanges[400:410])
    recipe = recipe_file(tmp_path, f"steps:\n  - select target: {{target: {target}, budget: 5, workers: 1}}\n")
    out = tmp_path / "picked.jsonl"
    assert run_recipe(recipe, pool, out).ran == 1
    assert run_recipe(recipe, pool, out).cached == 1
    write_jsonl(target, real_exchanges[500:510])  # the same path, another target
    again = run_recipe(recipe, pool, out)
    assert again.ran == 1
    from entrosel import TargetSelector
    assert [json.loads(x) for x in out.read_bytes().splitlines()] == \
        TargetSelector(target=str(target), budget=5, workers=1).subset(pool)


def test_the_default_recipe_reads_its_input_once_and_copies_no_records(tmp_path, pool, monkeypatch):
    from entrosel.io import readers

    reads = []  # every pass of a reader over a JSONL file: streamed, or read in place
    jsonl, spans = readers._READERS["jsonl"], readers.jsonl_spans

    def counted(read):
        def reader(path, *args):
            reads.append(Path(path))
            return (yield from read(path, *args))
        return reader

    monkeypatch.setitem(readers._READERS, "jsonl", counted(jsonl))
    monkeypatch.setattr(readers, "jsonl_spans", counted(spans))
    default = (ROOT / "recipes" / "sft-default.yaml").read_text().replace("budget: 1000", "budget: 50")
    out = tmp_path / "sft.jsonl"
    result = run_recipe(recipe_file(tmp_path, default), pool, out)
    assert result.records == 50 and reads.count(pool) == 1
    work = Path(f"{out}.steps")
    # no step leaves records: only positions, markers and the rows of what was removed
    assert sorted({p.name.split(".", 1)[1] for p in work.iterdir()}) == [
        "done.json", "kept.npy", "removed.jsonl.gz"]
    again = run_recipe(recipe_file(tmp_path, default), pool, out)
    assert again.cached == 3 and reads.count(pool) == 2
