"""Property-based tests: random and malformed input never crashes with anything but a clear error."""
from __future__ import annotations

import csv
import io
import json
import re
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entrosel.errors import InputError
from entrosel.formats import RenderError, render_text
from entrosel.io import Rejects, read_records
from entrosel.pool import InputOptions, load_pool
from entrosel.scoring.compression import Compressor, StreamMeasure

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
records = st.dictionaries(
    st.sampled_from(["text", "conversations", "messages", "instruction", "input", "output",
                     "from", "value", "role", "content", "id"]) | st.text(max_size=6),
    json_values, max_size=6)
PROFILE = settings(max_examples=300, deadline=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture])


@PROFILE
@given(records)
def test_render_returns_text_or_render_error(record):
    try:
        assert isinstance(render_text(record), str)
    except RenderError as e:
        assert str(e)


@PROFILE
@given(st.lists(st.binary(max_size=60) | records.map(lambda r: json.dumps(r).encode()), max_size=8))
def test_jsonl_reader_on_random_lines(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("p") / "in.jsonl"
    path.write_bytes(b"\n".join(line.replace(b"\n", b" ") for line in lines))
    bad = [(n, why) for _, n, why in _expected_jsonl(path.read_bytes()) if why]
    try:
        got = list(read_records(path))
    except InputError as e:
        assert e.path == str(path) and e.reason
        if path.read_bytes().startswith(b"\x1f\x8b\x08"):  # read as gzip, whatever its name
            assert e.reason.startswith("not a valid gzip file")
            return
        # without skip, the first bad line stops the read and is the one named
        if bad:
            assert (e.line, e.reason[:len(bad[0][1])]) == bad[0]
        else:
            assert e.reason == "input holds no records"
        return
    assert not bad
    assert all(isinstance(r.data, dict) for r in got)


# What may still stop a reader in skip mode: faults of the whole file, never of one record.
WHOLE_FILE_ERRORS = {  # a file that begins with gzip's magic and method is read as gzip
    "jsonl": ("input holds no records", "not a valid gzip file"),
    "json": ("input holds no records", "expected a JSON array of records", "not a valid gzip file"),
    "csv": ("input holds no records", "malformed CSV: ", "not a valid gzip file"),
}


# records, other JSON values and broken ones (few and fixed: drawing random records for
# every line would make this test ten times slower than the reading it checks)
JSON_PIECES = [b'{"text": "a"}', b'{"id": 1, "text": "two words"}', b'{}', b'{"a": {"b": [1, 2]}}',
               '{"text": "café 日本"}'.encode(), b'[1, 2]', b'"s"', b'3', b'null', b'{"x": ',
               b'{"text": "\xff"}', b'{"text": "a"} {"text": "b"}', b'  ', b'\r']


def _file_pieces(fmt: str) -> st.SearchStrategy[bytes]:
    """Files that are near the format, not only noise: good records, other JSON values and
    random bytes as lines, array items or rows (random bytes alone rarely get past a '[')."""
    piece = st.sampled_from(JSON_PIECES) | st.binary(max_size=30)
    if fmt == "jsonl":
        return st.lists(piece, max_size=6).map(b"\n".join)
    if fmt == "json":
        return st.tuples(st.lists(piece, max_size=6), st.booleans()).map(
            lambda t: b"[" + b", ".join(t[0]) + (b"]" if t[1] else b""))
    cell = st.text(alphabet="ab,\"", max_size=5).map(str.encode) | st.binary(max_size=6)
    return st.lists(st.lists(cell, min_size=1, max_size=4).map(b",".join), max_size=5).map(b"\n".join)


def _expected_jsonl(content: bytes) -> list[tuple[int, int, str | None]]:
    """``(index, line, reason prefix or None)`` per non-blank line, decided by the standard
    library alone: the prefix of the reason a rejected line must carry."""
    out = []
    for line_no, raw in enumerate(content.split(b"\n"), start=1):
        if line_no == 1:  # a byte-order mark is read past (docs/cli.md's decisions)
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        if not raw.strip():
            continue
        index, reason = len(out), None
        try:
            data = json.loads(raw.decode("utf-8"))
            if not isinstance(data, dict):
                reason = "expected a JSON object (a record)"
        except UnicodeDecodeError:
            reason = "not valid UTF-8"
        except json.JSONDecodeError:
            reason = "malformed JSON: "
        out.append((index, line_no, None if reason is None else f"record {index}: {reason}"))
    return out


def _check_skipped(fmt: str, content: bytes, path, got, rejected: list[dict]) -> None:
    # every record has one index: those read and those rejected together number 0..n-1
    seen = sorted([r.index for r in got] + [r["index"] for r in rejected])
    assert seen == list(range(len(seen)))
    for r in rejected:
        assert r["path"] == str(path) and isinstance(r["line"], int) and r["line"] >= 1
        assert r["reason"].startswith(f"record {r['index']}: ") and len(r["reason"]) > 12
    if fmt == "jsonl":
        expected = _expected_jsonl(content)
        assert [(r.index, r.line) for r in got] == [(i, n) for i, n, why in expected if why is None]
        assert [(r["index"], r["line"]) for r in rejected] == [(i, n) for i, n, why in expected if why]
        for r, (_, _, why) in zip(rejected, [e for e in expected if e[2]]):
            assert r["reason"].startswith(why)
        lines = content.split(b"\n")
        assert [r.data for r in got] == [json.loads(lines[r.line - 1]) for r in got]
    if fmt == "json":
        try:
            whole = json.loads(content.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return  # the reader is more lenient (commas and any whitespace between items)
        # a well-formed array: exactly its non-objects are rejected, its objects read in order
        assert [r.data for r in got] == [v for v in whole if isinstance(v, dict)]
        assert [r["index"] for r in rejected] == [i for i, v in enumerate(whole) if not isinstance(v, dict)]
        assert all("expected a JSON object" in r["reason"] for r in rejected)
    if fmt == "csv":
        text = content.decode("utf-8", "surrogateescape").removeprefix("\ufeff")
        # the first row is the header, even a blank one; blank rows after it are no records
        header, *rows = list(csv.reader(io.StringIO(text, newline="")))
        rows = [row for row in rows if row]
        width = len(header)
        too_wide = [i for i, row in enumerate(rows) if len(row) > width]
        assert [r["index"] for r in rejected if "fields, the header has" in r["reason"]] == too_wide
        # a row's fields as csv.DictReader keys them (a repeated column name keeps its last
        # value, missing ones are None): undecodable bytes count where they are kept
        fields = [dict(zip(header, row)) | dict.fromkeys(header[len(row):]) for row in rows]
        undecodable = [i for i, (row, f) in enumerate(zip(rows, fields)) if len(row) <= width
                       and any(v is not None and re.search("[\udc80-\udcff]", v) for v in f.values())]
        assert [r["index"] for r in rejected if "not valid UTF-8" in r["reason"]] == undecodable
        assert len(rejected) == len(too_wide) + len(undecodable)
        bad = set(too_wide) | set(undecodable)
        assert [r.data for r in got] == [f for i, f in enumerate(fields) if i not in bad]


@PROFILE
@given(st.data(), st.sampled_from(["json", "csv", "jsonl"]))
def test_every_reader_on_random_bytes_with_skip(tmp_path_factory, data, fmt):
    content = data.draw(st.binary(max_size=300) | _file_pieces(fmt))
    path = tmp_path_factory.mktemp("p") / f"in.{fmt}"
    path.write_bytes(content)
    rejects = Rejects("skip")
    try:
        got = list(read_records(path, fmt, rejects))
    except InputError as e:
        # skip mode stops only for the whole file: no record of it is to blame
        assert e.index is None and e.path == str(path)
        assert e.reason.startswith(WHOLE_FILE_ERRORS[fmt]), e.reason
        if e.reason.startswith("malformed CSV"):  # the standard library refuses it too
            with pytest.raises(csv.Error):
                list(csv.reader(io.StringIO(content.decode("utf-8", "surrogateescape"), newline="")))
        return
    assert all(isinstance(r.data, dict) for r in got)
    _check_skipped(fmt, content, path, got, rejects.rejected)


@PROFILE
@given(st.lists(records, min_size=1, max_size=6), st.sampled_from(["text", "repr"]))
def test_pool_of_random_records_skips_only_with_reasons(records_, how):
    rejects = Rejects("skip")
    # decided by render_text alone: a record is rejected when it has no text (repr
    # serializes any record), and the reason is render_text's own message
    why: dict[int, str] = {}
    if how == "text":
        for i, r in enumerate(records_):
            try:
                render_text(r)
            except RenderError as e:
                why[i] = str(e)
    with load_pool(records_, InputOptions(serialize=how, on_error="skip"), rejects) as pool:
        assert len(pool) + len(rejects) == len(records_)
        assert pool.index.tolist() == [i for i in range(len(records_)) if i not in why]
        assert [pool[p] for p in range(len(pool))] == [
            (render_text(records_[i]) if how == "text" else repr(records_[i])).encode()
            for i in pool.index.tolist()]
    assert [r["index"] for r in rejects.rejected] == sorted(why)
    for r in rejects.rejected:
        assert r["reason"] == f"record {r['index']}: {why[r['index']]}"
        assert r["path"] == "<records>" and r["line"] is None
        assert r["raw"] == repr(records_[r["index"]])[:10_000]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=5000), st.lists(st.integers(0, 5000), max_size=6), st.integers(1, 9))
def test_chunked_deflate_equals_one_shot(data, cuts, level):
    meter = StreamMeasure(Compressor("zlib", level))
    last = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts):
        meter.feed(data[last:cut])
        last = cut
    meter.feed(data[last:])
    meter.finish()
    assert meter.compressed_bytes == len(zlib.compress(data, level))


json_texts = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10 ** 30), max_value=10 ** 30)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12).map(lambda v: json.dumps(v, ensure_ascii=False).encode())


@PROFILE
@given(json_texts | st.binary(max_size=40))
def test_fast_json_reading_gives_what_json_gives(raw):
    from entrosel.io.readers import loads
    try:
        expected = json.loads(raw)
    except ValueError as e:  # JSONDecodeError, or bytes that are no UTF-8/16/32
        with pytest.raises(type(e)):
            loads(raw)
        return
    got = loads(raw)
    assert got == expected and json.dumps(got) == json.dumps(expected)  # -0.0 and 1 vs 1.0 too
