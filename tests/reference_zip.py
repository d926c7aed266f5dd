"""A slow, obviously correct ZIP: every ratio recompresses the whole serialized string.

Written straight from docs/algorithms.md section 2 with ``str(list_of_records)`` (repr)
or the text rendering, Python sorts with (score, index) keys for the tie rule, and no
incremental state at all; zlib at any level, or lzma at any preset. entrosel's fast
selector must agree with it exactly.
"""
from __future__ import annotations

import lzma
import zlib

from entrosel.formats.render import render_text


def serialize(records: list[dict], how: str) -> bytes:
    if how == "repr":
        return str(records).encode("utf-8")
    return "\n\n".join(render_text(r) for r in records).encode("utf-8")


def compress(data: bytes, level: int = 9, compressor: str = "zlib") -> bytes:
    """One-shot compression of the whole string: zlib at ``level``, or lzma at preset ``level``
    (the recompress semantics: no state kept between calls, nothing conditional)."""
    if compressor == "zlib":
        return zlib.compress(data, level)
    if compressor == "lzma":
        return lzma.compress(data, preset=level)
    raise ValueError(f"the reference knows zlib and lzma, not {compressor!r}")


def ratio(records: list[dict], how: str, level: int = 9, compressor: str = "zlib") -> float:
    s = serialize(records, how)
    return len(s) / len(compress(s, level, compressor))


def reference_zip(records: list[dict], budget: int, k1: int, k2: int, k3: int,
                  how: str = "repr", level: int = 9, compressor: str = "zlib") -> list[int]:
    def r(indices: list[int]) -> float:
        return ratio([records[i] for i in indices], how, level, compressor)

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


def pick_ratios(records: list[dict], selected: list[int], rounds: list[int], how: str,
                level: int = 9, compressor: str = "zlib") -> tuple[list[float], list[float]]:
    """Per pick of a selection (with the round of each pick), the two ratios ZIP scored it
    by: stage 2, against everything selected in earlier rounds; stage 3, against the picks
    made before it in its own round. Recomputed from scratch with :func:`ratio`."""
    stage2, stage3 = [], []
    for k, (pick, round_) in enumerate(zip(selected, rounds)):
        before = [records[i] for i, r in zip(selected, rounds) if r < round_]
        same_round = [records[i] for i, r in zip(selected[:k], rounds[:k]) if r == round_]
        stage2.append(ratio(before + [records[pick]], how, level, compressor))
        stage3.append(ratio(same_round + [records[pick]], how, level, compressor))
    return stage2, stage3
