"""The pool: input records read, rendered and serialized, ready to score or select from.

Each sample's serialized bytes go into one file-backed buffer that worker processes map
into memory, so N workers share one copy of the pool instead of holding N.
"""
from __future__ import annotations

import array
import mmap
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from entrosel.errors import InputError
from entrosel.formats.render import Renderer, RenderError, Turn
from entrosel.formats.serialize import Serialization
from entrosel.io.readers import loads, read_records
from entrosel.io.records import OnError, Record, Rejects
from entrosel.progress import Progress

if TYPE_CHECKING:
    from entrosel.engines.shards import Shard

# a path, or records in memory: a list (or any iterable) of dicts, a pandas DataFrame, a
# Hugging Face datasets.Dataset
Source = str | os.PathLike | Iterable[Mapping[str, Any]]


def _is_dataframe(source: Any) -> bool:
    return type(source).__module__.startswith("pandas") and hasattr(source, "iloc")


def _is_dataset(source: Any) -> bool:
    return type(source).__module__.startswith("datasets") and hasattr(source, "select")


@dataclass(frozen=True)
class InputOptions:
    """How to read an input and turn its records into bytes (the CLI's shared options)."""

    input_format: str | None = None
    serialize: str = "text"
    text_field: str | None = None
    template: str | None = None
    on_error: OnError = "raise"

    @property
    def serialization(self) -> Serialization:
        return Serialization(self.serialize, Renderer(self.text_field, self.template))


# A pass over mapped records hands the pages it has read back every this many bytes: the
# file stays in the OS's page cache (read again at no disk cost), not in the process.
_DROP_BEHIND = 64 << 20


class _MappedLines:
    """The records of an uncompressed JSONL file, read in place: the file mapped into memory
    and where each record's line lies in it (worker processes share the mapped pages).

    A pass in file order (what filters, the ZIP pool's build and the output's writing make)
    gives the pages behind it back as it goes, and :meth:`release` gives back all of them:
    the records stay one read away without the process holding the file (on a million
    records, 711 MB)."""

    def __init__(self, path: str, buffer: Any, starts: np.ndarray, lengths: np.ndarray,
                 index: np.ndarray, lines: np.ndarray) -> None:
        self.path, self.buffer = path, buffer
        self.starts, self.lengths, self.index, self.lines = starts, lengths, index, lines

    @classmethod
    def read(cls, path: str | os.PathLike, rejects: Rejects | None, progress: bool | None) -> "_MappedLines":
        from entrosel.io.readers import jsonl_spans

        columns = [array.array("q") for _ in range(4)]  # 8 bytes a number, not a Python int
        with Progress("reading", total=os.path.getsize(path), unit="B", enabled=progress) as bar:
            for span in jsonl_spans(path, rejects):
                for column, value in zip(columns, span):
                    column.append(value)
                bar.update(span[3] + 1)  # the line's bytes: the bar shows an ETA
        index, lines, starts, lengths = (np.frombuffer(c, dtype=np.int64).copy() for c in columns)
        with open(path, "rb") as f:
            buffer = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        return cls(str(path), buffer, starts, lengths, index, lines)

    def __len__(self) -> int:
        return len(self.index)

    def __iter__(self) -> Iterator[Record]:
        dropped = 0  # the pages before this offset were given back
        last = -1
        for i in range(len(self.index)):
            start = int(self.starts[i])
            if start < last:  # not in file order (ZIP's picks): nothing is given back
                dropped = len(self.buffer)
            last = start
            if start - dropped >= _DROP_BEHIND:
                end = start - start % mmap.PAGESIZE
                self._give_back(dropped, end)
                dropped = end
            yield self[i]

    def release(self) -> None:
        """Give every mapped page back to the OS (a later read maps it again)."""
        self._give_back(0, len(self.buffer))

    def _give_back(self, start: int, end: int) -> None:
        if end > start and hasattr(self.buffer, "madvise"):
            self.buffer.madvise(mmap.MADV_DONTNEED, start, end - start)

    def __getitem__(self, i: int) -> Record:
        """Record ``i``, its line parsed now (each line was checked when it was read)."""
        start = int(self.starts[i])
        raw = self.buffer[start:start + int(self.lengths[i])]
        return Record(int(self.index[i]), loads(raw), self.path, int(self.lines[i]), raw)

    def take(self, positions: np.ndarray) -> "_MappedLines":
        return _MappedLines(self.path, self.buffer, self.starts[positions], self.lengths[positions],
                            self.index[positions], self.lines[positions])


