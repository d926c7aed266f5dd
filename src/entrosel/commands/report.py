"""``entrosel report``: what a selection holds, against the pool it came from."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from entrosel.report.selection import selection_report


def report(subset: str | Path, output: str | Path, **options: Any) -> Path:
    """The selection report of ``subset``; see :func:`entrosel.report.selection.selection_report`."""
    return selection_report(subset, output, **options)


def _cmd_report(a: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    out = report(a.subset, a.output, pool=a.pool, scores=a.scores, by=a.by, tokenizer=a.tokenizer,
                 input_format=a.input_format, text_field=a.text_field, template=a.template)
    print(f"entrosel report: {a.subset}" + (f" against {a.pool}" if a.pool else "")
          + f" in {time.perf_counter() - t0:.1f}s -> {out}", file=sys.stderr)
    return 0


def add_report_parser(verbs: Any) -> None:
    """The ``report`` sub-command (cli.py adds it with one line)."""
    from entrosel.commands.options import input_options

    p = verbs.add_parser(
        "report", help="what a selection holds: lengths, duplicates, R, scores, composition",
        description="Report on SUBSET, against --pool when given: records and tokens, length "
                    "histograms, exact duplicates, the compression ratio R with zlib and with lzma "
                    "(a long window), the distribution of every numeric column of --scores, the "
                    "composition by --by FIELD, and the first, median and last records. -o "
                    "report.html: one self-contained page; -o report.md: Markdown with PNG files "
                    "beside it. Needs matplotlib ([report] extra).")
    p.add_argument("subset", metavar="SUBSET")
    p.add_argument("-o", "--output", required=True, metavar="REPORT", help="report.html or report.md")
    p.add_argument("--pool", metavar="POOL", help="the pool the subset was selected from")
    p.add_argument("--scores", metavar="FILE",
                   help="score file (from `entrosel score`), one row per record of POOL (or of SUBSET "
                        "without --pool)")
    p.add_argument("--by", metavar="FIELD", help="composition by this record field, e.g. source")
    p.add_argument("--tokenizer", metavar="PATH_OR_NAME",
                   help="count tokens with this tokenizer (default: whitespace-separated words)")
    input_options(p, on_error=False)
    p.set_defaults(run=_cmd_report)
