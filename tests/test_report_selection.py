"""``entrosel report``: what a selection holds, opened in a real (headless) browser."""
from __future__ import annotations

import html
import json
import random
import re
import subprocess

import pytest

pytest.importorskip("matplotlib")

from entrosel.cli import main  # noqa: E402
from entrosel.report.selection import selection_report  # noqa: E402
from tests.conftest import write_jsonl  # noqa: E402
from tests.test_report import CHROMIUM_FLAGS, _chromium  # noqa: E402


@pytest.fixture
def selection(tmp_path, real_exchanges):
    """A pool of real exchanges with a source field, a subset with one record twice, scores."""
    pool = [dict(r, source=["web", "code", "chat"][i % 3 if i % 5 else 0]) for i, r in enumerate(real_exchanges[:200])]
    subset = random.Random(0).sample(pool, 60) + [pool[3]]
    pool_path = write_jsonl(tmp_path / "pool.jsonl", pool)
    subset_path = write_jsonl(tmp_path / "subset.jsonl", subset)
    scores = write_jsonl(tmp_path / "scores.jsonl", [{"index": i, "id": r["id"], "length": len(json.dumps(r)),
                                                       "flag": i % 2 == 0} for i, r in enumerate(pool)])
    return tmp_path, subset_path, pool_path, scores, subset


def test_html_report_renders_its_plots_in_chromium(selection):
    tmp_path, subset, pool, scores, records = selection
    out = selection_report(subset, tmp_path / "report.html", pool=pool, scores=scores, by="source")
    page = out.read_text()
    # lengths, compression, per-record ratios, composition, one score column ("flag" is
    # boolean: not a score)
    assert len(re.findall(r"data:image/png;base64,", page)) == 5
    assert "<figcaption>score_length</figcaption>" in page and "score_flag" not in page
    assert "<td>mean length</td>" in page
    duplicates = re.search(r"<td>exact duplicates \(records\)</td><td>(\d+)</td><td>(\d+)</td>", page)
    assert duplicates.groups() == ("1", "0")
    assert re.search(r"<td>records</td><td>61</td><td>200</td>", page)
    assert html.escape(records[0]["conversations"][0]["value"][:40]) in page  # the first record
    browser = _chromium()
    profile = tmp_path / "profile"
    dom = subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", out.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert 'data-images="rendered"' in dom.stdout, dom.stderr[-2000:]
    shot = tmp_path / "shot.png"
    subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={shot}",
                    "--window-size=1200,1600", out.as_uri()], capture_output=True, timeout=120)
    import matplotlib.image as mpimg
    rgb = mpimg.imread(shot)[..., :3]
    # text and tables are greyscale: coloured pixels are the plots' bars
    coloured = ((rgb.max(axis=-1) - rgb.min(axis=-1)) > 0.2).mean()
    assert coloured > 0.01, coloured


def test_markdown_report_with_png_files_and_the_cli(selection, capsys):
    tmp_path, subset, pool, scores, _ = selection
    assert main(["report", str(subset), "-o", str(tmp_path / "r.md")]) == 0
    assert "entrosel report: " in capsys.readouterr().err
    text = (tmp_path / "r.md").read_text()
    pngs = sorted(p.name for p in tmp_path.glob("r-*.png"))
    # no pool, no --by, no scores: still three plots
    assert pngs == ["r-compression.png", "r-lengths.png", "r-record_ratios.png"]
    assert all((tmp_path / p).read_bytes().startswith(b"\x89PNG") and f"]({p})" in text for p in pngs)
    assert "| records | 61 |" in text and "## median record" in text


def test_subset_against_pool_has_three_plots_without_options(selection):
    tmp_path, subset, pool, _, _ = selection
    text = selection_report(subset, tmp_path / "p.md", pool=pool).read_text()
    assert sorted(p.name for p in tmp_path.glob("p-*.png")) == [
        "p-compression.png", "p-lengths.png", "p-record_ratios.png"]
    assert "](p-record_ratios.png)" in text


@pytest.mark.parametrize("case", ["not-in-pool", "score-rows", "suffix", "missing"])
def test_bad_input_exits_2_and_writes_nothing(selection, capsys, case):
    tmp_path, subset, pool, scores, records = selection
    args = [str(subset), "--pool", str(pool)]
    out = tmp_path / "bad.html"
    if case == "not-in-pool":
        write_jsonl(subset, records + [{"text": "a record the pool never had"}])
        expected = r"subset\.jsonl: 1 of its 62 records are not in the pool"
        args += ["--scores", str(scores)]
    elif case == "score-rows":
        write_jsonl(scores, [{"index": 0, "s": 1.0}])
        args += ["--scores", str(scores)]
        expected = r"scores\.jsonl: holds 1 score rows for 200 records"
    elif case == "suffix":
        out = tmp_path / "bad.pdf"
        expected = r"bad\.pdf: the report \(-o\) is \.html or \.md"
    else:
        args[0] = str(tmp_path / "nope.jsonl")
        expected = r"nope\.jsonl: no such file"
    assert main(["report", *args, "-o", str(out)]) == 2
    assert re.search(expected, capsys.readouterr().err)
    assert not out.exists() and not list(tmp_path.glob("bad*"))
