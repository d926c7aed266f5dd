"""The entropy-law report, opened in a real (headless) browser."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

pytest.importorskip("matplotlib")

from entrosel.law.history import Version  # noqa: E402
from entrosel.report.law import write_report  # noqa: E402

VERSIONS = [Version("v1", "2026-11-01", 3.50, 2.10, 0.61, 300, "a"),
            Version("v2", "2026-11-02", 3.62, 2.05, 0.60, 300, "b"),
            Version("v3", "2026-11-03", 3.40, 2.20, 0.63, 300, "c"),
            Version("v4-dup", "2026-11-04", 6.90, 1.40, None, 300, "d")]

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("Debian's chromium is not installed; scripts/test.sh installs it")
    return path


def test_markdown_report_with_png_files(tmp_path):
    out = write_report(VERSIONS, tmp_path / "report.md")
    text = out.read_text()
    assert "| v4-dup |" in text and "R rose" in text
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == ["report-score_vs_L.png", "report-score_vs_R.png", "report-trend.png"]
    assert all((tmp_path / p).read_bytes().startswith(b"\x89PNG") for p in pngs)
    assert all(f"]({p})" in text for p in pngs)


def test_html_report_renders_its_plots_in_chromium(tmp_path):
    out = write_report(VERSIONS, tmp_path / "report.html")
    assert len(re.findall(r"data:image/png;base64,", out.read_text())) == 3
    browser = _chromium()
    profile = tmp_path / "profile"
    dom = subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom",
                          out.as_uri()], capture_output=True, text=True, timeout=120)
    assert 'data-images="rendered"' in dom.stdout, dom.stderr[-2000:]
    shot = tmp_path / "shot.png"
    subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={shot}",
                    "--window-size=1200,1400", out.as_uri()], capture_output=True, timeout=120)
    import matplotlib.image as mpimg
    pixels = mpimg.imread(shot)
    # text and table are greyscale: the coloured pixels are the plots' lines and markers
    rgb = pixels[..., :3]
    coloured = ((rgb.max(axis=-1) - rgb.min(axis=-1)) > 0.2).mean()
    assert coloured > 0.001, coloured
