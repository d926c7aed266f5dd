"""Readers: a path in, a stream of :class:`Record` out.

JSONL (optionally gzipped) and Parquet stream; JSON arrays, CSV and Hugging Face
``datasets`` folders are read record by record from one parse. Every reader reports a
bad record as ``file:line: reason`` through a :class:`Rejects` policy.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import re
from pathlib import Path
from typing import Any, Callable, Iterator

from entrosel.errors import InputError
from entrosel.io.records import Record, Rejects, record_error

INPUT_FORMATS = ("jsonl", "json", "csv", "parquet", "hf")

SUFFIX_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv",
             ".parquet": "parquet", ".pq": "parquet"}
_SURROGATE = re.compile("[\udc80-\udcff]")
_JSON_GAP = re.compile(r"[\s,]*")


def detect_format(path: str | Path) -> str:
    """The format of ``path`` from its extension (``.gz`` looked through), or a folder saved
    by ``datasets.Dataset.save_to_disk``. A ``.json`` file holding one object per line is JSONL."""
    p = Path(path)
    if p.is_dir():
        if (p / "dataset_info.json").exists() or (p / "state.json").exists() \
                or (p / "dataset_dict.json").exists():
            return "hf"
        raise InputError("folder is not a Hugging Face dataset saved with save_to_disk "
                         "(no state.json); pass a file or such a folder", p)
    suffixes = [s.lower() for s in p.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    fmt = SUFFIX_FORMATS.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        raise InputError("cannot tell the format from the file name; pass --input-format "
                         f"({'|'.join(INPUT_FORMATS)})", p)
    if fmt == "json" and _first_char(p) == "{":
        return "jsonl"
    return fmt


def read_records(path: str | Path, input_format: str | None = None,
                 rejects: Rejects | None = None) -> Iterator[Record]:
    """Stream the records of ``path``. Raises :class:`InputError` on bad input unless
    ``rejects`` skips it; a file with no records at all is always an error."""
    p = Path(path)
    if not p.exists():
        raise InputError("no such file or folder", p)
    fmt = input_format or detect_format(p)
    reader = _READERS.get(fmt)
    if reader is None:
        raise InputError(f"unknown input format {fmt!r}; choose one of {', '.join(INPUT_FORMATS)}", p)
    rejects = rejects if rejects is not None else Rejects()
    count = 0
    for record in reader(p, rejects):
        count += 1
        yield record
    if count == 0 and not rejects.rejected:
        raise InputError("input holds no records", p)


def _open_binary(path: Path):
    return gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb")


def _first_char(path: Path) -> str:
    with _open_binary(path) as f:
        head = f.read(4096).lstrip()
    return head[:1].decode("latin-1")


def _not_an_object(value: Any) -> str:
    return f"expected a JSON object (a record), found {type(value).__name__}"


def jsonl_lines(path: str | Path) -> Iterator[tuple[int, int, bytes]]:
    """``(index, line, raw)`` for each non-blank line of a JSONL file, unparsed, so that the
    parsing can run where the rest of the work runs (see :func:`parse_jsonl_line`)."""
    index = 0
    with _open_binary(Path(path)) as f:
        for line_no, raw in enumerate(f, start=1):
            if raw.strip():
                yield index, line_no, raw.rstrip(b"\r\n")
                index += 1


def parse_jsonl_line(path: str | Path, index: int, line_no: int, raw: bytes) -> Record:
    """One JSONL line as a :class:`Record`; raises :class:`InputError` naming the line."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise record_error(f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1}); "
                           "re-encode the file as UTF-8", path, line_no, index) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise record_error(f"malformed JSON: {e.msg} at column {e.colno}", path, line_no, index) from None
    if not isinstance(data, dict):
        raise record_error(_not_an_object(data), path, line_no, index)
    return Record(index, data, str(path), line_no, raw)


def _read_jsonl(path: Path, rejects: Rejects) -> Iterator[Record]:
    for index, line_no, raw in jsonl_lines(path):
        try:
            yield parse_jsonl_line(path, index, line_no, raw)
        except InputError as e:
            rejects.reject(e, raw.decode("utf-8", "replace"))


