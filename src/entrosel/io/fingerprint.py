"""Whether a file or folder is still the one a finished piece of work read.

:func:`content_sha256` hashes every byte (a recipe's step markers: exact, once per step).
:func:`path_fingerprint` is cheap enough to take for every shard of a large pool: per file,
its name, size and modification time plus a hash of sampled blocks (the first and last
MiB and eight blocks of 64 KiB between them). An input rewritten in place gets a new
modification time, and a copy that kept the old time (``cp -p``, ``rsync -t``) still
differs in size or in the sampled bytes unless it changed only between them.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

_EDGE = 1 << 20
_SAMPLES = 8
_SAMPLE = 64 << 10


def _sampled_sha256(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        if size <= 2 * _EDGE + _SAMPLES * _SAMPLE:
            digest.update(f.read())
            return digest.hexdigest()
        digest.update(f.read(_EDGE))
        step = (size - 2 * _EDGE) // (_SAMPLES + 1)
        for k in range(1, _SAMPLES + 1):
            f.seek(_EDGE + k * step)
            digest.update(f.read(_SAMPLE))
        f.seek(size - _EDGE)
        digest.update(f.read(_EDGE))
    return digest.hexdigest()


def path_fingerprint(path: str | Path) -> dict[str, Any] | None:
    """Size, modification time and sampled hash of a file, or of every file under a folder
    (by relative name); ``None`` when nothing is at ``path`` (e.g. a hub model name)."""
    p = Path(path)
    if not p.exists():
        return None
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    out = {}
    for f in files:
        stat = f.stat()
        name = str(f.relative_to(p)) if p.is_dir() else p.name
        out[name] = [stat.st_size, stat.st_mtime_ns, _sampled_sha256(f, stat.st_size)]
    return out


def content_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, or of a folder's relative paths and file bytes."""
    p = Path(path)
    digest = hashlib.sha256()
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    for f in files:
        if p.is_dir():
            digest.update(str(f.relative_to(p)).encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
