"""Property-based tests: random and malformed input never crashes with anything but a clear error."""
from __future__ import annotations

import json
import zlib

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
    try:
        got = list(read_records(path))
    except InputError as e:
        assert e.path == str(path) and e.reason
        return
    assert all(isinstance(r.data, dict) for r in got)


@PROFILE
@given(st.binary(max_size=300), st.sampled_from(["json", "csv", "jsonl"]))
def test_every_reader_on_random_bytes_with_skip(tmp_path_factory, content, fmt):
    path = tmp_path_factory.mktemp("p") / f"in.{fmt}"
    path.write_bytes(content)
    rejects = Rejects("skip")
    try:
        got = list(read_records(path, fmt, rejects))
    except InputError as e:
        assert e.reason
        return
    assert all(isinstance(r.data, dict) for r in got)
    assert all(r["reason"] for r in rejects.rejected)


@PROFILE
@given(st.lists(records, min_size=1, max_size=6), st.sampled_from(["text", "repr"]))
def test_pool_of_random_records_skips_only_with_reasons(records_, how):
    rejects = Rejects("skip")
    with load_pool(records_, InputOptions(serialize=how, on_error="skip"), rejects) as pool:
        assert len(pool) + len(rejects) == len(records_)


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
