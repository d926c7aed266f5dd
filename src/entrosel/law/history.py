"""A history of data versions: one row per version with R, L, score and a content hash.

Stored as JSON (a list of rows) or CSV, chosen by the file's extension; columns:
``name, time, R, L, score, records, sha256``. ``L`` and ``score`` may be empty.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from entrosel.errors import InputError
from entrosel.io.atomic import atomic_path


@dataclass
class Version:
    name: str
    time: str
    R: float
    L: float | None
    score: float | None
    records: int
    sha256: str


def _number(value, path, name, column) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError(f"version {name!r}: {column} is not a number ({value!r})", path) from None


def load_history(path: str | Path) -> list[Version]:
    """The versions in ``path`` (an empty history when the file does not exist yet)."""
    p = Path(path)
    if not p.exists():
        return []
    text = p.read_text(encoding="utf-8")
    try:
        rows = list(csv.DictReader(io.StringIO(text))) if p.suffix.lower() == ".csv" else json.loads(text or "[]")
    except json.JSONDecodeError as e:
        raise InputError(f"history is not valid JSON: {e.msg}", p, e.lineno) from None
    if not isinstance(rows, list):
        raise InputError("history must be a JSON list of versions", p)
    out = []
    for row in rows:
        name = str(row.get("name", ""))
        try:
            out.append(Version(name=name, time=str(row.get("time", "")), R=float(row["R"]),
                               L=_number(row.get("L"), p, name, "L"),
                               score=_number(row.get("score"), p, name, "score"),
                               records=int(row.get("records") or 0), sha256=str(row.get("sha256", ""))))
        except (KeyError, TypeError, ValueError):
            raise InputError(f"version {name!r} has no valid R", p) from None
    return out


def save_history(path: str | Path, versions: list[Version]) -> None:
    p = Path(path)
    with atomic_path(p) as tmp:
        if p.suffix.lower() == ".csv":
            with open(tmp, "w", encoding="utf-8", newline="") as f:
                writer = csv.DictWriter(f, [fl.name for fl in fields(Version)])
                writer.writeheader()
                for v in versions:
                    writer.writerow({k: ("" if x is None else x) for k, x in asdict(v).items()})
        else:
            tmp.write_text(json.dumps([asdict(v) for v in versions], indent=1) + "\n", encoding="utf-8")
