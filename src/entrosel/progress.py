"""A small progress bar on stderr (the core has no dependencies beyond NumPy).

It appears only on a terminal and only once a task has run for a second, redraws at most
five times a second, and leaves the line clean for the summary.
"""
from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, description: str, total: float | None = None, unit: str = "",
                 enabled: bool | None = None, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.description = description
        self.total = total
        self.unit = unit
        self.done = 0.0
        self.postfix = ""
        self._start = time.monotonic()
        self._last_draw = 0.0
        self._drawn = False

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: float = 1, postfix: str | None = None) -> None:
        self.done += n
        if postfix is not None:
            self.postfix = postfix
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._start < 1.0 or now - self._last_draw < 0.2:
            return
        self._last_draw = now
        self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = now - self._start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        if self.total:
            frac = min(self.done / self.total, 1.0)
            filled = int(frac * 24)
            eta = (self.total - self.done) / rate if rate > 0 else 0.0
            line = (f"{self.description} |{'#' * filled}{'.' * (24 - filled)}| "
                    f"{self.done:,.0f}/{self.total:,.0f}{self.unit} {frac:4.0%} "
                    f"[{_clock(elapsed)}<{_clock(eta)}]")
        else:
            line = f"{self.description} {self.done:,.0f}{self.unit} [{_clock(elapsed)}, {rate:,.0f}{self.unit}/s]"
        if self.postfix:
            line += f" {self.postfix}"
        self.stream.write("\r" + line[:160] + "\x1b[K")
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._start


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
