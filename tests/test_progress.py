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


def test_a_recipes_filter_and_read_show_an_eta(tmp_path, monkeypatch):
    """A filter over records held in memory knows their count, and reading a JSONL file in place
    knows its size: both bars show the time left."""
    from entrosel import LengthFilter
    from entrosel.pool import RecordSet
    from tests.conftest import write_jsonl

    drawn = []

    class Seen(Progress):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "enabled": True, "stream": io.StringIO()})
            self._start -= 5.0  # as if it had run for a while
            drawn.append(self)

    monkeypatch.setattr("entrosel.filters.base.Progress", Seen)
    monkeypatch.setattr("entrosel.pool.Progress", Seen)
    pool = write_jsonl(tmp_path / "pool.jsonl", [{"text": "word " * (i + 1)} for i in range(40)])
    records = RecordSet.read(pool)
    LengthFilter(min_chars=10).fit(records)
    assert [b.description for b in drawn] == ["reading", "filter length"]
    assert all("<" in b.stream.getvalue() for b in drawn)  # [elapsed<left]
    assert drawn[0].total == pool.stat().st_size and drawn[1].total == 40
