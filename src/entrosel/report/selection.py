"""Pages with tables and plots (self-contained HTML, or Markdown with PNGs beside it).

:func:`html_page` and :func:`markdown_page` are shared by the selection report below and
by ``evaluate``'s report.
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Sequence

from entrosel.errors import InputError
from entrosel.io.atomic import atomic_path

_STYLE = ("body{font-family:sans-serif;margin:2em;max-width:1200px}td,th{border:1px solid #ccc;"
          "padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
          "table{border-collapse:collapse;margin:1em 0}figure{display:inline-block;margin:.5em}"
          "pre{background:#f6f6f6;padding:.6em;white-space:pre-wrap;max-height:16em;overflow:auto}")
# the page says whether every image decoded: tests read it from the DOM of a headless browser
_SCRIPT = ("<script>addEventListener('load',()=>{document.body.dataset.images=[...document.images]"
           ".every(i=>i.complete&&i.naturalWidth>0)?'rendered':'broken'})</script>")


def pyplot(what: str):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError(f"{what} needs matplotlib: pip install 'entrosel[report]'") from None
    return plt


def png(fig) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    pyplot("a plot").close(fig)
    return buf.getvalue()


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def html_page(output: str | Path, title: str, intro: str, header: Sequence[str],
              rows: Sequence[Sequence[str]], images: dict[str, bytes],
              sections: Sequence[tuple[str, str]] = ()) -> Path:
    """One self-contained page: a title, a paragraph, a table, the PNGs embedded, and
    ``sections`` (a heading and preformatted text each). Written atomically."""
    figures = "".join(f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,'
                      f'{base64.b64encode(data).decode()}"><figcaption>{html.escape(name)}</figcaption></figure>'
                      for name, data in images.items())
    extra = "".join(f"<h2>{html.escape(h)}</h2><pre>{html.escape(text)}</pre>" for h, text in sections)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style>{_SCRIPT}</head><body><h1>{html.escape(title)}</h1>"
            f"<p>{html.escape(intro)}</p>{_html_table(header, rows)}{figures}{extra}</body></html>\n")
    out = Path(output)
    with atomic_path(out) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return out


def markdown_page(output: str | Path, title: str, intro: str, header: Sequence[str],
                  rows: Sequence[Sequence[str]], images: dict[str, bytes],
                  sections: Sequence[tuple[str, str]] = ()) -> Path:
    """The same page as Markdown, each PNG written beside it as ``STEM-NAME.png``."""
    out = Path(output)
    cell = lambda c: str(c).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = [f"# {title}", "", intro, "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows] + [""]
    for name, data in images.items():
        path = out.with_name(f"{out.stem}-{name}.png")
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
        lines += [f"![{name}]({path.name})", ""]
    for heading, text in sections:
        lines += [f"## {heading}", "", "```", text.replace("```", "'''"), "```", ""]
    with atomic_path(out) as tmp:
        tmp.write_text("\n".join(lines), encoding="utf-8")
    return out
