"""Near-duplicate removal: entrosel beside text-dedup, datasketch and rensa used directly.

Same data and parameters for all (MinHash, 128 permutations, word 3-grams, Jaccard
threshold 0.7): real ShareGPT exchanges, cleaned first of every pair any method finds (so
the only true duplicates are the planted ones), then 500 near copies planted, each a copy of
a long record (>= 150 words) with 3 words replaced, at a random place after its original.
Each method runs in its own process; the table gives its wall time from reading the pool to
the decision (entrosel: to the written output), the process's peak RSS, and precision and
recall against the planted truth (the copy is the duplicate: it comes later), the share of
the distinct records kept, in how many planted pairs one of the two was removed, and in how
many the later record was kept instead of the first.

- entrosel: ``filter_dedup(pool, out, near=True, workers=1)`` (the CLI's code path).
- datasketch: shingles as text-dedup builds them (``\\W`` split, word 3-grams as byte
  strings), ``MinHash.update_batch`` (SHA-1 per shingle), ``MinHashLSH`` (its optimal
  bands), keep-first: a record whose query returns a candidate is a duplicate.
- rensa: the same shingles, ``RMinHash.update``, ``RMinHashDeduplicator`` with LSH
  (16 bands x 8 rows: rensa needs bands that divide num_perm).
- text-dedup 0.4.0: ``text_dedup.minhash`` on a HF dataset saved to disk, ``--ngram 3
  --num_perm 128 --threshold 0.7 --min_length 0 --num_proc 1``. Its defaults differ
  (``--ngram 5 --num_perm 250``, and ``--min_length 5`` silently drops every record of
  fewer than 5 tokens from the output), and its union-find keeps whichever root union by
  rank leaves, not the first record.

``--part exact`` plants 500 exact copies instead and counts what ``filter dedup`` removes.
``--part backends`` times signatures from the same bulk-hashed shingles: rensa's
``digest_matrix_from_flat_token_hashes`` against datasketch's ``MinHash.update_batch`` (the
choice behind entrosel's implementation).

    python benchmarks/bench_dedup.py                 # 3,500 and 35,000 records
    python benchmarks/bench_dedup.py --sizes 3500 --part compare
"""
from __future__ import annotations

import argparse
import functools
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import sharegpt_pool  # noqa: E402

from entrosel import render_text  # noqa: E402
from entrosel.io.readers import read_records  # noqa: E402
from entrosel.io.writers import write_records  # noqa: E402

THRESHOLD, NUM_PERM, NGRAM, PLANTED = 0.7, 128, 3, 500
METHODS = ("entrosel", "datasketch", "rensa", "text-dedup")
NON_ALPHA = re.compile(r"\W", re.UNICODE)


def texts_of(path: Path) -> list[str]:
    return [render_text(r.data) for r in read_records(path)]


def shingles(text: str) -> set[bytes]:
    """text-dedup's shingles: lower-cased, split on non-word characters, word n-grams."""
    words = NON_ALPHA.split(text.lower())
    if len(words) < NGRAM:
        return {" ".join(words).encode()}
    return {" ".join(words[i:i + NGRAM]).encode() for i in range(len(words) - NGRAM + 1)}


# ---- the methods, each in its own process -----------------------------------------------------

def run_entrosel(pool: Path, work: Path) -> list[int]:
    from entrosel.commands.filter import filter_dedup

    removed = work / "removed.jsonl"
    filter_dedup(pool, work / "out.jsonl", near=True, threshold=THRESHOLD, ngram=NGRAM,
                 num_perm=NUM_PERM, workers=1, removed_out=removed, progress=False)
    return [json.loads(line)["index"] for line in removed.read_text().splitlines()]


def run_datasketch(pool: Path, work: Path) -> list[int]:
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
    removed = []
    for i, text in enumerate(texts_of(pool)):
        m = MinHash(num_perm=NUM_PERM)
        m.update_batch(list(shingles(text)))
        if lsh.query(m):
            removed.append(i)
        else:
            lsh.insert(i, m)
    return removed


def run_rensa(pool: Path, work: Path) -> list[int]:
    from rensa import RMinHash, RMinHashDeduplicator

    dedup = RMinHashDeduplicator(threshold=THRESHOLD, num_perm=NUM_PERM, use_lsh=True, num_bands=16)
    removed = []
    for i, text in enumerate(texts_of(pool)):
        m = RMinHash(num_perm=NUM_PERM, seed=42)
        m.update(list(shingles(text)))  # rensa takes bytes tokens as they are
        if not dedup.add(str(i), m):
            removed.append(i)
    return removed