class RecordSet(Sequence[Record]):
    """Records read once and held, handed from step to step: a recipe reads its input once
    and each step sees the records the steps before it kept. A step sees them as it would
    a file of these records (index = position); each record keeps where it came from
    (file, line, the raw JSONL bytes), for messages and for writing it out unchanged.

    An uncompressed JSONL file is read in place (mapped, each record's line parsed when a
    step reads it); other inputs are held as read."""

    def __init__(self, records: Sequence[Record] | _MappedLines) -> None:
        self._records = records

    @classmethod
    def read(cls, source: Source, input_format: str | None = None, rejects: Rejects | None = None,
             progress: bool | None = None) -> "RecordSet":
        """Every readable record of ``source``; bad ones go to ``rejects``."""
        from entrosel.io.readers import is_plain_jsonl

        if is_plain_jsonl(source, input_format):
            return cls(_MappedLines.read(source, rejects, progress))
        with Progress("reading", unit=" records", enabled=progress) as bar:
            records = []
            for record in iter_records(source, input_format, rejects):
                records.append(record)
                bar.update()
        return cls(records)

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, i: int) -> Record:
        """Record ``i`` as read: its input index, file, line and fields."""
        return self._records[i]

    def __iter__(self) -> Iterator[Record]:
        return iter(self._records)

    def release(self) -> None:
        """Give back the memory the records' file is mapped into, where it is (the records
        stay readable: a read maps their pages again)."""
        if isinstance(self._records, _MappedLines):
            self._records.release()

    def take(self, positions: Iterable[int]) -> "RecordSet":
        """The records at ``positions``, in that order."""
        if isinstance(self._records, _MappedLines):
            return RecordSet(self._records.take(np.asarray(list(positions), dtype=np.int64)))
        return RecordSet([self._records[int(p)] for p in positions])

    @property
    def input_indices(self) -> np.ndarray:
        """Each record's index in the input that was read."""
        if isinstance(self._records, _MappedLines):
            return self._records.index.copy()
        return np.fromiter((r.index for r in self._records), dtype=np.int64, count=len(self._records))


def iter_records(source: Source, input_format: str | None = None,
                 rejects: Rejects | None = None, shard: Shard | None = None) -> Iterator[Record]:
    """Records of a path, of records already read (:class:`RecordSet`), or of an in-memory
    iterable of dicts (index = position); with ``shard``, only the records that shard owns."""
    if isinstance(source, (str, os.PathLike)):
        records = read_records(source, input_format, rejects)
    elif isinstance(source, RecordSet):
        records = (Record(i, r.data, r.path, r.line, r.raw) for i, r in enumerate(source))
    elif _is_dataframe(check_source(source)):  # iterating a DataFrame gives its column names
        records = (Record(i, data, "<DataFrame>") for i, data in enumerate(source.to_dict("records")))
    else:
        records = (Record(i, dict(_mapping(i, data)), "<records>") for i, data in enumerate(source))
    if shard is None:
        yield from records
    else:
        yield from (r for r in records if shard.owns(r.index))


def _mapping(i: int, data: Any) -> Mapping:
    if not isinstance(data, Mapping):
        raise InputError(f"record {i} is a {type(data).__name__}, not a mapping of fields; a pool is "
                         "a path, a list of dicts, a pandas DataFrame or a datasets.Dataset")
    return data


def serialized_records(records: Iterable[Record], serialization: Serialization,
                       rejects: Rejects) -> Iterator[tuple[Record, bytes]]:
    """Each record with its serialized bytes; records without text go to ``rejects``."""
    for record in records:
        try:
            item = serialization.item(record.data)
        except RenderError as e:
            rejects.reject(record.error(str(e)), _raw_text(record))
            continue
        yield record, item


def rendered_records(input: Source, options: InputOptions, rejects: Rejects,
                     shard: Shard | None = None) -> Iterator[tuple[Record, list[Turn]]]:
    """Each readable record (of ``shard``) with its turns; records without text go to ``rejects``."""
    renderer = options.serialization.renderer
    for record in iter_records(input, options.input_format, rejects, shard):
        try:
            yield record, renderer.turns(record.data)
        except RenderError as e:
            rejects.reject(record.error(str(e)), _raw_text(record))


def _raw_text(record: Record) -> str:
    if record.raw is not None:
        return record.raw.decode("utf-8", "replace")
    return repr(record.data)[:10_000]


# Offsets as a Python list index several times faster than NumPy's scalars (evaluators
# fetch items millions of times); above this many items the list would cost too much memory.
_LIST_OFFSETS = 4_000_000


@dataclass(frozen=True)
class PoolItems:
    """Picklable view of the pool's bytes: a file and the offsets of each item in it."""

    path: str
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def open(self) -> "OpenItems":
        return OpenItems(self)

    def in_memory(self) -> "PoolBytes":
        """The same items with their bytes held, for workers that cannot read this file."""
        return PoolBytes(bytes(self.open().buffer), self.offsets)


@dataclass(frozen=True)
class PoolBytes:
    """Picklable items that carry their bytes (to workers on another machine)."""

    data: bytes
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def open(self) -> "OpenItems":
        return OpenItems(buffer=self.data, offsets=self.offsets)


