"""docs/integrations.md's Data-Juicer example run by the real Data-Juicer: the config loads
entrosel's operator through custom_operator_paths and keeps what the command line keeps."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from .doc_blocks import python_blocks
from .integrations_common import DOC, cli_ids, jsonl_ids, pool_records, write_pool

pytest.importorskip("data_juicer")
datasets = pytest.importorskip("datasets")


def test_the_pages_config_keeps_what_the_cli_keeps(tmp_path):
    """The page's block runs in a process of its own: Data-Juicer's executor takes over
    sys.stdout, sys.stderr and loguru's handlers for its log files."""
    pool = write_pool(tmp_path)
    (tmp_path / "cli").mkdir()
    expected = cli_ids(pool, tmp_path / "cli", clean=False)
    [code] = [b for b in python_blocks(DOC) if "entrosel.integrations.data_juicer" in b]
    env = {**os.environ, "HF_DATASETS_CACHE": str(tmp_path / "hf-cache")}
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    out = tmp_path / "dj-out" / "picked.jsonl"
    assert jsonl_ids(out) == expected
    rows = {r["id"]: r for r in pool_records()}
    for line in out.read_text().splitlines():  # every field kept, as it was
        row = json.loads(line)
        assert {k: row[k] for k in ("id", "text", "source")} == rows[row["id"]]


def test_the_generic_operator_takes_any_selector_by_name(tmp_path):
    from data_juicer.core.data import NestedDataset

    from entrosel.integrations.data_juicer import EntroselSelector, EntroselZipSelector

    rows = pool_records()
    ds = NestedDataset(datasets.Dataset.from_list(rows))
    zip_ids = EntroselZipSelector(budget=5).process(ds)["id"]
    assert list(EntroselSelector(method="zip", params={"budget": 5}).process(ds)["id"]) == list(zip_ids)
    randomly = EntroselSelector(method="random", params={"budget": 4, "seed": 1}).process(ds)
    assert len(randomly) == 4 and set(randomly.column_names) == {"id", "text", "source"}
    with pytest.raises(Exception, match="budget"):
        EntroselZipSelector(budget=0)
