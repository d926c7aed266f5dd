"""Pages with tables and plots (self-contained HTML, or Markdown with PNGs beside it).

:func:`html_page` and :func:`markdown_page` are shared by the selection report below and
by ``evaluate``'s report.
"""
from __future__ import annotations

import base64
import html
import io
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from entrosel.errors import InputError
from entrosel.formats.render import turns_text
from entrosel.io.atomic import atomic_path
from entrosel.io.readers import read_records
from entrosel.io.records import Rejects
from entrosel.pool import InputOptions, Source
from entrosel.scoring.compression import compression_ratio
from entrosel.scoring.tokens import count_tokens

_WORD = re.compile(r"\S+")

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


# -- the selection report ------------------------------------------------------------------

_EXCERPT = 800  # characters of each example record shown
_TOP = 15       # values of --by shown, the rest summed as "other"


@dataclass
class _Set:
    """What the report needs of one set: texts, per-record lengths, the --by values."""

    path: str
    texts: list[str]
    lengths: Any
    groups: list[str]
    R: dict[str, float]

    @property
    def ratios(self) -> np.ndarray:
        """Each record's own compression ratio (zlib level 9, as ``score compression``)."""
        return np.array([compression_ratio(t) for t in self.texts], dtype=np.float64)

    @property
    def duplicates(self) -> int:
        return len(self.texts) - len(set(self.texts))


def _read_set(path: Source, options: InputOptions, by: str | None, tokenizer: Any) -> _Set:
    from entrosel.scoring.measure import measure_one
    from entrosel.pool import rendered_records

    texts, groups = [], []
    for record, turns in rendered_records(path, options, Rejects("raise")):
        texts.append(turns_text(turns))
        if by is not None:
            value = record.data.get(by)
            groups.append("(none)" if value is None else str(value))
    if not texts:
        raise InputError("holds no records", path)
    lengths = (count_tokens(texts, tokenizer) if tokenizer is not None
               else np.array([len(_WORD.findall(t)) for t in texts], dtype=np.int64))
    read = dict(input_format=options.input_format, text_field=options.text_field, template=options.template)
    R = {c: measure_one(path, compressor=c, **read)["compression_ratio"] for c in ("zlib", "lzma")}
    name = str(path) if isinstance(path, (str, os.PathLike)) else "(the records so far)"
    return _Set(name, texts, lengths, groups, R)


def _score_columns(path: str | Path, wanted: int, keys: list[int] | None) -> dict[str, np.ndarray]:
    """Every numeric column of a score file (one row per record of the set the rows index),
    reordered to ``keys`` (row positions) when given."""
    rows = [r.data for r in read_records(path, None, Rejects("raise"))]
    if len(rows) != wanted:
        raise InputError(f"holds {len(rows):,} score rows for {wanted:,} records; a score file has one "
                         "row per record (of --pool when given, else of SUBSET)", path)
    skip = {"index", "id"}
    names = [k for k in rows[0] if k not in skip and all(isinstance(r.get(k), (int, float))
                                                          and not isinstance(r.get(k), bool) for r in rows)]
    if not names:
        raise InputError("has no numeric score column", path)
    columns = {k: np.array([float(r[k]) for r in rows]) for k in names}
    if keys is not None:
        columns = {k: v[keys] for k, v in columns.items()}
    return columns