class OpenItems:
    """The pool's bytes mapped into this process (or held in a buffer another process gave)."""

    def __init__(self, view: PoolItems | None = None, *, buffer: Any = None,
                 offsets: np.ndarray | None = None) -> None:
        if view is None:
            self.offsets, self._buf = offsets, buffer
            self._starts = offsets.tolist() if len(offsets) <= _LIST_OFFSETS else None
            return
        self.offsets = view.offsets
        self._starts = view.offsets.tolist() if len(view.offsets) <= _LIST_OFFSETS else None
        size = int(view.offsets[-1])
        if size == 0:
            self._buf = b""
        else:
            with open(view.path, "rb") as f:
                self._buf = mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ)

    def __getitem__(self, i: int) -> bytes:
        starts = self._starts if self._starts is not None else self.offsets
        return bytes(self._buf[starts[i]:starts[i + 1]])

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def buffer(self) -> Any:
        """All items' bytes, back to back."""
        return self._buf


def _remove_orphans() -> None:
    """Remove the pool folders of processes that no longer run: a run killed with SIGKILL
    cleans nothing, and its folder holds the pool's whole text (391 MiB for 424,323
    records). A folder whose process id is in use again is left: harmless."""
    for folder in Path(tempfile.gettempdir()).glob("entrosel-pool-*-*"):
        pid = folder.name.split("-")[2]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:  # another user's process: alive
            pass


class Pool:
    """Serialized samples with their input row index and id, in input order."""

    def __init__(self, items: PoolItems, index: np.ndarray, ids: list[Any], workdir: str) -> None:
        self.items = items
        self.index = index
        self.ids = ids
        self._workdir = workdir
        self._open: OpenItems | None = None

    @classmethod
    def from_items(cls, items: Iterable[bytes]) -> "Pool":
        """A pool of bare byte strings (index = position, no ids)."""
        return cls.build((Record(i, {}, "<items>"), item) for i, item in enumerate(items))

    @classmethod
    def build(cls, pairs: Iterable[tuple[Record, bytes]]) -> "Pool":
        _remove_orphans()
        workdir = tempfile.mkdtemp(prefix=f"entrosel-pool-{os.getpid()}-")
        path = os.path.join(workdir, "items.bin")
        offsets, index, ids = [0], [], []
        try:
            with open(path, "wb", buffering=1 << 20) as f:
                for record, item in pairs:
                    f.write(item)
                    offsets.append(offsets[-1] + len(item))
                    index.append(record.index)
                    ids.append(record.data.get("id"))
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        items = PoolItems(path, np.asarray(offsets, dtype=np.int64))
        return cls(items, np.asarray(index, dtype=np.int64), ids, workdir)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> bytes:
        if self._open is None:
            self._open = self.items.open()
        return self._open[i]

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(self.items.offsets)

    def close(self) -> None:
        self._open = None
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def load_pool(source: Source, options: InputOptions = InputOptions(),
              rejects: Rejects | None = None, progress: bool | None = None) -> Pool:
    """Read ``source`` (a path or dicts) and serialize every record into a :class:`Pool`."""
    rejects = rejects if rejects is not None else Rejects(options.on_error)
    records = iter_records(source, options.input_format, rejects)
    with Progress("reading", unit=" records", enabled=progress) as bar:
        def counted(pairs: Iterable[tuple[Record, bytes]]) -> Iterator[tuple[Record, bytes]]:
            for pair in pairs:
                bar.update()
                yield pair

        return Pool.build(counted(serialized_records(records, options.serialization, rejects)))


def pick_records(source: Source, indices: Iterable[int],
                 input_format: str | None = None) -> list[Record]:
    """The records at input ``indices``, in the order given (one streaming pass); bad records
    are passed over (the selector that chose the indices has read and reported them)."""
    order = list(indices)
    wanted = set(order)
    found: dict[int, Record] = {}
    for record in iter_records(source, input_format, Rejects("skip")):
        if record.index in wanted:
            found[record.index] = record
    return [found[i] for i in order]


def check_source(source: Any) -> Source:
    """``source`` if it can be a pool, else an :class:`InputError` saying what a pool is."""
    if isinstance(source, Mapping) or not isinstance(source, (str, os.PathLike, Iterable)):
        what = "one record (a dict); put it in a list" if isinstance(source, Mapping) else type(source).__name__
        raise InputError(f"a pool is a path, a list of dicts, a pandas DataFrame or a datasets.Dataset, "
                         f"not {what}")
    return source


def reusable(source: Source) -> Source:
    """``source`` as something that can be read more than once: a path, a sequence, a
    DataFrame or a Dataset as they are; any other iterable (a generator) read into a list."""
    check_source(source)
    if isinstance(source, (str, os.PathLike, Sequence)) or _is_dataframe(source) or _is_dataset(source):
        return source
    return list(source)


def subset_of(source: Any, indices: Sequence[int], input_format: str | None = None) -> Any:
    """The records at input ``indices`` (in that order) as the same kind of thing as
    ``source``: a DataFrame's rows (``iloc``, index labels kept), a ``Dataset.select``, a
    list; from a path, a list of dicts."""
    order = [int(i) for i in indices]
    if isinstance(source, RecordSet):
        return source.take(order)
    if _is_dataframe(source):
        return source.iloc[order]
    if _is_dataset(source):
        return source.select(order)
    if isinstance(source, Sequence) and not isinstance(source, (str, bytes)):
        return [source[i] for i in order]
    return [r.data for r in pick_records(source, order, input_format)]
