"""docs/integrations.md's Hugging Face example, the `datasets` helpers, and hf:// inputs on
the command line."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from entrosel import Dedup, LengthFilter, ZipSelector
from entrosel.pool import InputOptions

from .doc_blocks import run_blocks
from .integrations_common import DOC, cli_ids, pool_records, write_pool

datasets = pytest.importorskip("datasets")
hf = pytest.importorskip("entrosel.integrations.hf")


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """The page's pool in a fresh folder that is the working directory, with a `datasets`
    cache of its own."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    pool = write_pool(tmp_path)
    monkeypatch.chdir(tmp_path)
    return pool


def test_the_pages_example_keeps_what_the_cli_keeps(in_tmp, tmp_path, capsys):
    expected = cli_ids(in_tmp, tmp_path)
    capsys.readouterr()
    with run_blocks(DOC, "integrations_hf", containing="entrosel.integrations.hf") as ns:
        picked = ns["picked"]
    assert list(picked["id"]) == expected
    assert picked.column_names == ["id", "text", "source"]  # every column
    assert capsys.readouterr().out.strip() == str(expected)


def test_filter_and_select_keep_every_column_and_the_cli_order():
    rows = pool_records()
    ds = datasets.Dataset.from_list(rows)
    long = hf.filter_dataset(ds, LengthFilter(min_chars=40))
    assert list(long["id"]) == [r["id"] for r in rows if len(r["text"]) >= 40]
    assert long[0] == next(r for r in rows if len(r["text"]) >= 40)  # the row as it was
    deduped = hf.filter_dataset(long, Dedup())
    copies = {"copy5", "copy17", "copy30"} & set(long["id"])
    assert copies and set(long["id"]) - set(deduped["id"]) == copies
    selector = ZipSelector(budget=5)
    picked = hf.select_dataset(deduped, selector)
    assert list(picked["id"]) == [deduped[i]["id"] for i in selector.selected_]
    # the text taken from another field, as --text-field does
    renamed = ds.rename_column("text", "body")
    assert hf.filter_dataset(renamed, LengthFilter(min_chars=40),
                             InputOptions(text_field="body"))["id"][:] == long["id"][:]
    with pytest.raises(TypeError, match="DatasetDict"):
        hf.select_dataset(datasets.DatasetDict({"train": ds}), selector)


def test_cli_offline_hub_name_missing_exits_2_with_one_line(tmp_path):
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_DATASETS_CACHE": str(tmp_path / "cache")}
    run = subprocess.run([sys.executable, "-m", "entrosel", "measure", "hf://datasets/tiny-org/absent:train"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 2, run.stderr
    assert run.stdout == ""
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "entrosel: error: hf://datasets/tiny-org/absent:train: cannot load this data set: offline"), lines
    assert "HF_DATASETS_CACHE" in lines[0]