def _decode(path: Path, rejects: Rejects) -> str:
    """Decode a whole file; undecodable bytes survive as surrogates so that only the records
    holding them are rejected."""
    with _open_binary(path) as f:
        data = f.read()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        if rejects.on_error == "raise":
            line = data.count(b"\n", 0, e.start) + 1
            raise InputError(f"not valid UTF-8 (byte 0x{data[e.start]:02x}); re-encode the file "
                             "as UTF-8", path, line) from None
        return data.decode("utf-8", "surrogateescape")


def _read_json(path: Path, rejects: Rejects) -> Iterator[Record]:
    text = _decode(path, rejects)
    decoder = json.JSONDecoder()
    pos = _JSON_GAP.match(text, 0).end()
    if not text.startswith("[", pos):
        raise InputError("expected a JSON array of records ('[' ...), or one JSON object per line "
                         "(name the file .jsonl)", path, text.count("\n", 0, pos) + 1)
    pos += 1
    line, line_pos, index = 1, 0, 0
    while True:
        pos = _JSON_GAP.match(text, pos).end()
        line += text.count("\n", line_pos, pos)
        line_pos = pos
        if pos >= len(text):
            rejects.reject(record_error("JSON array is not closed (file truncated?); records from "
                                      "here on are lost", path, line, index))
            return
        if text[pos] == "]":
            return
        try:
            data, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            err_line = text.count("\n", 0, e.pos) + 1
            rejects.reject(record_error(f"malformed JSON: {e.msg}; records from here on are lost",
                                      path, err_line, index), text[pos:pos + 200])
            return
        record_index, index = index, index + 1
        if not isinstance(data, dict):
            rejects.reject(record_error(_not_an_object(data), path, line, record_index),
                           text[pos:end])
        elif _SURROGATE.search(text, pos, end):
            rejects.reject(record_error("not valid UTF-8; re-encode the file as UTF-8",
                                      path, line, record_index), text[pos:end])
        else:
            yield Record(record_index, data, str(path), line)
        pos = end


def _read_csv(path: Path, rejects: Rejects) -> Iterator[Record]:
    text = _decode(path, rejects)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    index = 0
    try:
        for row in reader:
            line = reader.line_num
            record_index, index = index, index + 1
            if None in row:
                rejects.reject(record_error(f"row has {len(reader.fieldnames or []) + len(row[None])} "
                                          f"fields, the header has {len(reader.fieldnames or [])}",
                                          path, line, record_index))
                continue
            if any(v is not None and _SURROGATE.search(v) for v in row.values()):
                rejects.reject(record_error("not valid UTF-8; re-encode the file as UTF-8",
                                          path, line, record_index))
                continue
            yield Record(record_index, dict(row), str(path), line)
    except csv.Error as e:
        raise InputError(f"malformed CSV: {e}", path, reader.line_num) from None


def _read_parquet(path: Path, rejects: Rejects) -> Iterator[Record]:
    pq = import_extra("pyarrow.parquet", "parquet")
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for a file that is not Parquet
        raise InputError(f"not a readable Parquet file: {e}", path) from None
    index = 0
    for batch in pf.iter_batches(batch_size=2048):
        for data in batch.to_pylist():
            yield Record(index, data, str(path))
            index += 1


def _read_hf(path: Path, rejects: Rejects) -> Iterator[Record]:
    datasets = import_extra("datasets", "hf")
    try:
        ds = datasets.load_from_disk(str(path))
    except FileNotFoundError as e:
        raise InputError(f"not a dataset saved with save_to_disk: {e}", path) from None
    if isinstance(ds, datasets.DatasetDict):
        splits = ", ".join(ds)
        raise InputError(f"folder holds a DatasetDict (splits: {splits}); pass one split's "
                         f"folder, e.g. {path / next(iter(ds))}", path)
    for index, data in enumerate(ds):
        yield Record(index, dict(data), str(path))


def import_extra(module: str, extra: str):
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:
        raise InputError(f"this format needs the [{extra}] extra: pip install 'entrosel[{extra}]'") from None


_READERS: dict[str, Callable[[Path, Rejects], Iterator[Record]]] = {
    "jsonl": _read_jsonl, "json": _read_json, "csv": _read_csv,
    "parquet": _read_parquet, "hf": _read_hf,
}
