"""Readers: a path in, a stream of :class:`Record` out.

JSONL (optionally gzipped) and Parquet stream (Parquet by row groups); JSON arrays, CSV and
Hugging Face ``datasets`` folders are read record by record from one parse. A Hub dataset is
named ``hf://datasets/OWNER/NAME[/CONFIG][@REVISION]:SPLIT`` and loaded by
``datasets.load_dataset`` (from the local cache when offline). Every reader reports a bad
record as ``file:line: reason`` through a :class:`Rejects` policy.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import msgspec

from entrosel.errors import InputError
from entrosel.io.records import Record, Rejects, record_error

INPUT_FORMATS = ("jsonl", "json", "csv", "parquet", "hf", "folder")

SUFFIX_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv",
             ".parquet": "parquet", ".pq": "parquet"}
_SURROGATE = re.compile("[\udc80-\udcff]")
_JSON_GAP = re.compile(r"[\s,]*")


HUB_PREFIX = "hf://datasets/"
_HUB_NAME = re.compile(r"(?P<repo>[^/@:\s]+/[^/@:\s]+)(?:/(?P<config>[^/@:\s]+))?"
                       r"(?:@(?P<revision>[^:\s]+))?(?::(?P<split>[^:/@\s]+))?")


@dataclass(frozen=True)
class HubName:
    """A data set on the Hugging Face Hub: ``hf://datasets/OWNER/NAME[/CONFIG][@REVISION]:SPLIT``."""

    repo: str
    config: str | None = None
    revision: str | None = None
    split: str | None = None

    def __str__(self) -> str:
        config = f"/{self.config}" if self.config else ""
        revision = f"@{self.revision}" if self.revision else ""
        split = f":{self.split}" if self.split else ""
        return f"{HUB_PREFIX}{self.repo}{config}{revision}{split}"


def hub_name(source: object, input_format: str | None = None) -> HubName | None:
    """The Hub data set ``source`` names, or ``None`` when it is a local path: a string starting
    ``hf://datasets/``, or with ``input_format="hf"`` a bare ``OWNER/NAME...:SPLIT`` (split
    required) that is no local file or folder. A malformed ``hf://`` name raises :class:`InputError`."""
    if not isinstance(source, str):
        return None
    if source.startswith(HUB_PREFIX):
        name = source[len(HUB_PREFIX):]
    elif input_format == "hf" and ":" in source and not os.path.exists(source) \
            and _HUB_NAME.fullmatch(source):  # without the prefix, the split tells it from a folder
        name = source
    else:
        return None
    m = _HUB_NAME.fullmatch(name)
    if m is None:
        raise InputError("not a Hub data set name; write hf://datasets/OWNER/NAME[/CONFIG]"
                         "[@REVISION]:SPLIT, e.g. hf://datasets/openai/gsm8k/main:train", source)
    return HubName(**m.groupdict())


def detect_format(path: str | Path) -> str:
    """The format of ``path`` from its extension (``.gz`` looked through); for a folder,
    ``hf`` (saved by ``datasets.Dataset.save_to_disk``) or ``folder`` (a folder of data
    files, the shards of one data set); ``hf`` for a Hub name (``hf://datasets/...``). A
    ``.json`` file holding one object per line is JSONL."""
    if hub_name(path) is not None:
        return "hf"
    p = Path(path)
    if p.is_dir():
        if (p / "dataset_info.json").exists() or (p / "state.json").exists() \
                or (p / "dataset_dict.json").exists():
            return "hf"
        shard_files(p)  # refuses a folder without data files
        return "folder"
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
    ``rejects`` skips it; a file with no records at all is always an error. ``path`` may
    name a Hub data set (``hf://datasets/OWNER/NAME[/CONFIG][@REVISION]:SPLIT``)."""
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"an input is a file or folder name, not {type(path).__name__}")
    hub = hub_name(path, input_format)
    if hub is not None:
        if input_format not in (None, "hf"):
            raise InputError(f"a Hub data set is read as --input-format hf, not {input_format}", str(hub))
        yield from _counted(_read_hub(hub, rejects if rejects is not None else Rejects()), str(hub), rejects)
        return
    p = Path(path)
    if not p.exists():
        raise InputError("no such file or folder", p)
    fmt = input_format or detect_format(p)
    reader = _READERS.get(fmt)
    if reader is None:
        raise InputError(f"unknown input format {fmt!r}; choose one of {', '.join(INPUT_FORMATS)}", p)
    rejects = rejects if rejects is not None else Rejects()
    yield from _counted(reader(p, rejects), p, rejects)


