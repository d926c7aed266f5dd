"""Readers and writers: every format round-trips, bad input is named by file and line."""
from __future__ import annotations

import gzip
import json
import os

import pytest

from entrosel.errors import InputError
from entrosel.io import Rejects, detect_format, read_records, write_records
from tests.conftest import write_jsonl

RECORDS = [
    {"id": "r1", "conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello!"}]},
    {"id": "r2", "text": "plain text, ünïcödé and 😀", "score": 1.5, "n": 3, "flag": True, "none": None},
    {"z_last": "keys keep their order", "a_first": 1, "id": "r3"},
]


def _data(path, **kw):
    return [r.data for r in read_records(path, **kw)]


def test_jsonl_roundtrip_is_byte_identical(tmp_path):
    src = tmp_path / "in.jsonl"
    # unusual but valid formatting must survive: spacing, escapes, float spelling
    lines = ['{"id": "a",  "text": "caf\\u00e9", "x": 1.0}', '{"text":"b","id":"b"}']
    src.write_text("\n".join(lines) + "\n\n")  # a trailing blank line is not a record
    out = tmp_path / "out.jsonl"
    assert write_records(read_records(src), out) == 2
    assert out.read_text() == "\n".join(lines) + "\n"


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet"])
def test_roundtrip_keeps_keys_order_and_values(tmp_path, suffix):
    src = tmp_path / f"in{suffix}"
    records = RECORDS if suffix != ".parquet" else [
        {"id": "p1", "text": "one", "score": 0.5}, {"id": "p2", "text": "two ü", "score": None}]
    write_records(records, src)
    back = _data(src)
    assert back == records
    assert [list(r) for r in back] == [list(r) for r in records]
    out = tmp_path / f"out{suffix}"
    write_records(read_records(src), out, like=src)
    assert _data(out) == records


def test_parquet_keeps_the_input_schema(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"id": pa.array([1, 2], pa.int16()), "text": ["a", "b"]})
    src = tmp_path / "in.parquet"
    pq.write_table(table, src)
    out = tmp_path / "out.parquet"
    write_records(list(read_records(src))[::-1], out, like=src)
    assert pq.read_schema(out).field("id").type == pa.int16()
    assert _data(out) == [{"id": 2, "text": "b"}, {"id": 1, "text": "a"}]


