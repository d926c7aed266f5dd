"""Writers: records (or plain rows of scores) out, atomically, in the order given.

A record read from JSONL is written back as its original bytes; other formats write the
parsed values, so keys, their order and values come out as they went in. A name ending in
``.gz`` (``out.jsonl.gz``, ``.json.gz``, ``.csv.gz``) is written gzip-compressed, as it is read.
"""
from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path
from typing import Any, Iterable, Mapping

from entrosel.errors import InputError
from entrosel.io.atomic import atomic_path
from entrosel.io.readers import SUFFIX_FORMATS, INPUT_FORMATS, import_extra, detect_format
from entrosel.io.records import Record

OUTPUT_FORMATS = INPUT_FORMATS


_GZIP_FORMATS = ("jsonl", "json", "csv")


def _gzipped(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".gz"


def output_format_for(path: str | Path, flag: str | None = None) -> str:
    """The format to write ``path`` in: from its extension (``.gz`` looked through for JSONL,
    JSON and CSV); a name with none is a HF folder. ``flag``: the option that named it, for
    the message."""
    p = Path(path)
    suffix = (p.with_suffix("") if _gzipped(p) else p).suffix.lower()
    fmt = SUFFIX_FORMATS.get(suffix)
    if fmt is not None and (fmt in _GZIP_FORMATS or not _gzipped(p)):
        return fmt
    if suffix == "" and not _gzipped(p):
        return "hf"
    named = f"{flag}: " if flag else ""
    raise InputError(f"{named}cannot tell the output format from {p.name!r}; use one of .jsonl .json "
                     ".csv .parquet (.jsonl.gz .json.gz .csv.gz), or a folder name for a "
                     "Hugging Face dataset", p)


def write_records(records: Iterable[Record | Mapping[str, Any]], path: str | Path,
                  output_format: str | None = None, like: str | Path | None = None) -> int:
    """Write ``records`` to ``path`` atomically; returns how many were written.

    ``like`` names the input the records came from: a Parquet or HF output then keeps its
    schema (column types, nullability) instead of inferring a new one.
    """
    fmt = output_format or output_format_for(path)
    if fmt not in _WRITERS:
        raise InputError(f"unknown output format {fmt!r}; choose one of {', '.join(OUTPUT_FORMATS)}")
    with atomic_path(path) as tmp:
        if fmt in _GZIP_FORMATS and _gzipped(path):
            return _WRITERS[fmt](records, tmp, like, gz=True)
        return _WRITERS[fmt](records, tmp, like)


def _open(path: Path, mode: str, gz: bool, **text):
    """``path`` opened for writing, gzip-compressed when ``gz`` (text modes as ``open``)."""
    if gz:
        return gzip.open(path, mode if "b" in mode else mode + "t", **text)
    return open(path, mode, **text)


def _data(record: Record | Mapping[str, Any]) -> Mapping[str, Any]:
    return record.data if isinstance(record, Record) else record


def _write_jsonl(records, path: Path, like, gz: bool = False) -> int:
    n = 0
    with _open(path, "wb", gz) as f:
        for r in records:
            if isinstance(r, Record) and r.raw is not None:
                f.write(r.raw)
            else:
                f.write(json.dumps(_data(r), ensure_ascii=False).encode("utf-8"))
            f.write(b"\n")
            n += 1
    return n


def _write_json(records, path: Path, like, gz: bool = False) -> int:
    n = 0
    with _open(path, "w", gz, encoding="utf-8") as f:
        f.write("[")
        for r in records:
            f.write(",\n" if n else "\n")
            f.write(json.dumps(_data(r), ensure_ascii=False))
            n += 1
        f.write("\n]\n" if n else "]\n")
    return n


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _write_csv(records, path: Path, like, gz: bool = False) -> int:
    rows = [_data(r) for r in records]
    fields: dict[str, None] = {}
    for row in rows:
        fields.update(dict.fromkeys(row))
    with _open(path, "w", gz, encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(fields)
        for row in rows:
            writer.writerow([_csv_cell(row.get(k)) for k in fields])
    return len(rows)


def _source_schema(like, fmt: str):
    if like is None or detect_format(like) != fmt:
        return None
    if fmt == "parquet":
        return import_extra("pyarrow.parquet", "parquet").read_schema(like)
    return import_extra("datasets", "hf").load_from_disk(str(like)).features


def _write_parquet(records, path: Path, like) -> int:
    pa = import_extra("pyarrow", "parquet")
    pq = import_extra("pyarrow.parquet", "parquet")
    rows = [dict(_data(r)) for r in records]
    schema = _source_schema(like, "parquet")
    table = pa.Table.from_pylist(rows, schema=schema)
    pq.write_table(table, path)
    return len(rows)


def _write_hf(records, path: Path, like) -> int:
    datasets = import_extra("datasets", "hf")
    rows = [dict(_data(r)) for r in records]
    features = _source_schema(like, "hf")
    ds = datasets.Dataset.from_list(rows, features=features)
    ds.save_to_disk(str(path))
    return len(rows)


_WRITERS = {"jsonl": _write_jsonl, "json": _write_json, "csv": _write_csv,
            "parquet": _write_parquet, "hf": _write_hf}
