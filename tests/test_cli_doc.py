"""docs/cli.md lists every option of every verb, as the parser has them."""
from __future__ import annotations

from .doc_blocks import doc_script


def _cli_doc():
    return doc_script("cli_doc")


def test_the_options_page_is_what_the_parser_says():
    doc = _cli_doc()
    assert doc.PAGE.read_text() == doc.render(), "run: python scripts/cli_doc.py"


def test_every_option_has_help_and_appears_once_per_verb():
    import argparse

    doc = _cli_doc()
    for command, parser in doc._commands(doc.build_parser()):
        seen = set()
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction) or not action.option_strings:
                continue
            assert action.help, f"{command} {action.option_strings[0]} has no help text"
            assert action.dest not in seen or action.dest == "largest", (command, action.dest)
            seen.add(action.dest)