def test_csv_roundtrip(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text('id,instruction,output\n1,"Say ""hi""","hi\nthere"\n2,Add,5\n', encoding="utf-8")
    recs = list(read_records(src))
    assert [r.data for r in recs] == [{"id": "1", "instruction": 'Say "hi"', "output": "hi\nthere"},
                                      {"id": "2", "instruction": "Add", "output": "5"}]
    assert [r.line for r in recs] == [3, 4]
    out = tmp_path / "out.csv"
    write_records(recs, out)
    assert _data(out) == [r.data for r in recs]


def test_hf_dataset_folder_roundtrip(tmp_path):
    datasets = pytest.importorskip("datasets")
    src = tmp_path / "ds"
    datasets.Dataset.from_list([{"id": "a", "text": "x"}, {"id": "b", "text": "y"}]).save_to_disk(str(src))
    assert detect_format(src) == "hf"
    assert _data(src) == [{"id": "a", "text": "x"}, {"id": "b", "text": "y"}]
    out = tmp_path / "out_ds"
    write_records(list(read_records(src))[::-1], out, like=src)
    assert _data(out) == [{"id": "b", "text": "y"}, {"id": "a", "text": "x"}]
    dd = tmp_path / "dd"
    datasets.DatasetDict({"train": datasets.Dataset.from_list([{"text": "x"}])}).save_to_disk(str(dd))
    with pytest.raises(InputError, match="DatasetDict"):
        list(read_records(dd))


def test_gzip_jsonl(tmp_path):
    src = tmp_path / "in.jsonl.gz"
    with gzip.open(src, "wt", encoding="utf-8") as f:
        f.write(json.dumps(RECORDS[1]) + "\n")
    assert _data(src) == [RECORDS[1]]


def test_json_with_one_object_per_line_is_jsonl(tmp_path):
    src = write_jsonl(tmp_path / "in.json", RECORDS)
    assert detect_format(src) == "jsonl"
    assert _data(src) == RECORDS


def test_streaming_does_not_read_ahead(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "ok"}\nnot json\n')
    it = read_records(src)
    assert next(it).data == {"text": "ok"}  # the bad line is only met when reached
    with pytest.raises(InputError):
        next(it)


@pytest.mark.parametrize("content,line,reason", [
    (b'{"text": "a"}\n{"text": "b",}\n', 2, "malformed JSON"),
    (b'{"text": "a"}\n{"text": "\xff\xfe"}\n', 2, "not valid UTF-8"),
    (b'{"text": "a"}\n[1, 2]\n', 2, "expected a JSON object"),
    (b"\n\n", None, "no records"),
    (b"", None, "no records"),
])
def test_jsonl_errors_name_file_and_line(tmp_path, content, line, reason):
    src = tmp_path / "bad.jsonl"
    src.write_bytes(content)
    with pytest.raises(InputError, match=reason) as e:
        list(read_records(src))
    assert e.value.path == str(src)
    assert e.value.line == line
    assert str(e.value).startswith(f"{src}:{line}: " if line else f"{src}: ")


def test_json_array_errors_and_truncation(tmp_path):
    src = tmp_path / "trunc.json"
    src.write_text('[\n {"text": "a"},\n {"text": "b"},\n {"text": "c\n')
    with pytest.raises(InputError, match="malformed JSON") as e:
        list(read_records(src))
    assert e.value.line == 4
    rejects = Rejects("skip")
    assert [r.data for r in read_records(src, rejects=rejects)] == [{"text": "a"}, {"text": "b"}]
    assert len(rejects) == 1 and rejects.rejected[0]["line"] == 4
    obj = tmp_path / "obj.json"
    obj.write_text('  \n{"data": [1]\n,\n"x": 2}')
    with pytest.raises(InputError, match="JSON array"):
        list(read_records(obj, "json"))
    with pytest.raises(InputError, match="obj.json:2: record 0: malformed JSON"):
        list(read_records(obj))  # '{' first: read as JSONL, which names the line


def test_non_utf8_in_json_array_and_csv(tmp_path):
    src = tmp_path / "bad.json"
    src.write_bytes(b'[{"text": "ok"},\n{"text": "bad \xff"},\n{"text": "fine"}]')
    with pytest.raises(InputError, match="UTF-8") as e:
        list(read_records(src))
    assert e.value.line == 2
    rejects = Rejects("skip")
    assert [r.index for r in read_records(src, rejects=rejects)] == [0, 2]
    csv_src = tmp_path / "bad.csv"
    csv_src.write_bytes(b"text\nok\nbad \xff\n")
    with pytest.raises(InputError, match="UTF-8"):
        list(read_records(csv_src))
    rejects = Rejects("skip")
    assert [r.data for r in read_records(csv_src, rejects=rejects)] == [{"text": "ok"}]


def test_csv_row_with_extra_fields(tmp_path):
    src = tmp_path / "bad.csv"
    src.write_text("text\nok\na,b\n")
    with pytest.raises(InputError, match="row has 2 fields") as e:
        list(read_records(src))
    assert e.value.line == 3


def test_skip_policy_keeps_row_indices(tmp_path):
    src = tmp_path / "mixed.jsonl"
    src.write_bytes(b'{"text": "a"}\nbroken\n{"text": "c"}\n')
    rejects = Rejects("skip")
    assert [r.index for r in read_records(src, rejects=rejects)] == [0, 2]
    out = tmp_path / "out.rejects.jsonl"
    rejects.write(out)
    row = json.loads(out.read_text())
    assert row["index"] == 1 and row["line"] == 2 and row["raw"] == "broken"


def test_unknown_extension_and_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        list(read_records(tmp_path / "nope.jsonl"))
    odd = tmp_path / "data.txt"
    odd.write_text("x")
    with pytest.raises(InputError, match="--input-format"):
        list(read_records(odd))
    assert _data(write_jsonl(tmp_path / "d.txt", RECORDS), input_format="jsonl") == RECORDS
    with pytest.raises(InputError, match="output format"):
        write_records(RECORDS, tmp_path / "out.txt")


def test_failed_write_leaves_no_output(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text("previous\n")

    def records():
        yield {"text": "a"}
        raise InputError("boom")

    with pytest.raises(InputError):
        write_records(records(), out)
    assert out.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


@pytest.mark.parametrize("ext", ["jsonl.gz", "json.gz", "csv.gz"])
def test_gzipped_outputs_are_written_as_they_are_read(tmp_path, ext):
    import gzip

    from entrosel.io import read_records, write_records

    records = [{"id": f"r{i}", "text": f"héllo {i}"} for i in range(4)]
    out = tmp_path / f"out.{ext}"
    assert write_records(records, out) == 4
    assert gzip.open(out).read(1) in (b"{", b"[", b"i")  # really gzip, and the format inside
    assert [r.data["text"] for r in read_records(out)] == [r["text"] for r in records]
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no temporary left


def test_parquet_is_written_by_row_groups_from_a_stream(tmp_path, monkeypatch):
    """The writer holds one row group at a time: a generator of 35 records with groups of 10
    gives 4 row groups, and it had not been drained when the first group was written."""
    import pyarrow.parquet as pq

    from entrosel.io import writers

    monkeypatch.setattr(writers, "PARQUET_ROW_GROUP", 10)
    pulled, seen_at_first_write = [0], []
    real_writer = pq.ParquetWriter

    class Spy(real_writer):
        def write_table(self, table, *args, **kw):
            seen_at_first_write.append(pulled[0])
            return super().write_table(table, *args, **kw)

    monkeypatch.setattr(pq, "ParquetWriter", Spy)

    def records():
        for i in range(35):
            pulled[0] += 1
            yield {"id": f"r{i}", "text": "x" * i}

    out = tmp_path / "out.parquet"
    assert write_records(records(), out) == 35
    assert seen_at_first_write[0] == 10  # the first group went out before record 11 was read
    assert pq.ParquetFile(out).metadata.num_row_groups == 4
    assert _data(out) == [{"id": f"r{i}", "text": "x" * i} for i in range(35)]


def test_parquet_columns_widen_across_row_groups(tmp_path, monkeypatch):
    """A column null in the first group, an int that later turns float, a key that appears
    late: the file holds every value in one schema wide enough for all."""
    from entrosel.io import writers

    monkeypatch.setattr(writers, "PARQUET_ROW_GROUP", 2)
    rows = [{"id": "a", "score": None, "n": 1}, {"id": "b", "score": None, "n": 2},
            {"id": "c", "score": 0.5, "n": 3}, {"id": "d", "score": 1.5, "n": 4.5},
            {"id": "e", "score": None, "n": 5, "late": "here"}]
    out = tmp_path / "out.parquet"
    assert write_records(rows, out) == 5
    back = _data(out)
    assert [r["id"] for r in back] == list("abcde")
    assert [r["score"] for r in back] == [None, None, 0.5, 1.5, None]
    assert [r["n"] for r in back] == [1, 2, 3, 4.5, 5]
    assert [r["late"] for r in back] == [None] * 4 + ["here"]
    assert not list(tmp_path.glob(".*")), "no temporary file left behind"


def test_parquet_refuses_a_column_of_mixed_types_by_name(tmp_path):
    with pytest.raises(InputError, match="share one type; write .jsonl"):
        write_records([{"x": 1}, {"x": "one"}], tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()


def _hub_cache(root, repo: str, rows: list[dict], split: str = "train"):
    """A Hub data set in a local ``datasets`` cache, laid out as ``load_dataset`` leaves it
    after a download (``OWNER___NAME/CONFIG/VERSION/HASH/NAME-SPLIT.arrow`` with its
    ``dataset_info.json``): the JSON builder prepares the files, then the folder takes the
    namespaced name that offline loading looks for."""
    from datasets.packaged_modules.json.json import Json

    owner, name = repo.split("/")
    data = write_jsonl(root / f"{name}.jsonl", rows)
    builder = Json(cache_dir=str(root / "cache"), dataset_name=name, config_name="default",
                   config_id="default", hash="0123abcd", data_files={split: str(data)})
    builder.download_and_prepare()
    (root / "cache" / name).rename(root / "cache" / f"{owner}___{name}")
    return root / "cache"


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """``HF_DATASETS_OFFLINE=1`` with a temporary cache holding ``tiny-org/pool`` (4 rows)."""
    datasets = pytest.importorskip("datasets")
    import huggingface_hub.constants

    rows = [{"id": f"h{i}", "text": f"hub row {i} " * (i + 1), "extra": i} for i in range(4)]
    cache = _hub_cache(tmp_path, "tiny-org/pool", rows)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)  # read once at import
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return rows


def test_a_hub_name_reads_from_the_local_cache_offline(offline_hub, tmp_path):
    name = "hf://datasets/tiny-org/pool:train"
    assert detect_format(name) == "hf"
    assert _data(name) == offline_hub
    assert _data("tiny-org/pool:train", input_format="hf") == offline_hub  # --input-format hf
    with pytest.raises(InputError, match="no such file or folder"):  # no split: a missing folder
        _data("tiny-org/pool", input_format="hf")
    assert _data("hf://datasets/tiny-org/pool") == offline_hub  # one split: no need to name it
    # a selection from it comes back with every column, and an HF output keeps its features
    from entrosel import ZipSelector
    assert ZipSelector(budget=2).subset(name) == [offline_hub[i] for i in ZipSelector(budget=2).select(name)]
    write_records(read_records(name), tmp_path / "copy")
    assert _data(tmp_path / "copy") == offline_hub


@pytest.mark.parametrize("name, says", [
    ("hf://datasets/tiny-org/absent:train", "not in the local cache"),
    ("hf://datasets/tiny-org/pool:test", "pool:test: cannot load this data set"),
    ("hf://datasets/just-a-name", "not a Hub data set name; write hf://datasets/OWNER/NAME"),
])
def test_a_hub_name_that_cannot_load_is_one_input_error(offline_hub, name, says):
    with pytest.raises(InputError) as e:
        _data(name)
    assert says in str(e.value) and "\n" not in str(e.value)


def _mapped_kib(path) -> int:
    """Resident KiB of this process's mappings of ``path`` (Linux's /proc/self/smaps)."""
    total, inside = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            if "-" in line.split(" ", 1)[0]:  # a mapping's header line
                inside = line.rstrip().endswith(str(path))
            elif inside and line.startswith("Rss:"):
                total += int(line.split()[1])
    return total


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/smaps"), reason="Linux only")
def test_a_pass_over_mapped_records_gives_its_pages_back(tmp_path, monkeypatch):
    """A recipe's input is mapped, not held: a pass in file order keeps at most a window of
    it resident, release() none of it, and the records stay readable."""
    from entrosel import pool as pool_module
    from entrosel.pool import RecordSet

    src = write_jsonl(tmp_path / "pool.jsonl", [{"id": i, "text": f"{i} " + "word " * 400}
                                                for i in range(2000)])  # 4 MB
    monkeypatch.setattr(pool_module, "_DROP_BEHIND", 256 << 10)
    records = RecordSet.read(src)
    seen = [r.data["id"] for r in records]
    assert seen == list(range(2000))
    assert 0 < _mapped_kib(src) <= 768  # the window and the page it reads, not 4 MB
    picked = records.take([1999, 3, 1000])  # out of file order (a ZIP pick order): kept as read
    assert [r.data["id"] for r in picked] == [1999, 3, 1000]
    records.release()
    assert _mapped_kib(src) == 0
    assert records[1500].data["id"] == 1500 and [r.data["id"] for r in picked] == [1999, 3, 1000]


def test_a_killed_run_s_pool_folder_is_removed_by_the_next_run(tmp_path, monkeypatch):
    """A SIGKILLed run leaves its pool folder (the pool's whole text) behind; the next run
    that builds a pool removes the folders of processes that are gone, not of live ones."""
    import subprocess
    import sys
    import tempfile

    from entrosel.pool import InputOptions, load_pool

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    orphan = tmp_path / f"entrosel-pool-{gone.pid}-abc"
    alive = tmp_path / f"entrosel-pool-{os.getppid()}-def"
    for folder in (orphan, alive):
        folder.mkdir()
        (folder / "items.bin").write_bytes(b"x" * 100)
    with load_pool([{"text": "one"}, {"text": "two"}], InputOptions()) as pool:
        assert len(pool) == 2
    assert not orphan.exists() and alive.exists()


@pytest.mark.parametrize("content", [b"\x1f\x8b\x08garbage\n", b"\x1f\x8b\x08"])
def test_a_broken_gzip_file_is_an_input_error(tmp_path, content):
    """A file that begins as gzip is read as gzip; a broken one is named, with no traceback.
    Two bytes of gzip's magic alone (a text line can begin so) do not make a file gzip."""
    from entrosel.errors import InputError

    path = tmp_path / "in.jsonl"
    path.write_bytes(content)
    with pytest.raises(InputError, match="not a valid gzip file"):
        list(read_records(path))
    path.write_bytes(b'\x1f\x8b{"text": "a"}\n')
    with pytest.raises(InputError, match="not valid UTF-8"):
        list(read_records(path))


@pytest.mark.parametrize("raw", [
    b'{"a": NaN, "b": Infinity}', b'{"a": 1e400}', b'{"a": 123456789012345678901234567890}',
    b'{"a": "\\ud800"}', b'{"a": 1, "a": 2}', b'{"a": -0.0, "b": -0, "c": 1.0}', b'[1, 2]'])
def test_json_lines_read_as_json_reads_them(raw):
    # msgspec parses a line first; what it refuses (NaN, numbers past a double, lone
    # surrogates) is read by json, so every value is the one json.loads gives
    from entrosel.io.readers import loads
    got, expected = loads(raw), json.loads(raw)
    assert json.dumps(got) == json.dumps(expected) and type(got) is type(expected)
