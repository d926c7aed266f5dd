"""Compression ratios: ``len(S) / len(compress(S))``; higher means more redundant."""
from __future__ import annotations

import lzma
import zlib
from dataclasses import dataclass
from typing import Sequence

from entrosel.errors import InputError

COMPRESSORS = ("zlib", "zstd", "lzma")
DEFAULT_LEVEL = 9  # the paper's and ZIP.py's zlib level
# zstd 1: the fastest match finder; long-memory ZIP's reach (16 MiB) is that of level 3 and
# it picked fewer copies on the planted-copy pool (docs/zip.md), 15% faster at the paper's setting
DEFAULT_LEVELS = {"zlib": DEFAULT_LEVEL, "zstd": 1, "lzma": DEFAULT_LEVEL}
LEVEL_HELP = "compression level (default: 9 for zlib and lzma, the paper's; 1 for zstd)"
COMPRESSOR_HELP = ("zlib (default, the paper's), zstd (in select zip: long-memory ZIP, which "
                   "remembers the whole selection; docs/zip.md) or lzma")
SERIALIZE_HELP = ("text: rendered text of each record, joined by a blank line (default); "
                  "repr: str(list_of_records) as the official ZIP.py")


@dataclass(frozen=True)
class Compressor:
    """A named compressor at a level (``None``: the compressor's default, ``DEFAULT_LEVELS``).
    ``compressed_size`` is the one-shot output length (``zlib.compress``,
    ``zstandard.ZstdCompressor(level).compress``, ``lzma.compress``); ``stream`` gives an
    object with ``compress``/``flush`` for data too large to hold."""

    name: str = "zlib"
    level: int | None = None

    def __post_init__(self) -> None:
        limits = {"zlib": (0, 9), "zstd": (1, 22), "lzma": (0, 9)}
        if self.name not in limits:
            raise InputError(f"unknown compressor {self.name!r}; choose one of {', '.join(COMPRESSORS)}")
        if self.level is None:
            object.__setattr__(self, "level", DEFAULT_LEVELS[self.name])
        lo, hi = limits[self.name]
        if not lo <= self.level <= hi:
            raise InputError(f"--level for {self.name} must be in {lo}..{hi}, not {self.level}")
        if self.name == "zstd":
            zstd_module()

    def compressed_size(self, data: bytes) -> int:
        if self.name == "zlib":
            return len(zlib.compress(data, self.level))
        if self.name == "zstd":
            return len(zstd_module().ZstdCompressor(level=self.level).compress(data))
        return len(lzma.compress(data, preset=self.level))

    def stream(self):
        if self.name == "zlib":
            return zlib.compressobj(self.level)
        if self.name == "zstd":
            return zstd_module().ZstdCompressor(level=self.level).compressobj()
        return lzma.LZMACompressor(preset=self.level)


def zstd_module():
    try:
        import zstandard
    except ImportError:
        raise InputError("--compressor zstd needs the zstandard package: "
                         "pip install 'entrosel[zstd]'") from None
    return zstandard


def compression_ratio(data: bytes | str, level: int | None = None, compressor: str = "zlib") -> float:
    """``len(data) / len(compress(data, level))`` over UTF-8 bytes (0.0 for empty data)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return ratio(len(data), Compressor(compressor, level).compressed_size(data))


def ratio(n_bytes: int, n_compressed: int) -> float:
    return n_bytes / n_compressed if n_bytes else 0.0


def compressed_sizes(items: Sequence[bytes], compressor: Compressor) -> list[int]:
    """Compressed length of each item (a unit of work for the engines)."""
    size = compressor.compressed_size
    return [size(x) for x in items]


class StreamMeasure:
    """Compressed size of one long byte string fed in pieces. For zlib and lzma the total
    equals the one-shot ``compress`` of the whole string (deflate's output does not
    depend on how its input is chunked)."""

    def __init__(self, compressor: Compressor) -> None:
        self._stream = compressor.stream()
        self.bytes = 0
        self.compressed_bytes = 0

    def feed(self, data: bytes) -> None:
        self.bytes += len(data)
        self.compressed_bytes += len(self._stream.compress(data))

    def finish(self) -> float:
        self.compressed_bytes += len(self._stream.flush())
        return ratio(self.bytes, self.compressed_bytes)
