"""Write docs/cli.md, every verb's options with their meaning and default, from the parser.

    python scripts/cli_doc.py          # rewrite docs/cli.md
    python scripts/cli_doc.py --check  # exit 1 if docs/cli.md is not what the parser says

tests/test_cli_doc.py runs the check, so the page cannot drift from the command line.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from entrosel.cli import build_parser
from entrosel.testing import BAD_INPUTS

PAGE = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def _commands(parser: argparse.ArgumentParser, prefix: str = "entrosel"):
    """``(command line, parser)`` for every leaf command, in the order of ``--help``."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield prefix, parser
        return
    for name, sub in subs[0].choices.items():
        yield from _commands(sub, f"{prefix} {name}")


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _default(action: argparse.Action) -> str:
    if action.required:
        return "required"
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)) or action.nargs == 0:
        return "off"
    if action.default is None or action.default == argparse.SUPPRESS:
        return "-"
    return f"`{action.default}`"


def render() -> str:
    lines = ["# Command-line options", "",
             "Generated from the parser by `python scripts/cli_doc.py`; a test checks that it is "
             "current. Every verb also takes `--help`. Older spellings kept as aliases are listed "
             "after the option's name.", ""]
    lines += ["## Unusual and bad input", "",
              "What every verb that reads records does with each case (the generic checks of "
              "`entrosel.testing` run each case on every registered step):", "",
              "| input | what happens |", "|---|---|"]
    lines += [f"| {case.name} | {_cell(case.decision)} |" for case in BAD_INPUTS]
    lines.append("")
    for command, parser in _commands(build_parser()):
        if command == "entrosel":
            continue
        lines += [f"## `{command}`", "", _cell(parser.description or ""), "",
                  "| option | meaning | default |", "|---|---|---|"]
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            name = ", ".join(f"`{o}`" for o in action.option_strings) or f"`{action.dest.upper()}`"
            if action.choices and not isinstance(action, argparse._SubParsersAction):
                name += " {" + ",".join(map(str, action.choices)) + "}"
            lines.append(f"| {name} | {_cell(action.help or '')} | {_default(action)} |")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    text = render()
    if a.check:
        if not PAGE.exists() or PAGE.read_text() != text:
            print(f"{PAGE} is out of date: run python scripts/cli_doc.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
