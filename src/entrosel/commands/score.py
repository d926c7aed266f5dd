"""``entrosel score compression``: one compression ratio per input record."""
from __future__ import annotations

import functools
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from entrosel.engines.local import ordered_map, resolve_workers
from entrosel.io.records import Rejects, rejects_path
from entrosel.io.writers import write_records
from entrosel.pool import InputOptions, Source, iter_records, serialized_records
from entrosel.progress import Progress
from entrosel.scoring.compression import DEFAULT_LEVEL, Compressor, compressed_sizes, ratio

_CHUNK_BYTES = 1 << 20


@dataclass
class RunSummary:
    """What a command did, for its one-line summary."""

    records: int
    rejected: int
    seconds: float
    output: Path | None
    rejects_file: Path | None = None
    bytes: int = 0


def _chunks(pairs, limit: int) -> Iterator[list]:
    chunk, size = [], 0
    for pair in pairs:
        chunk.append(pair)
        size += len(pair[1])
        if size >= limit:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def score_compression(input: Source, output: str | Path, *, input_format: str | None = None,
                      serialize: str = "text", text_field: str | None = None,
                      template: str | None = None, compressor: str = "zlib",
                      level: int = DEFAULT_LEVEL, workers: int | None = None,
                      on_error: str = "raise", progress: bool | None = None) -> RunSummary:
    """Write one row per record: ``index``, ``id`` (if any), ``compression_ratio``, ``bytes``,
    ``compressed_bytes``. Each record is framed as a one-sample set (``repr``: ``[record]``)."""
    t0 = time.perf_counter()
    comp = Compressor(compressor, level)
    options = InputOptions(input_format, serialize, text_field, template, on_error)
    framing = options.serialization.framing
    rejects = Rejects(on_error)
    work = functools.partial(compressed_sizes, compressor=comp)
    totals = {"records": 0, "bytes": 0}

    def rows() -> Iterator[dict[str, Any]]:
        pairs = serialized_records(iter_records(input, input_format, rejects),
                                   options.serialization, rejects)
        framed = ((rec, framing.open + item + framing.close) for rec, item in pairs)
        chunks = _chunks(framed, _CHUNK_BYTES)
        metas: deque[list] = deque()

        def items_of(chunk_iter):
            for chunk in chunk_iter:
                metas.append([(rec.index, rec.data.get("id"), len(item)) for rec, item in chunk])
                yield [item for _, item in chunk]

        with Progress("scoring", unit="B", enabled=progress) as bar:
            for sizes in ordered_map(work, items_of(chunks), resolve_workers(workers)):
                meta = metas.popleft()
                for (index, id_, n), c in zip(meta, sizes):
                    row: dict[str, Any] = {"index": index}
                    if id_ is not None:
                        row["id"] = id_
                    row.update(compression_ratio=ratio(n, c), bytes=n, compressed_bytes=c)
                    totals["records"] += 1
                    totals["bytes"] += n
                    yield row
                bar.update(sum(n for _, _, n in meta))

    write_records(rows(), output)
    rejected_file = rejects.write(rejects_path(output))
    return RunSummary(totals["records"], len(rejects), time.perf_counter() - t0, Path(output),
                      rejected_file, totals["bytes"])