def _counted(records: Iterator[Record], path: str | Path, rejects: Rejects | None) -> Iterator[Record]:
    count = 0
    try:
        for record in records:
            count += 1
            yield record
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        if not _is_gzip(path):
            raise
        raise InputError(f"not a valid gzip file ({e}) after {count:,} records; "
                         "download it again or unzip it to see what it holds", path) from None
    if count == 0 and not (rejects is not None and rejects.rejected):
        raise InputError("input holds no records", path)


# gzip's magic number and its one compression method (deflate): two bytes alone begin some
# text files too
_GZIP_MAGIC = b"\x1f\x8b\x08"
_BOM = b"\xef\xbb\xbf"


def _is_gzip(path: str | Path) -> bool:
    """Whether ``path`` is a file that begins as gzip does, whatever its name says."""
    try:
        with open(path, "rb") as f:
            return f.read(len(_GZIP_MAGIC)) == _GZIP_MAGIC
    except OSError:  # a folder, a Hub name
        return False


def _open_binary(path: Path):
    """The file's bytes, gunzipped when it is gzip whatever its name says (a ``.jsonl`` that
    is really gzip is common: a download saved without its ``.gz``)."""
    return gzip.open(path, "rb") if _is_gzip(path) else open(path, "rb")


def _first_char(path: Path) -> str:
    with _open_binary(path) as f:
        head = f.read(4096).removeprefix(_BOM).lstrip()
    return head[:1].decode("latin-1")


def _not_an_object(value: Any) -> str:
    return f"expected a JSON object (a record), found {type(value).__name__}"


def shard_files(folder: Path) -> list[Path]:
    """The data files of a folder of shards (``part-0000.jsonl``, ...), in name order; hidden
    files, ``_``-prefixed ones and entrosel's side files are not data."""
    def is_data(f: Path) -> bool:
        suffixes = [s.lower() for s in f.suffixes if s.lower() != ".gz"]
        return (f.is_file() and not f.name.startswith((".", "_")) and bool(suffixes)
                and suffixes[-1] in SUFFIX_FORMATS and ".meta" not in suffixes
                and ".rejects" not in suffixes)

    files = sorted(f for f in folder.iterdir() if is_data(f))
    if not files:
        raise InputError("folder holds no data files (.jsonl, .json, .csv, .parquet, or .gz of "
                         "those) and is not a Hugging Face dataset saved with save_to_disk", folder)
    formats = {detect_format(f) for f in files}
    if len(formats) > 1:
        raise InputError(f"folder mixes formats ({', '.join(sorted(formats))}); keep the shards "
                         "of one data set in one format", folder)
    return files


def jsonl_lines(path: str | Path, start: int = 0) -> Iterator[tuple[int, int, bytes]]:
    """``(index, line, raw)`` for each non-blank line of a JSONL file, unparsed, so that the
    parsing can run where the rest of the work runs (see :func:`parse_jsonl_line`).
    Indices count from ``start``."""
    index = start
    with _open_binary(Path(path)) as f:
        for line_no, raw in enumerate(f, start=1):
            if line_no == 1 and raw.startswith(_BOM):  # what Excel and Windows tools write
                raw = raw[len(_BOM):]
            if raw.strip():
                yield index, line_no, raw.rstrip(b"\r\n")
                index += 1


def is_plain_jsonl(path: str | Path, input_format: str | None = None) -> bool:
    """Whether ``path`` is one uncompressed JSONL file (whose lines can be read in place)."""
    if not isinstance(path, (str, os.PathLike)) or hub_name(path, input_format) is not None:
        return False
    p = Path(path)
    if not p.is_file() or (input_format or detect_format(p)) != "jsonl":
        return False
    return not _is_gzip(p)


