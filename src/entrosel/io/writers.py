"""Writers: records (or plain rows of scores) out, atomically, in the order given.

A record read from JSONL is written back as its original bytes; other formats write the
parsed values, so keys, their order and values come out as they went in. A name ending in
``.gz`` (``out.jsonl.gz``, ``.json.gz``, ``.csv.gz``) is written gzip-compressed, as it is read.
"""
from __future__ import annotations

import csv
import gzip
import json
import os
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from entrosel.errors import InputError
from entrosel.io.atomic import atomic_path
from entrosel.io.readers import (SUFFIX_FORMATS, INPUT_FORMATS, detect_format, hub_name, import_extra,
                                 load_hub_dataset)
from entrosel.io.records import Record

OUTPUT_FORMATS = INPUT_FORMATS


_GZIP_FORMATS = ("jsonl", "json", "csv")


def _gzipped(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".gz"


def output_format_for(path: str | Path, flag: str | None = None) -> str:
    """The format to write ``path`` in: from its extension (``.gz`` looked through for JSONL,
    JSON and CSV); a name with none is a HF folder. ``flag``: the option that named it, for
    the message."""
    named = f"{flag}: " if flag else ""
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"{named}an output is a file name, not {type(path).__name__}")
    p = Path(path)
    suffix = (p.with_suffix("") if _gzipped(p) else p).suffix.lower()
    fmt = SUFFIX_FORMATS.get(suffix)
    if fmt is not None and (fmt in _GZIP_FORMATS or not _gzipped(p)):
        return fmt
    if suffix == "" and not _gzipped(p):
        return "hf"
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
    if gz:  # level 6, gzip's own: 54 MB of rows in 0.39 s to 4.9 MB; 9: 2.56 s, 4.5 MB (bench_hotpaths)
        return gzip.open(path, mode if "b" in mode else mode + "t", compresslevel=6, **text)
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
    hub = hub_name(like)
    if hub is not None:
        return load_hub_dataset(hub).features
    return import_extra("datasets", "hf").load_from_disk(str(like)).features


# rows per Parquet row group: what the writer holds in memory at once
PARQUET_ROW_GROUP = 8192


def _parquet_chunk(rows: list[dict[str, Any]], schema):
    """One chunk of rows as an Arrow table: in ``schema`` when given (the input's), else with
    each column's type inferred from all its values in the chunk (every key any row has)."""
    pa = import_extra("pyarrow", "parquet")
    if schema is not None:
        return pa.Table.from_pylist(rows, schema=schema)
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    return pa.table({k: pa.array([row.get(k) for row in rows]) for k in columns})


def _conform(table, schema):
    """``table`` with the columns of ``schema``, in its order and types (missing ones null)."""
    pa = import_extra("pyarrow", "parquet")
    return pa.table({f.name: table.column(f.name).cast(f.type) if f.name in table.column_names
                     else pa.nulls(len(table), f.type) for f in schema}, schema=schema)


def _write_parquet(records, path: Path, like) -> int:
    """Streamed: one row group of :data:`PARQUET_ROW_GROUP` rows at a time. Without an input
    schema to keep, a column whose type a later row group widens (all null so far, int then
    float, a new key) makes the writer rewrite what it wrote, once, in the wider schema."""
    pa = import_extra("pyarrow", "parquet")
    pq = import_extra("pyarrow.parquet", "parquet")
    fixed = _source_schema(like, "parquet")
    writer, schema, n = None, fixed, 0
    try:
        for chunk in _batches((dict(_data(r)) for r in records), PARQUET_ROW_GROUP):
            table = _parquet_chunk(chunk, fixed)
            if writer is None:
                schema = table.schema
                writer = pq.ParquetWriter(path, schema)
            elif fixed is None and not table.schema.equals(schema):
                wider = pa.unify_schemas([schema, table.schema], promote_options="permissive")
                if not wider.equals(schema):
                    writer.close()
                    writer = _rewrite_parquet(path, wider)
                    schema = wider
                table = _conform(table, schema)
            writer.write_table(table, row_group_size=PARQUET_ROW_GROUP)
            n += len(chunk)
        if writer is None:  # no records: an empty file in the input's schema, or none
            pq.write_table(pa.table({}) if fixed is None else fixed.empty_table(), path)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise InputError(f"cannot write these records as Parquet ({e}): a column's values must "
                         "share one type; write .jsonl instead") from None
    finally:
        if writer is not None:
            writer.close()
    return n


def _rewrite_parquet(path: Path, schema):
    """Move the row groups written so far into a new writer of ``schema``; returns it open."""
    pq = import_extra("pyarrow.parquet", "parquet")
    old = path.with_name(path.name + ".narrow")
    path.rename(old)
    writer = pq.ParquetWriter(path, schema)
    try:
        with pq.ParquetFile(old) as source:
            for i in range(source.num_row_groups):
                writer.write_table(_conform(source.read_row_group(i), schema),
                                   row_group_size=PARQUET_ROW_GROUP)
    except BaseException:
        writer.close()
        raise
    finally:
        old.unlink()
    return writer


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _write_hf(records, path: Path, like) -> int:
    datasets = import_extra("datasets", "hf")
    rows = [dict(_data(r)) for r in records]
    features = _source_schema(like, "hf")
    ds = datasets.Dataset.from_list(rows, features=features)
    ds.save_to_disk(str(path))
    return len(rows)


_WRITERS = {"jsonl": _write_jsonl, "json": _write_json, "csv": _write_csv,
            "parquet": _write_parquet, "hf": _write_hf}
