"""Helpers shared by the benchmark scripts: the real pool on disk and memory sampling."""
from __future__ import annotations

import itertools
import os
import threading
import time
from pathlib import Path

from entrosel.io.sharegpt import sharegpt_records
from entrosel.io.writers import write_records


def sharegpt_pool(folder: Path, split: str = "exchanges", limit: int | None = None) -> Path:
    """Write (once) the ShareGPT pool to ``folder`` as JSONL and return its path."""
    path = folder / f"sharegpt-{split}-{limit or 'all'}.jsonl"
    if not path.exists():
        records = sharegpt_records(split)
        write_records(itertools.islice(records, limit) if limit else records, path)
    return path


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (workers' own workers too)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class PeakMemory:
    """Peak of the summed PSS of this process and its children (shared pages counted once)."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            pids = process_tree(me)
            self.peak_bytes = max(self.peak_bytes, 1024 * sum(pss_kib(p) for p in pids))
            time.sleep(self.interval)

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