def jsonl_spans(path: str | Path, rejects: Rejects | None = None) -> Iterator[tuple[int, int, int, int]]:
    """``(index, line, start, length)`` of each readable record of an uncompressed JSONL file:
    where its bytes lie in the file (line ends and a byte-order mark left out). Every line is
    parsed once to check it; a bad one goes to ``rejects``, as :func:`read_records` does."""
    p = Path(path)
    rejects = rejects if rejects is not None else Rejects()
    index = offset = count = 0
    with open(p, "rb") as f:
        for line_no, raw in enumerate(f, start=1):
            start, offset = offset, offset + len(raw)
            if line_no == 1 and raw.startswith(_BOM):
                raw, start = raw[len(_BOM):], start + len(_BOM)
            if not raw.strip():
                continue
            raw = raw.rstrip(b"\r\n")
            try:
                parse_jsonl_line(p, index, line_no, raw)
            except InputError as e:
                rejects.reject(e, raw.decode("utf-8", "replace"))
            else:
                yield index, line_no, start, len(raw)
                count += 1
            index += 1
    if count == 0 and not rejects.rejected:
        raise InputError("input holds no records", p)


_decode_json = msgspec.json.Decoder().decode


def loads(raw: bytes) -> Any:
    """``json.loads(raw)``, faster (5.6 against 9.9 us a line of the scale pool:
    ``benchmarks/bench_hotpaths.py``): msgspec parses it, and what msgspec refuses
    (NaN, Infinity, numbers past a double, lone surrogates, bad UTF-8, malformed text) goes
    to ``json.loads``, which gives the value or the error it always gave (property test:
    ``tests/test_properties.py``; edge cases: ``tests/test_io.py``)."""
    try:
        return _decode_json(raw)
    except msgspec.DecodeError:
        return json.loads(raw)


def parse_jsonl_line(path: str | Path, index: int, line_no: int, raw: bytes) -> Record:
    """One JSONL line as a :class:`Record`; raises :class:`InputError` naming the line."""
    try:
        data = _decode_json(raw)
    except msgspec.DecodeError:
        pass  # json's reading of it: the same value, or the error a user is shown
    else:
        if isinstance(data, dict):
            return Record(index, data, str(path), line_no, raw)
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


# Each reader numbers its records from ``start`` and returns the next free index, so that
# a folder of shards numbers its records as one data set.

def _read_jsonl(path: Path, rejects: Rejects, start: int = 0) -> Iterator[Record]:
    next_index = start
    for index, line_no, raw in jsonl_lines(path, start):
        next_index = index + 1
        try:
            yield parse_jsonl_line(path, index, line_no, raw)
        except InputError as e:
            rejects.reject(e, raw.decode("utf-8", "replace"))
    return next_index


