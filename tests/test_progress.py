"""The progress bar: silent for short work and off a terminal, clean when it ends."""
from __future__ import annotations

import io

from entrosel.progress import Progress


def test_draws_after_a_second_and_clears_the_line():
    out = io.StringIO()
    bar = Progress("scoring", total=10, enabled=True, stream=out)
    bar.update(1)
    assert out.getvalue() == ""  # under a second: nothing drawn
    bar._start -= 2.0
    bar.update(4, postfix="round 3")
    drawn = out.getvalue()
    assert drawn.startswith("\rscoring |") and "5/10" in drawn and "50%" in drawn and "round 3" in drawn
    bar.close()
    assert out.getvalue().endswith("\r\x1b[K")


def test_disabled_when_not_a_terminal():
    out = io.StringIO()  # isatty() is False
    bar = Progress("scoring", stream=out)
    bar._start -= 5.0
    bar.update(3)
    bar.close()
    assert out.getvalue() == "" and bar.done == 3
