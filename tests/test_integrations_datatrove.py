"""docs/integrations.md's datatrove example run by the real datatrove (LocalPipelineExecutor),
and how filters and selection behave per task."""
from __future__ import annotations

import pytest

from entrosel import LengthFilter, ZipSelector

from .conftest import write_jsonl
from .doc_blocks import run_blocks
from .integrations_common import DOC, cli_ids, jsonl_ids, write_pool

pytest.importorskip("datatrove")
pytest.importorskip("orjson")  # datatrove's JsonlReader
dt = pytest.importorskip("entrosel.integrations.datatrove")

from datatrove.executor import LocalPipelineExecutor  # noqa: E402
from datatrove.pipeline.readers import JsonlReader  # noqa: E402
from datatrove.pipeline.writers import JsonlWriter  # noqa: E402


def test_the_pages_pipeline_keeps_what_the_cli_keeps(tmp_path, monkeypatch, capsys):
    pool = write_pool(tmp_path)
    expected = cli_ids(pool, tmp_path)
    monkeypatch.chdir(tmp_path)
    with run_blocks(DOC, "integrations_datatrove", containing="entrosel.integrations.datatrove"):
        pass
    assert jsonl_ids(tmp_path / "datatrove-out" / "picked.jsonl") == expected
    stats = capsys.readouterr()
    assert "dropped_min_chars" in stats.err + stats.out  # the reasons reach datatrove's stats


def test_per_task_each_shard_is_deduplicated_and_selected_alone(tmp_path):
    """Two tasks over two files: each task dedups and selects within its own file, exactly as
    the command line does on each file, so a copy across the files stays and each task picks
    its own budget; removed documents reach the exclusion writers with their reasons."""
    rows = [{"id": f"r{i}", "text": f"sample {i} " + "word " * (i % 9)} for i in range(20)]
    rows[12] = {"id": "r12", "text": rows[11]["text"]}  # a copy within the second file
    rows[15] = {"id": "r15", "text": rows[3]["text"]}  # a copy of a record of the first file
    (tmp_path / "in").mkdir()
    write_jsonl(tmp_path / "in" / "a.jsonl", rows[:10])
    write_jsonl(tmp_path / "in" / "b.jsonl", rows[10:])

    def writer(folder):
        return JsonlWriter(str(tmp_path / folder), output_filename="${rank}.jsonl", compression=None)

    LocalPipelineExecutor(pipeline=[
        JsonlReader(str(tmp_path / "in")),
        dt.EntroselFilter(LengthFilter(min_chars=12), exclusion_writer=writer("short")),
        dt.EntroselDedupFilter(exclusion_writer=writer("copies")),
        dt.EntroselSelect(ZipSelector(budget=3)),
        writer("out"),
    ], tasks=2, workers=1, logging_dir=str(tmp_path / "logs")).run()
    for rank, name in enumerate(("a", "b")):
        expected = cli_ids_of(tmp_path / "in" / f"{name}.jsonl", tmp_path / f"cli-{name}")
        assert jsonl_ids(tmp_path / "out" / f"{rank:05d}.jsonl") == expected
    assert jsonl_ids(tmp_path / "copies" / "00001.jsonl") == ["r12"]  # r15 stays: r3 is in another shard
    assert not (tmp_path / "copies" / "00000.jsonl").exists()
    short = [r["id"] for r in rows if len(r["text"]) < 12]
    excluded = tmp_path / "short" / "00000.jsonl", tmp_path / "short" / "00001.jsonl"
    assert jsonl_ids(excluded[0]) + jsonl_ids(excluded[1]) == short == ["r0", "r9", "r18"]
    assert '"filter_reason":"min_chars"' in excluded[0].read_text()


def cli_ids_of(pool, work):
    from entrosel.cli import main

    work.mkdir()
    assert main(["filter", "length", str(pool), "-o", str(work / "long.jsonl"), "--min-chars", "12"]) == 0
    assert main(["filter", "dedup", str(work / "long.jsonl"), "-o", str(work / "clean.jsonl")]) == 0
    assert main(["select", "zip", str(work / "clean.jsonl"), "-o", str(work / "p.jsonl"), "--budget", "3"]) == 0
    return jsonl_ids(work / "p.jsonl")


def test_dedup_is_refused_as_a_batch_filter():
    from entrosel import Dedup

    with pytest.raises(TypeError, match="EntroselShardFilter"):
        dt.EntroselFilter(Dedup())
