"""benchmarks/build_pool.py: the scale pool is the same bytes for a seed, with its copies planted."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from entrosel.formats.render import render_text

_SPEC = importlib.util.spec_from_file_location(
    "build_pool", Path(__file__).resolve().parents[1] / "benchmarks" / "build_pool.py")
build_pool = importlib.util.module_from_spec(_SPEC)
sys.modules["build_pool"] = build_pool
_SPEC.loader.exec_module(build_pool)


def test_same_seed_same_bytes_and_the_planted_copies(tmp_path):
    # pydoc_data ships with CPython: 198 real exchanges, so most of 2,000 are recombined
    a = build_pool.build(2000, tmp_path / "a.jsonl", seed=3, sources=["pydoc"])
    b = build_pool.build(2000, tmp_path / "b.jsonl", seed=3, sources=["pydoc"])
    c = build_pool.build(2000, tmp_path / "c.jsonl", seed=4, sources=["pydoc"])
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert a["sha256"] == b["sha256"] != c["sha256"]
    assert a["counts"] == {"real": 198, "mix": 1662, "exact_copy": 120, "near_copy": 20}
    records = [json.loads(line) for line in (tmp_path / "a.jsonl").open()]
    assert len(records) == 2000 and len({r["id"] for r in records}) == 2000
    seen: dict[str, int] = {}
    for pos, r in enumerate(records):
        text = render_text(r)
        if "-copy" in r["id"]:
            assert text in seen  # an exact copy repeats a record before it
        elif "-near" not in r["id"]:
            seen.setdefault(text, pos)
    near = [render_text(r) for r in records if "-near" in r["id"]]
    assert len(near) == 20 and not any(t in seen for t in near)
    assert json.loads((tmp_path / "a.jsonl.manifest.json").read_text())["licences"] == {
        "pydoc": "PSF-2.0 (CPython's pydoc_data)"}


def test_near_edit_keeps_most_word_trigrams():
    import numpy as np

    text = " ".join(f"w{i}" for i in range(400))
    edited = build_pool.near_edit(text, np.random.default_rng(0))
    grams = lambda t: {tuple(t.split()[i:i + 3]) for i in range(len(t.split()) - 2)}  # noqa: E731
    a, b = grams(text), grams(edited)
    assert edited != text and 0.7 < len(a & b) / len(a | b) < 0.97
