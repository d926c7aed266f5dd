"""The entropy-law report of a version history: plots as PNG, in HTML or Markdown.

Plots: R and L across versions (in history order); the score Z against R and against L
with the least-squares fit Z = a + b*R + c*L drawn at the other variable's mean; and the
flags of every version judged against the ones before it.
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

from entrosel.errors import InputError
from entrosel.io.atomic import atomic_path
from entrosel.law.check import Verdict, check_version
from entrosel.law.history import Version


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("law report needs matplotlib: pip install 'entrosel[report]'") from None
    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


def figures(versions: list[Version], verdicts: list[Verdict]) -> dict[str, bytes]:
    """PNG bytes by name: ``trend`` always, ``score_vs_R`` and ``score_vs_L`` when scores exist."""
    plt = _pyplot()
    names = [v.name for v in versions]
    x = np.arange(len(versions))
    risky = [i for i, v in enumerate(verdicts) if v.risky]
    out: dict[str, bytes] = {}

    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.plot(x, [v.R for v in versions], "o-", color="tab:blue", label="R (compression ratio)")
    ax.scatter(risky, [versions[i].R for i in risky], s=160, facecolors="none", edgecolors="red",
               label="flagged", zorder=3)
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylabel("R")
    if any(v.L is not None for v in versions):
        ax2 = ax.twinx()
        ax2.plot(x, [np.nan if v.L is None else v.L for v in versions], "s--", color="tab:orange",
                 label="L (first-epoch loss)")
        ax2.set_ylabel("L")
        ax2.legend(loc="upper right")
    ax.legend(loc="upper left")
    ax.set_title("R and L across data versions")
    out["trend"] = _png(fig)

    scored = [v for v in versions if v.score is not None]
    fit = next((vd.fit for vd in reversed(verdicts) if vd.fit is not None), None)
    for var in ("R", "L"):
        points = [v for v in scored if getattr(v, var) is not None]
        if not points:
            continue
        fig, ax = plt.subplots(figsize=(4.6, 3.6))
        xs = np.array([getattr(v, var) for v in points])
        ax.scatter(xs, [v.score for v in points], color="tab:green")
        for v in points:
            ax.annotate(v.name, (getattr(v, var), v.score), fontsize=8, xytext=(3, 3), textcoords="offset points")
        if fit is not None and all(v.L is not None for v in points):
            other = np.mean([v.L if var == "R" else v.R for v in points])
            grid = np.linspace(xs.min(), xs.max(), 20)
            z = fit.a + (fit.b * grid + fit.c * other if var == "R" else fit.b * other + fit.c * grid)
            ax.plot(grid, z, "-", color="gray", label=f"fit at mean {'L' if var == 'R' else 'R'}")
            ax.legend()
        ax.set_xlabel(var)
        ax.set_ylabel("score Z")
        ax.set_title(f"Z against {var}")
        out[f"score_vs_{var}"] = _png(fig)
    return out


def _rows(versions: list[Version], verdicts: list[Verdict]) -> list[list[str]]:
    def num(x):
        return "" if x is None else f"{x:.4f}"
    return [[v.name, v.time, num(v.R), num(v.L), num(v.score), f"{v.records:,}",
             "; ".join(vd.flags) or "ok"] for v, vd in zip(versions, verdicts)]


HEADER = ["version", "time", "R", "L", "score", "records", "check"]


def write_report(versions: list[Version], output: str | Path, sigma: float = 2.0) -> Path:
    """Write ``output`` (.html: one self-contained page; .md: Markdown with PNG files beside it)."""
    if Path(output).suffix.lower() not in (".html", ".md"):
        raise InputError("the report (-o) is .html or .md", output)
    if not versions:
        raise InputError("the history holds no versions; add one with `entrosel law track`")
    verdicts = [check_version(versions[: i + 1], sigma=sigma) for i in range(len(versions))]
    pngs = figures(versions, verdicts)
    rows = _rows(versions, verdicts)
    out = Path(output)
    suffix = out.suffix.lower()
    if suffix == ".html":
        table = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows)
        images = "".join(f'<figure><img alt="{name}" src="data:image/png;base64,'
                         f'{base64.b64encode(data).decode()}"><figcaption>{name}</figcaption></figure>'
                         for name, data in pngs.items())
        page = ("<!doctype html><html><head><meta charset='utf-8'><title>entrosel: entropy-law report"
                "</title><style>body{font-family:sans-serif;margin:2em}td,th{border:1px solid #ccc;"
                "padding:4px 8px}table{border-collapse:collapse}figure{display:inline-block}</style>"
                "<script>addEventListener('load',()=>{document.body.dataset.images=[...document.images]"
                ".every(i=>i.complete&&i.naturalWidth>0)?'rendered':'broken'})</script>"
                "</head><body><h1>Entropy-law report</h1><table><tr>"
                + "".join(f"<th>{h}</th>" for h in HEADER) + f"</tr>{table}</table>{images}</body></html>\n")
        with atomic_path(out) as tmp:
            tmp.write_text(page, encoding="utf-8")
    elif suffix == ".md":
        lines = ["# Entropy-law report", "", "| " + " | ".join(HEADER) + " |",
                 "|" + "---|" * len(HEADER)] + ["| " + " | ".join(r) + " |" for r in rows] + [""]
        for name, data in pngs.items():
            png = out.with_name(f"{out.stem}-{name}.png")
            with atomic_path(png) as tmp:
                tmp.write_bytes(data)
            lines += [f"![{name}]({png.name})", ""]
        with atomic_path(out) as tmp:
            tmp.write_text("\n".join(lines), encoding="utf-8")
    else:
        raise InputError("the report is .html or .md", out)
    return out