def run_text_dedup(pool: Path, work: Path) -> list[int]:
    import datasets
    from text_dedup import minhash

    datasets.disable_caching()  # no cache files from an earlier run to reuse
    saved = Path(f"{pool}.hf")  # made by the parent, outside the timed part
    minhash.main.main(["--path", str(saved), "--local", "--column", "text", "--output",
                       str(work / "out"), "--ngram", str(NGRAM), "--num_perm", str(NUM_PERM),
                       "--threshold", str(THRESHOLD), "--min_length", "0", "--num_proc", "1"],
                      standalone_mode=False)
    kept = set(datasets.load_from_disk(str(work / "out"))["row"])
    n = len(datasets.load_from_disk(str(saved)))
    return [i for i in range(n) if i not in kept]


RUNNERS = {"entrosel": run_entrosel, "datasketch": run_datasketch, "rensa": run_rensa,
           "text-dedup": run_text_dedup}


LIBRARIES = {"entrosel": ["entrosel.commands.filter", "rensa"], "datasketch": ["datasketch"],
             "rensa": ["rensa"], "text-dedup": ["datasets", "text_dedup.minhash"]}


def peak_rss() -> int:
    """This process's peak resident set (VmHWM; ru_maxrss would carry the parent's over exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def child(method: str, pool: Path, result: Path) -> None:
    import importlib

    for module in LIBRARIES[method]:  # imports are not timed
        importlib.import_module(module)
    with tempfile.TemporaryDirectory() as work:
        t0 = time.perf_counter()
        removed = RUNNERS[method](pool, Path(work))
        seconds = time.perf_counter() - t0
    peak = peak_rss()
    result.write_text(json.dumps({"removed": removed, "seconds": seconds, "peak_bytes": peak}))


def measure(method: str, pool: Path) -> dict:
    result = Path(f"{pool}.{method}.json")
    subprocess.run([sys.executable, __file__, "--child", method, str(pool), str(result)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.loads(result.read_text())


# ---- the data ---------------------------------------------------------------------------------

def save_hf(pool: Path) -> None:
    import datasets

    texts = texts_of(pool)
    datasets.Dataset.from_dict({"text": texts, "row": list(range(len(texts)))}).save_to_disk(f"{pool}.hf")


@functools.cache
def clean_base(folder: Path, size: int) -> list[dict]:
    """``size`` real records of which no method finds a duplicate pair."""
    raw = [r.data for r in read_records(sharegpt_pool(folder))][: int(size * 1.3) + 100]
    path = folder / f"raw-{len(raw)}.jsonl"
    write_records(raw, path)
    save_hf(path)
    flagged = set()
    for method in METHODS:
        flagged |= set(measure(method, path)["removed"])
    base = [r for i, r in enumerate(raw) if i not in flagged]
    if len(base) < size:
        raise SystemExit(f"only {len(base)} clean records; raise the raw size")
    return base[:size]


def replace_words(text: str, k: int, rng: random.Random) -> str:
    words = text.split(" ")
    for i in rng.sample(range(len(words)), k):
        words[i] = f"zq{rng.randrange(10 ** 6)}"
    return " ".join(words)


def plant(base: list[dict], rng: random.Random) -> tuple[list[dict], list[tuple[int, int]]]:
    """The base with near copies inserted after their originals; (original, copy) positions."""
    long = [i for i, r in enumerate(base) if len(r["conversations"][-1]["value"].split(" ")) >= 150]
    items = [(r, None) for r in base]
    for i in rng.sample(long, PLANTED):
        copy = json.loads(json.dumps(base[i]))
        copy["conversations"][-1]["value"] = replace_words(copy["conversations"][-1]["value"], 3, rng)
        items.append((copy, i))
    # a copy goes at a random place after its original: shuffle copies in by sort keys
    keys = {id(r): float(p) for p, (r, _) in enumerate(items[:len(base)])}
    for r, original in items[len(base):]:
        keys[id(r)] = rng.uniform(original + 0.01, len(base))
    items.sort(key=lambda item: keys[id(item[0])])
    position = {id(r): p for p, (r, _) in enumerate(items)}
    pairs = [(position[id(base[o])], position[id(r)]) for r, o in items if o is not None]
    return [r for r, _ in items], pairs


def exact(folder: Path, size: int) -> None:
    """500 planted exact copies: ``filter dedup`` must remove exactly them."""
    from entrosel.commands.filter import filter_dedup

    base = clean_base(folder, size - PLANTED)
    rng = random.Random(size)
    items = [(r, False) for r in base]
    for i in rng.sample(range(len(base)), PLANTED):
        items.insert(rng.randrange(next(p for p, (r, _) in enumerate(items) if r is base[i]) + 1,
                                   len(items) + 1), (dict(base[i]), True))
    pool = folder / f"exact-{size}.jsonl"
    write_records([r for r, _ in items], pool)
    removed_out = folder / f"exact-{size}.removed.jsonl"
    s = filter_dedup(pool, folder / f"exact-{size}.out.jsonl", removed_out=removed_out, progress=False)
    removed = {json.loads(line)["index"] for line in removed_out.read_text().splitlines()}
    planted = {p for p, (_, copy) in enumerate(items) if copy}
    print("| records | planted exact copies | removed | of them planted | time (s) |")
    print("|---|---|---|---|---|")
    print(f"| {len(items):,} | {len(planted)} | {len(removed)} | {len(removed & planted)} | {s.seconds:.2f} |")


def compare(folder: Path, sizes: list[int]) -> None:
    print("| records | method | time (s) | peak RSS (MB) | removed | precision | recall | "
          "distinct kept | pairs found | pairs where the later was kept |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for size in sizes:
        base = clean_base(folder, size - PLANTED)
        records, pairs = plant(base, random.Random(size))
        pool = folder / f"planted-{size}.jsonl"
        write_records(records, pool)
        save_hf(pool)
        copies = {c for _, c in pairs}
        for method in METHODS:
            r = measure(method, pool)
            removed = set(r["removed"])
            hit = len(removed & copies)
            distinct = len(records) - len(copies)
            later = sum(1 for o, c in pairs if o in removed and c not in removed)
            found = sum(1 for o, c in pairs if (o in removed) != (c in removed))
            print(f"| {len(records):,} | {method} | {r['seconds']:.2f} | {r['peak_bytes'] / 1e6:,.0f} | "
                  f"{len(removed):,} | {hit / max(1, len(removed)):.3f} | {hit / len(copies):.3f} | "
                  f"{(distinct - len(removed - copies)) / distinct:.4f} | {found} | {later} |", flush=True)


def backends(folder: Path, size: int) -> None:
    import itertools

    import numpy as np
    from datasketch import MinHash
    from rensa import RMinHash

    from entrosel.filters.minhash import shingle_hashes

    from entrosel.filters.dedup import _CHUNK_BYTES

    texts = texts_of(sharegpt_pool(folder))[:size]
    chunks, chunk, held = [], [], 0
    for text in texts:  # the chunks filter dedup hashes at a time
        chunk.append(text)
        held += len(text)
        if held >= _CHUNK_BYTES:
            chunks.append(chunk)
            chunk, held = [], 0
    chunks.append(chunk)
    t0 = time.perf_counter()
    hashed = [shingle_hashes(c, NGRAM) for c in chunks]
    t_hash = time.perf_counter() - t0
    t0 = time.perf_counter()
    for hashes, offsets in hashed:
        matrix = RMinHash.digest_matrix_from_flat_token_hashes(hashes, offsets, NUM_PERM, 0)
        np.fromiter(itertools.chain.from_iterable(matrix.to_rows()), dtype=np.uint32,
                    count=(len(offsets) - 1) * NUM_PERM)
    t_rensa = time.perf_counter() - t0
    t0 = time.perf_counter()
    for hashes, offsets in hashed:
        for i in range(len(offsets) - 1):
            m = MinHash(num_perm=NUM_PERM, hashfunc=int, scheme="affine64")
            row = hashes[offsets[i]:offsets[i + 1]]
            if len(row):
                m.update_batch(row)
    t_ds = time.perf_counter() - t0
    shingles_total = sum(len(h) for h, _ in hashed)
    print(f"| records | shingles | NumPy shingle hashing (s) | rensa signatures (s) | datasketch signatures (s) |")
    print("|---|---|---|---|---|")
    print(f"| {size:,} | {shingles_total:,} | {t_hash:.2f} | {t_rensa:.2f} | {t_ds:.2f} |")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--part", choices=("exact", "compare", "backends", "all"), default="all")
    ap.add_argument("--sizes", type=int, nargs="+", default=[3_500, 35_000])
    ap.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "entrosel-bench")
    a = ap.parse_args()
    a.data.mkdir(parents=True, exist_ok=True)
    if a.part in ("exact", "all"):
        exact(a.data, min(a.sizes))
        print()
    if a.part in ("backends", "all"):
        backends(a.data, max(a.sizes))
        print()
    if a.part in ("compare", "all"):
        compare(a.data, a.sizes)


if __name__ == "__main__":
    main()
