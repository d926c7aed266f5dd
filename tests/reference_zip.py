"""A slow, obviously correct ZIP: every ratio recompresses the whole serialized string.

Written straight from shared/ALGORITHMS.md section 2 with ``str(list_of_records)`` (repr)
or the text rendering, Python sorts with (score, index) keys for the tie rule, and no
incremental state at all. entrosel's fast selector must agree with it exactly.
"""
from __future__ import annotations

import zlib

from entrosel.formats.render import render_text


def serialize(records: list[dict], how: str) -> bytes:
    if how == "repr":
        return str(records).encode("utf-8")
    return "\n\n".join(render_text(r) for r in records).encode("utf-8")


def ratio(records: list[dict], how: str, level: int = 9) -> float:
    s = serialize(records, how)
    return len(s) / len(zlib.compress(s, level))


def reference_zip(records: list[dict], budget: int, k1: int, k2: int, k3: int,
                  how: str = "repr", level: int = 9) -> list[int]:
    def r(indices: list[int]) -> float:
        return ratio([records[i] for i in indices], how, level)

    scores = [r([i]) for i in range(len(records))]
    live = set(range(len(records)))
    selected: list[int] = []
    while len(selected) < budget and live:
        candidates = sorted(live, key=lambda i: (scores[i], i))[:k1]
        for i in candidates:
            scores[i] = r(selected + [i])
        batch = sorted(candidates, key=lambda i: (scores[i], i))[:k2]
        live -= set(batch)
        picked: list[int] = []
        while len(picked) < min(k3, len(batch)) and len(selected) + len(picked) < budget:
            rest = [i for i in batch if i not in picked]
            picked.append(min(rest, key=lambda i: (r(picked + [i]), i)))
        selected += picked
    return selected