def _decode(path: Path, rejects: Rejects) -> str:
    """Decode a whole file; undecodable bytes survive as surrogates so that only the records
    holding them are rejected."""
    with _open_binary(path) as f:
        data = f.read()
    if data.startswith(_BOM):
        data = data[len(_BOM):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        if rejects.on_error == "raise":
            line = data.count(b"\n", 0, e.start) + 1
            raise InputError(f"not valid UTF-8 (byte 0x{data[e.start]:02x}); re-encode the file "
                             "as UTF-8", path, line) from None
        return data.decode("utf-8", "surrogateescape")


def _read_json(path: Path, rejects: Rejects, start: int = 0) -> Iterator[Record]:
    text = _decode(path, rejects)
    decoder = json.JSONDecoder()
    pos = _JSON_GAP.match(text, 0).end()
    if not text.startswith("[", pos):
        raise InputError("expected a JSON array of records ('[' ...), or one JSON object per line "
                         "(name the file .jsonl)", path, text.count("\n", 0, pos) + 1)
    pos += 1
    line, line_pos, index = 1, 0, start
    while True:
        pos = _JSON_GAP.match(text, pos).end()
        line += text.count("\n", line_pos, pos)
        line_pos = pos
        if pos >= len(text):
            rejects.reject(record_error("JSON array is not closed (file truncated?); records from "
                                      "here on are lost", path, line, index))
            return index
        if text[pos] == "]":
            return index
        try:
            data, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            err_line = text.count("\n", 0, e.pos) + 1
            rejects.reject(record_error(f"malformed JSON: {e.msg}; records from here on are lost",
                                      path, err_line, index), text[pos:pos + 200])
            return index
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


def _read_csv(path: Path, rejects: Rejects, start: int = 0) -> Iterator[Record]:
    text = _decode(path, rejects)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    index = start
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
    return index


def _read_parquet(path: Path, rejects: Rejects, start: int = 0) -> Iterator[Record]:
    pq = import_extra("pyarrow.parquet", "parquet")
    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for a file that is not Parquet
        raise InputError(f"not a readable Parquet file: {e}", path) from None
    index = start
    for batch in pf.iter_batches(batch_size=2048):
        for data in batch.to_pylist():
            yield Record(index, data, str(path))
            index += 1
    return index


def _read_hf(path: Path, rejects: Rejects, start: int = 0) -> Iterator[Record]:
    datasets = import_extra("datasets", "hf")
    try:
        ds = datasets.load_from_disk(str(path))
    except FileNotFoundError as e:
        raise InputError(f"not a dataset saved with save_to_disk: {e}", path) from None
    if isinstance(ds, datasets.DatasetDict):
        splits = ", ".join(ds)
        raise InputError(f"folder holds a DatasetDict (splits: {splits}); pass one split's "
                         f"folder, e.g. {path / next(iter(ds))}", path)
    for index, data in enumerate(ds, start):
        yield Record(index, dict(data), str(path))
    return start + len(ds)


def load_hub_dataset(hub: HubName):
    """The ``datasets.Dataset`` a Hub name stands for, through ``datasets.load_dataset`` (the
    local cache when ``HF_DATASETS_OFFLINE=1``, or ``HF_DATASETS_CACHE`` names another one).
    Raises :class:`InputError` in one line when neither the Hub nor the cache has it."""
    datasets = import_extra("datasets", "hf")
    where = str(hub)
    log = datasets.utils.logging
    verbosity = log.get_verbosity()
    log.set_verbosity_error()  # "using the latest cached version ...": not our user's concern
    try:
        ds = datasets.load_dataset(hub.repo, hub.config, split=hub.split, revision=hub.revision,
                                   cache_dir=os.environ.get("HF_DATASETS_CACHE") or None)
    except (ConnectionError, OSError, ValueError, datasets.exceptions.DatasetNotFoundError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        offline = bool(getattr(datasets.config, "HF_HUB_OFFLINE", False))
        hint = ("offline (HF_DATASETS_OFFLINE) and not in the local cache"
                if offline else "neither the Hub nor the local cache has it")
        raise InputError(f"cannot load this data set: {hint} ({first}); download it once with "
                         "network access, or set HF_DATASETS_CACHE to a cache that holds it", where) from None
    finally:
        log.set_verbosity(verbosity)
    if isinstance(ds, datasets.DatasetDict):
        if len(ds) != 1:
            raise InputError(f"name a split: the data set has {', '.join(ds)}; e.g. {where}:{next(iter(ds))}",
                             where)
        ds = next(iter(ds.values()))
    return ds


def _read_hub(hub: HubName, rejects: Rejects, start: int = 0) -> Iterator[Record]:
    ds = load_hub_dataset(hub)
    index = start
    for batch in ds.iter(batch_size=1024):
        columns = list(batch)
        for values in zip(*(batch[c] for c in columns)):
            yield Record(index, dict(zip(columns, values)), str(hub))
            index += 1
    return index


def _read_folder(path: Path, rejects: Rejects, start: int = 0) -> Iterator[Record]:
    index = start
    for file in shard_files(path):
        index = yield from _READERS[detect_format(file)](file, rejects, index)
    return index


def import_extra(module: str, extra: str):
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:
        raise InputError(f"this format needs the [{extra}] extra: pip install 'entrosel[{extra}]'") from None


_READERS: dict[str, Callable[[Path, Rejects, int], Iterator[Record]]] = {
    "jsonl": _read_jsonl, "json": _read_json, "csv": _read_csv,
    "parquet": _read_parquet, "hf": _read_hf, "folder": _read_folder,
}
