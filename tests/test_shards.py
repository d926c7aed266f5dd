"""Sharded scoring (--shard I/N, no Ray) and folders of shard files as input."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from entrosel.commands.sharded import merge_shards, score
from entrosel.engines import shards
from entrosel.engines.shards import Shard
from entrosel.errors import InputError
from entrosel.io.readers import read_records


def _pool(path, n=40, bad=(7,)):
    lines = []
    for i in range(n):
        if i in bad:
            lines.append("{not json")
        else:
            lines.append(json.dumps({"id": f"r{i}", "text": "word " * (i % 9) + f"sample {i} " * (i % 4)}))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(shards, "BLOCK", 4)  # 40 records -> 10 blocks over the shards


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 0, 1)])
def test_shards_in_any_order_merge_to_the_local_bytes(tmp_path, small_blocks, order):
    pool = _pool(tmp_path / "pool.jsonl")
    score("compression", pool, tmp_path / "local.jsonl", on_error="skip", workers=1)
    out = tmp_path / "sharded.jsonl"
    notes = [score("compression", pool, out, shard=f"{i}/3", on_error="skip", workers=1).note for i in order]
    assert "1 of 3 shards done" in notes[0] and "all 3 shards done" in notes[-1]
    assert out.read_bytes() == (tmp_path / "local.jsonl").read_bytes()
    # the bad line is reported once, by the shard that owns it
    assert (tmp_path / "sharded.jsonl.rejects.jsonl").read_bytes() == \
        (tmp_path / "local.jsonl.rejects.jsonl").read_bytes()
    assert sum(1 for _ in open(tmp_path / "sharded.jsonl.rejects.jsonl")) == 1


def test_a_finished_shard_is_skipped_and_other_options_are_refused(tmp_path, small_blocks, monkeypatch):
    pool = _pool(tmp_path / "pool.jsonl", bad=())
    out = tmp_path / "s.jsonl"
    first = score("compression", pool, out, shard="1/2", workers=1)
    assert first.records == 20
    ran = []
    from entrosel.scoring import CompressionScorer
    monkeypatch.setattr(CompressionScorer, "score_file", lambda *a, **k: ran.append(1))
    again = score("compression", pool, out, shard="1/2", workers=2)  # workers do not change results
    assert not ran and again.records == 20 and "already done" in again.note
    with pytest.raises(InputError, match="other options .*level"):
        score("compression", pool, out, shard="1/2", level=6)


def test_merge_refuses_missing_shards(tmp_path, small_blocks):
    pool = _pool(tmp_path / "pool.jsonl", bad=())
    score("compression", pool, tmp_path / "s.jsonl", shard="0/3", workers=1)
    with pytest.raises(InputError, match=r"shards \[1, 2\] of 3 have not finished"):
        merge_shards(tmp_path / "s.jsonl", 3)


def test_shard_argument_is_checked():
    assert Shard.parse("3/8") == Shard(3, 8)
    for bad in ("8/8", "-1/4", "3", "a/b"):
        with pytest.raises(InputError):
            Shard.parse(bad)
    with pytest.raises(InputError, match="one of the two"):
        score("compression", "x.jsonl", "y.jsonl", engine="ray", shard="0/2")


def test_lm_and_words_shards_merge_to_the_local_bytes(tmp_path, small_blocks):
    pytest.importorskip("transformers")
    from tests.lm_fixtures import tiny_lm

    model = str(tiny_lm(tmp_path / "lm"))
    pool = _pool(tmp_path / "pool.jsonl", bad=())
    for scorer, options in (("lm", dict(model=model, device="cpu", batch_size=3, standardize=True)),
                            ("words", {})):
        local = tmp_path / f"{scorer}-local.jsonl"
        score(scorer, pool, local, **options)
        out = tmp_path / f"{scorer}-sharded.jsonl"
        for i in (1, 0):
            score(scorer, pool, out, shard=f"{i}/2", **options)
        assert out.read_bytes() == local.read_bytes(), scorer
    # the standardized info is over the whole pool, not over one shard
    assert json.loads((tmp_path / "lm-sharded.jsonl.meta.json").read_text())["standardize"] is True


def test_cli_shard_for_slurm_arrays(tmp_path, small_blocks):
    pool = _pool(tmp_path / "pool.jsonl", n=12, bad=())
    out = tmp_path / "scores.jsonl"
    for i in range(2):
        done = subprocess.run([sys.executable, "-m", "entrosel", "score", "compression", str(pool), "-o",
                               str(out), "--shard", f"{i}/2", "--workers", "1"],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    assert "all 2 shards done, 12 rows merged" in done.stderr
    assert [r.data["index"] for r in read_records(out)] == list(range(12))


def test_a_folder_of_shard_files_reads_as_one_data_set(tmp_path):
    whole = _pool(tmp_path / "whole.jsonl", n=30, bad=(4, 17))
    lines = whole.read_text().splitlines(keepends=True)
    folder = tmp_path / "parts"
    folder.mkdir()
    for k, (a, b) in enumerate([(0, 10), (10, 11), (11, 30)]):
        (folder / f"part-{k:03d}.jsonl").write_text("".join(lines[a:b]))
    (folder / "_SUCCESS").write_text("")
    score("compression", whole, tmp_path / "a.jsonl", on_error="skip", workers=1)
    score("compression", folder, tmp_path / "b.jsonl", on_error="skip", workers=1)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    rejects = [json.loads(x) for x in open(tmp_path / "b.jsonl.rejects.jsonl")]
    assert [(r["index"], r["path"].rsplit("/", 1)[1], r["line"]) for r in rejects] == \
        [(4, "part-000.jsonl", 5), (17, "part-002.jsonl", 7)]


def test_a_folder_mixing_formats_is_refused(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "x"}\n')
    (tmp_path / "b.csv").write_text("text\ny\n")
    with pytest.raises(InputError, match="mixes formats"):
        list(read_records(tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no data files"):
        list(read_records(empty))


def test_lm_actors_ask_for_a_gpu_when_the_cluster_has_one():
    from entrosel.engines.ray import actor_gpus
    from entrosel.scoring import LanguageModelScorer

    def wants(device: str) -> bool:
        return LanguageModelScorer(model="m", device=device).wants_gpu()

    assert actor_gpus(None, wants("auto"), cluster_gpus=4) == 1.0
    assert actor_gpus(None, wants("cuda:0"), cluster_gpus=4) == 1.0
    assert actor_gpus(None, wants("cpu"), cluster_gpus=4) == 0.0
    assert actor_gpus(None, wants("auto"), cluster_gpus=0) == 0.0
    assert actor_gpus(0.5, wants("auto"), cluster_gpus=4) == 0.5


def test_a_folder_of_parquet_shards(tmp_path):
    pytest.importorskip("pyarrow")
    from entrosel.io.writers import write_records

    records = [{"id": i, "text": f"text number {i} " * (i % 5 + 1)} for i in range(25)]
    folder = tmp_path / "parts"
    folder.mkdir()
    write_records(records[:10], folder / "part-0.parquet")
    write_records(records[10:], folder / "part-1.parquet")
    write_records(records, tmp_path / "whole.jsonl")
    score("compression", folder, tmp_path / "a.jsonl", workers=1)
    score("compression", tmp_path / "whole.jsonl", tmp_path / "b.jsonl", workers=1)
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


def test_an_input_rewritten_in_place_is_scored_again(tmp_path, small_blocks):
    """Markers fingerprint the input's content, not only its path: stale shards are scored
    again, and shards of two versions are never merged."""
    import os

    pool = _pool(tmp_path / "pool.jsonl", bad=())
    out = tmp_path / "s.jsonl"
    score("compression", pool, out, shard="0/2", workers=1)
    score("compression", pool, out, shard="1/2", workers=1)
    before = out.read_bytes()
    stat = pool.stat()
    # same path, same size, same modification time: only the sampled bytes tell
    pool.write_text(pool.read_text().replace("sample 3 ", "sample 9 ", 1))
    os.utime(pool, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert pool.stat().st_size == stat.st_size
    first = score("compression", pool, out, shard="0/2", workers=1)
    assert "already done" not in first.note and "1 of 2 shards done" in first.note
    assert out.read_bytes() == before  # shard 1 still holds the old version: no merge
    with pytest.raises(InputError, match="another version of the input"):
        merge_shards(out, 2)
    last = score("compression", pool, out, shard="1/2", workers=1)
    assert "all 2 shards done" in last.note
    score("compression", pool, tmp_path / "local.jsonl", workers=1)
    assert out.read_bytes() == (tmp_path / "local.jsonl").read_bytes() != before
