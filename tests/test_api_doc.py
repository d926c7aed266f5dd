"""docs/api.md: its example runs as it stands, and its tables name every public name."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import entrosel

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def test_the_example_runs(tmp_path, monkeypatch):
    pytest.importorskip("pandas")
    [code] = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, DOC.name, "exec"), {"__name__": "api_example"})
    assert (tmp_path / "scores.jsonl").exists()


def test_every_public_name_is_on_the_page():
    named = set(re.findall(r"`([A-Za-z_]+)", DOC.read_text()))
    missing = [n for n in entrosel.__all__ if n not in named]
    assert not missing, f"docs/api.md does not show: {missing}"