def selection_report(subset: Source, output: str | Path, *, pool: str | Path | None = None,
                     scores: str | Path | None = None, by: str | None = None, tokenizer: str | None = None,
                     input_format: str | None = None, text_field: str | None = None,
                     template: str | None = None) -> Path:
    """What a selection holds, against its pool when given: records, tokens, length
    histograms, exact duplicates, R with zlib and with lzma (a long window), the
    distribution of every numeric column of ``scores`` (rows of the pool when ``pool`` is
    given, else of the subset), the composition by field ``by``, and the first, median and
    last records. ``output``: .html (one page) or .md (PNGs beside it)."""
    out = Path(output)
    if out.suffix.lower() not in (".html", ".md"):
        raise InputError("the report (-o) is .html or .md", out)
    for flag, path in (("SUBSET", subset), ("--pool", pool), ("--scores", scores)):
        if isinstance(path, (str, os.PathLike)) and not Path(path).exists():
            raise InputError(f"no such file or folder ({flag})", path)
    plt = pyplot("the selection report")
    tok = None
    if tokenizer is not None:
        from entrosel.scoring.tokens import load_tokenizer

        tok = load_tokenizer(tokenizer)
    options = InputOptions(input_format, "text", text_field, template)
    sub = _read_set(subset, options, by, tok)
    base = _read_set(pool, options, by, tok) if pool is not None else None
    columns: dict[str, np.ndarray] = {}
    sub_scores: dict[str, np.ndarray] = {}
    if scores is not None:
        if base is not None:
            # a subset record's scores are those of the same text in the pool
            where = {t: i for i, t in reversed(list(enumerate(base.texts)))}
            missing = sum(t not in where for t in sub.texts)
            if missing:
                raise InputError(f"{missing:,} of its {len(sub.texts):,} records are not in the pool {pool}", subset)
            columns = _score_columns(scores, len(base.texts), None)
            sub_scores = {k: v[[where[t] for t in sub.texts]] for k, v in columns.items()}
        else:
            sub_scores = _score_columns(scores, len(sub.texts), None)
    unit = "tokens" if tok is not None else "words"

    images: dict[str, bytes] = {}
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    every = np.concatenate([sub.lengths, base.lengths]) if base is not None else sub.lengths
    bins = np.geomspace(1, max(2, every.max()) + 1, 40)
    if base is not None:
        ax.hist(base.lengths + 1, bins=bins, density=True, alpha=0.5, color="tab:gray", label="pool")
    ax.hist(sub.lengths + 1, bins=bins, density=True, alpha=0.6, color="tab:blue", label="subset")
    ax.set_xscale("log")
    ax.set_xlabel(f"{unit} per record (+1, log scale)")
    ax.set_ylabel("density")
    ax.set_title("record lengths")
    ax.legend()
    images["lengths"] = png(fig)

    fig, ax = plt.subplots(figsize=(4.8, 3.6))
    labels = ["zlib (32 KiB window)", "lzma (long window)"]
    x = np.arange(2)
    ax.bar(x - 0.2, [sub.R["zlib"], sub.R["lzma"]], 0.4, color="tab:blue", label="subset")
    if base is not None:
        ax.bar(x + 0.2, [base.R["zlib"], base.R["lzma"]], 0.4, color="tab:gray", label="pool")
    ax.set_xticks(x, labels)
    ax.set_ylabel("compression ratio R")
    ax.set_title("redundancy (higher: more repetitive)")
    ax.legend()
    images["compression"] = png(fig)

    # R of the whole set hides how its records differ: the per-record ratio shows whether
    # the selection took the least repetitive records of the pool
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    every = np.concatenate([sub.ratios, base.ratios]) if base is not None else sub.ratios
    edges = np.histogram_bin_edges(every, bins=40)
    if base is not None:
        ax.hist(base.ratios, bins=edges, density=True, alpha=0.5, color="tab:gray", label="pool")
    ax.hist(sub.ratios, bins=edges, density=True, alpha=0.6, color="tab:blue", label="subset")
    ax.set_xlabel("compression ratio of each record (zlib level 9)")
    ax.set_ylabel("density")
    ax.set_title("per-record compression ratio")
    ax.legend()
    images["record_ratios"] = png(fig)

    if by is not None:
        counts = Counter(sub.groups)
        names = [k for k, _ in (Counter(base.groups) if base is not None else counts).most_common(_TOP)]
        def shares(groups: list[str]) -> list[float]:
            c = Counter(groups)
            return [c[n] / len(groups) for n in names] + [1 - sum(c[n] for n in names) / len(groups)]
        fig, ax = plt.subplots(figsize=(max(5.0, 0.5 * len(names) + 3), 3.8))
        x = np.arange(len(names) + 1)
        ax.bar(x - 0.2, shares(sub.groups), 0.4, color="tab:blue", label="subset")
        if base is not None:
            ax.bar(x + 0.2, shares(base.groups), 0.4, color="tab:gray", label="pool")
        ax.set_xticks(x, [n[:24] for n in names] + ["other"], rotation=30, ha="right")
        ax.set_ylabel("share of records")
        ax.set_title(f"composition by {by}")
        ax.legend()
        images[f"composition_by_{by}"] = png(fig)

    for name, values in sub_scores.items():
        fig, ax = plt.subplots(figsize=(4.8, 3.4))
        finite = values[np.isfinite(values)]
        pool_values = columns.get(name)
        edges = np.histogram_bin_edges(np.concatenate([finite, pool_values[np.isfinite(pool_values)]])
                                       if pool_values is not None else finite, bins=40)
        if pool_values is not None:
            ax.hist(pool_values[np.isfinite(pool_values)], bins=edges, density=True, alpha=0.5,
                    color="tab:gray", label="pool")
        ax.hist(finite, bins=edges, density=True, alpha=0.6, color="tab:blue", label="subset")
        ax.set_xlabel(name)
        ax.set_ylabel("density")
        ax.set_title(f"score: {name}")
        ax.legend()
        images[f"score_{name}"] = png(fig)

    def stats(s: _Set | None) -> list[str]:
        if s is None:
            return []
        return [f"{len(s.texts):,}", f"{int(s.lengths.sum()):,}", f"{np.median(s.lengths):,.0f}",
                f"{s.duplicates:,}", f"{s.R['zlib']:.3f}", f"{s.R['lzma']:.3f}"]

    measures = ["records", unit, f"median {unit} per record", "exact duplicates (records)",
                "R zlib", "R lzma"]
    header = ["measure", "subset"] + (["pool", "subset / pool"] if base is not None else [])
    rows = []
    for k, (m, v) in enumerate(zip(measures, stats(sub))):
        row = [m, v]
        if base is not None:
            p = stats(base)[k]
            a, b = float(v.replace(",", "")), float(p.replace(",", ""))
            row += [p, f"{a / b:.3f}" if b else ""]
        rows.append(row)
    for name, values in sub_scores.items():
        row = [f"mean {name}", f"{np.nanmean(values):.4f}"]
        if base is not None:
            row += [f"{np.nanmean(columns[name]):.4f}", ""]
        rows.append(row)
    order = np.argsort(sub.lengths, kind="stable")
    examples = [("first record", sub.texts[0]), (f"median record ({unit}: {sub.lengths[order[len(order) // 2]]:,})",
                                                  sub.texts[order[len(order) // 2]]),
                ("last record", sub.texts[-1])]
    sections = [(h, t[:_EXCERPT] + (" [...]" if len(t) > _EXCERPT else "")) for h, t in examples]
    intro = (f"Selection {sub.path}" + (f" from the pool {base.path}" if base is not None else "")
             + f". {unit.capitalize()}" + (f" with the tokenizer {tokenizer}" if tok is not None
                                            else " are whitespace-separated words (give --tokenizer for tokens)")
             + ". R: the whole set compressed as one stream of its rendered records (entrosel measure).")
    write = html_page if out.suffix.lower() == ".html" else markdown_page
    return write(out, "entrosel: what the selection holds", intro, header, rows, images, sections)
