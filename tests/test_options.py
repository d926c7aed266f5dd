"""The command line built from fields: switches that are on, plugins found by entry point."""
from __future__ import annotations

import argparse
import sys
import types
from dataclasses import dataclass

from entrosel import SCORERS, Param, option
from entrosel.commands.options import field_options


def test_a_switch_that_is_on_gets_a_flag_that_turns_it_off():
    @dataclass
    class Part:
        keep_case: bool = option(True, "compare texts as they are", param=Param(bool))
        strict: bool = option(False, "refuse odd records", param=Param(bool))

    parser = argparse.ArgumentParser()
    field_options(parser, Part)
    assert vars(parser.parse_args([])) == {"keep_case": True, "strict": False}
    assert vars(parser.parse_args(["--no-keep-case", "--strict"])) == {"keep_case": False, "strict": True}


def test_plugins_are_found_by_entry_point(monkeypatch, capsys, tmp_path):
    from importlib import metadata

    from entrosel.cli import main

    module = types.ModuleType("entrosel_test_plugin")
    code = '''
from dataclasses import dataclass
from typing import ClassVar
from entrosel import SCORERS, Scorer
from entrosel.pool import rendered_records
from entrosel.scoring.base import id_row

@SCORERS.register("plugin-turns")
@dataclass
class TurnCounter(Scorer):
    help: ClassVar[str] = "turns per record"
    def rows(self, source, rejects, *, engine, shard, loaded, progress):
        for record, turns in rendered_records(source, self.input_options(), rejects, shard):
            yield id_row(record) | {"turns": len(turns)}
'''

    class Point:
        def __init__(self, name: str, value: str, body: str | None) -> None:
            self.name, self.value, self.body = name, value, body

        def load(self):
            if self.body is None:
                raise ImportError(f"No module named {self.value!r}")
            sys.modules[self.value] = module  # as an import would, before the body runs
            exec(compile(self.body, self.value, "exec"), module.__dict__)
            return module

    points = [Point("turns", "entrosel_test_plugin", code), Point("broken", "not_there", None)]
    monkeypatch.setattr(metadata, "entry_points",
                        lambda group: points if group == "entrosel.plugins" else [])
    pool = tmp_path / "pool.jsonl"
    pool.write_text('{"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}\n')
    try:
        assert main(["score", "plugin-turns", str(pool), "-o", str(tmp_path / "t.jsonl")]) == 0
        assert (tmp_path / "t.jsonl").read_text() == '{"index": 0, "turns": 2}\n'
        err = capsys.readouterr().err
        assert "plugin 'broken' (not_there) failed to load: ImportError" in err
    finally:
        SCORERS.unregister("plugin-turns")
        sys.modules.pop("entrosel_test_plugin", None)
