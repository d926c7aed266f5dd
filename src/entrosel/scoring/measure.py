"""The compression ratio of a data set as a whole (the entropy law's R): the set's records,
serialized as ZIP serializes them, compressed as one stream."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from entrosel.io.readers import hub_name
from entrosel.io.records import Rejects, rejects_path
from entrosel.pool import InputOptions, Source, iter_records, serialized_records
from entrosel.progress import Progress
from entrosel.scoring.compression import Compressor, StreamMeasure


def measure_one(source: Source, *, input_format: str | None = None, serialize: str = "text",
                text_field: str | None = None, template: str | None = None,
                compressor: str = "zlib", level: int | None = None, on_error: str = "raise",
                rejects: Rejects | None = None, progress: bool | None = None) -> dict[str, Any]:
    """``records``, ``bytes``, ``compressed_bytes`` and ``R``, the compression ratio of the whole
    set (the entropy law's name; ``compression_ratio``, the older key, holds the same value:
    per record, ``entrosel score compression`` writes a ``compression_ratio`` column).

    With ``serialize="repr"`` and zlib the ratio is exactly
    ``len(s) / len(zlib.compress(s, level))`` for ``s = str(records).encode()``: the set is
    compressed as one stream, fed record by record.
    """
    options = InputOptions(input_format, serialize, text_field, template, on_error)
    framing = options.serialization.framing
    rejects = rejects if rejects is not None else Rejects(on_error)
    chosen = Compressor(compressor, level)
    meter = StreamMeasure(chosen)
    digest = hashlib.sha256()
    feed = meter.feed

    def both(data: bytes) -> None:  # the content hash is of the very bytes compressed
        feed(data)
        digest.update(data)

    meter.feed = both  # type: ignore[method-assign]
    meter.feed(framing.open)
    records = 0
    with Progress("measuring", unit=" records", enabled=progress) as bar:
        for _, item in serialized_records(iter_records(source, input_format, rejects),
                                          options.serialization, rejects):
            meter.feed(framing.sep + item if records else item)
            records += 1
            bar.update()
    meter.feed(framing.close)
    r = meter.finish()
    is_path = isinstance(source, (str, os.PathLike))
    name = str(source) if is_path else "<records>"
    row = {"input": name, "records": records, "rejected": len(rejects), "bytes": meter.bytes,
           "compressed_bytes": meter.compressed_bytes, "R": r, "compression_ratio": r,
           "serialize": serialize, "compressor": compressor, "level": chosen.level,
           "sha256": digest.hexdigest()}
    if is_path and rejects.rejected:  # no output file here: the rejects go beside the input
        row["rejects_file"] = str(rejects.write(_rejects_beside(source, input_format)))
    return row


def _rejects_beside(source: str | os.PathLike, input_format: str | None) -> Path:
    """Where ``measure`` writes the rejects of ``source``: ``INPUT.rejects.jsonl``; for a Hub
    data set, ``OWNER__NAME__SPLIT.rejects.jsonl`` in the current folder (a name is no folder)."""
    hub = hub_name(source, input_format)
    if hub is None:
        return rejects_path(source)
    parts = [*hub.repo.split("/"), hub.config, hub.revision, hub.split]
    return Path("__".join(p.replace("/", "_") for p in parts if p) + ".rejects.jsonl")
