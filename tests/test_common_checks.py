"""The generic checks of :mod:`entrosel.testing` over every registered part (issue 31), and the
cases that slipped through tests written per part."""
from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from entrosel import FILTERS, InputError, LocalEngine, ZipSelector
from entrosel.cli import main
from entrosel.filters import Filter
from entrosel.filters.base import Removal
from entrosel.io.readers import INPUT_FORMATS
from entrosel.testing import (BAD_INPUTS, CHECKS, check_engine, check_input_format, check_step,
                              registered_steps, step_pool)

from .conftest import write_jsonl

# steps that need more than the example options: a language model (tests/test_lm.py runs
# the checks on it with a tiny model)
_NEEDS_A_MODEL = {"score lm"}


@pytest.mark.parametrize("command", [c for c in registered_steps() if c not in _NEEDS_A_MODEL])
def test_every_registered_step_passes_the_checks(command, tmp_path):
    ran = check_step(registered_steps()[command], folder=tmp_path)
    assert ran == list(CHECKS[:-1])


@pytest.mark.parametrize("name", ["local-1", "local-2"])
def test_engines_pass_the_checks(name):
    check_engine(LocalEngine(workers=int(name[-1])))


@pytest.mark.parametrize("name", INPUT_FORMATS)
def test_input_formats_pass_the_checks(name, tmp_path):
    check_input_format(name, tmp_path)


# ---- a registration is picked up with no test edited -------------------------------------------

@dataclass
class _ToyFilter(Filter):
    """Keeps records whose text holds an even number of words."""

    name: ClassVar[str] = "toy-even"
    help: ClassVar[str] = "keep records with an even number of words"

    def judge(self, batch):
        return [None if sum(len(t.text.split()) for t in turns) % 2 == 0 else Removal("odd", "odd words")
                for _, turns in batch]


@dataclass
class _BrokenFilter(_ToyFilter):
    """Breaks determinism: keeps a random half, a new draw each run."""

    name: ClassVar[str] = "toy-broken"
    help: ClassVar[str] = "keep a random half"

    def judge(self, batch):
        return [None if random.random() < 0.5 else Removal("unlucky", "unlucky") for _ in batch]


@pytest.fixture
def registered():
    names = []

    def register(cls):
        FILTERS.register(cls.name)(cls)
        names.append(cls.name)
        return cls

    yield register
    for name in names:
        FILTERS.unregister(name)


def test_a_new_registration_is_checked_and_a_broken_one_fails(registered, tmp_path):
    registered(_ToyFilter)
    assert "filter toy-even" in registered_steps()  # what the parametrisation above is built from
    assert check_step(registered_steps()["filter toy-even"], folder=tmp_path / "toy") == list(CHECKS[:-1])
    registered(_BrokenFilter)
    with pytest.raises(AssertionError, match=r"filter toy-broken: check '(interfaces|pool_kinds|deterministic)' failed"):
        check_step(registered_steps()["filter toy-broken"], folder=tmp_path / "broken")


def test_an_instance_is_checked_with_its_own_options(tmp_path):
    assert "interfaces" in check_step(ZipSelector(budget=5, k1=12, k2=4, k3=2, workers=1), folder=tmp_path)


def test_a_step_without_the_options_it_needs_is_named(tmp_path):
    with pytest.raises(AssertionError, match="select random: check 'parameters' failed.*example_options"):
        check_step(registered_steps()["select random"], options={"budget": None}, folder=tmp_path)


# ---- the cases under "Why" (each failed before the fix) -----------------------------------------

def _cli(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:
            code = e.code
    return code, err.getvalue()


def _recipe(tmp_path: Path, steps: str) -> Path:
    write_jsonl(tmp_path / "pool.jsonl", step_pool())
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"input: {tmp_path / 'pool.jsonl'}\noutput: {tmp_path / 'out.jsonl'}\nsteps:\n{steps}")
    return recipe


def test_clean_then_random_is_a_recipe(tmp_path):
    recipe = _recipe(tmp_path, "  - filter length: {min_chars: 150}\n  - select random: {budget: 10, seed: 1}\n")
    code, err = _cli("run", recipe, "--no-progress")
    assert code == 0, err
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 10


def test_run_takes_no_progress_and_on_error(tmp_path):
    recipe = _recipe(tmp_path, "  - select random: {budget: 5}\n")
    with open(tmp_path / "pool.jsonl", "a") as f:
        f.write('{"id": "broken", "conversations": [\n')
    code, err = _cli("run", recipe, "--no-progress")
    assert code == 2 and "pool.jsonl:25" in err and not (tmp_path / "out.jsonl").exists()
    code, err = _cli("run", recipe, "--no-progress", "--on-error", "skip")
    assert code == 0, err
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 5
    rejects = next((tmp_path / "out.jsonl.steps").glob("*.rejects.jsonl"))
    assert json.loads(rejects.read_text())["line"] == 25


def test_a_jsonl_with_a_byte_order_mark_just_works(tmp_path):
    pool = step_pool()
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"".join(json.dumps(r).encode() + b"\n" for r in pool))
    out = tmp_path / "out.jsonl"
    code, err = _cli("select", "random", path, "-o", out, "--budget", "3")
    assert code == 0, err
    assert all(json.loads(line) in pool for line in out.read_text().splitlines())


@pytest.mark.parametrize("pool", [[1, 2, 3], ["a text"], [{"text": "ok"}, None]])
def test_the_api_refuses_a_record_that_is_not_a_mapping_with_input_error(pool):
    with pytest.raises(InputError, match=r"record \d is a \w+, not a mapping"):
        ZipSelector(budget=1).select(pool)


# ---- bad inputs on the verbs that are not steps ---------------------------------------------------

def _verb_argv(verb: str, path: Path, out: Path) -> list[str]:
    if verb == "run":  # a recipe reads its input once, in place when it is plain JSONL
        recipe = path.parent / "recipe.yaml"
        recipe.write_text("steps:\n  - filter length: {min_chars: 50}\n  - select random: {budget: 3}\n")
        return ["run", recipe, path, "-o", out.with_suffix(".jsonl"), "--work-dir", out.with_suffix(".steps")]
    return {"measure": ["measure", path, "--json"],
            "law measure": ["law", "measure", path],
            "report": ["report", path, "-o", out.with_suffix(".html")]}[verb]


@pytest.mark.parametrize("case", [c for c in BAD_INPUTS if c.name != "one record of 50 MB"], ids=lambda c: c.name)
@pytest.mark.parametrize("verb", ["measure", "law measure", "report", "run"])
def test_bad_inputs_on_the_verbs_that_read_records(verb, case, tmp_path):
    if verb == "report":
        pytest.importorskip("matplotlib")
    path = tmp_path / ("in" + case.suffix)
    case.write(path, step_pool())
    out = tmp_path / "out"
    code, err = _cli(*_verb_argv(verb, path, out))
    if case.works:
        assert code == 0, err
        return
    assert code == 2 and "Traceback" not in err, err
    assert (f"{path}:{case.line}" if case.line else str(path)) in err, err
    # a recipe keeps the steps it finished, to resume: here the first step failed
    assert not [p for p in tmp_path.rglob("out*") if p.is_file()]


# ---- the slow checks (full tier): a SIGKILL and resume, a record of 50 MB -------------------------

@pytest.mark.slow
def test_zip_resumes_after_sigkill_byte_identical(tmp_path):
    assert check_step(ZipSelector(budget=60, k1=200, k2=8, k3=2, workers=1), checks=["resume"],
                      folder=tmp_path) == ["resume"]


@pytest.mark.slow
@pytest.mark.parametrize("command", ["filter length", "score compression", "select random", "select zip"])
def test_a_record_of_50_mb_works(command, tmp_path, monkeypatch):
    monkeypatch.setenv("ENTROSEL_CHECK_BIG", "1")
    big = next(c for c in BAD_INPUTS if c.name == "one record of 50 MB")
    path = tmp_path / "big.jsonl"
    big.write(path, step_pool())
    assert path.stat().st_size > 50 << 20
    cls = registered_steps()[command]
    options = cls.example_options(tmp_path)
    out = tmp_path / "out.jsonl"
    argv = [*command.split(), path, "-o", out, "--no-progress"]
    for name, value in options.items():
        argv += ["--" + name.replace("_", "-"), value]
    code, err = _cli(*argv)
    assert code == 0, err
    assert out.stat().st_size > 0


@pytest.mark.parametrize("verb", ["select", "run"])
def test_a_full_disk_is_a_clear_error_and_leaves_no_output(verb, tmp_path, monkeypatch):
    import errno

    from entrosel.io import writers

    def fills_the_disk(records, path, like, gz=False):
        with open(path, "wb") as f:  # some bytes reach the disk first
            f.write(b'{"partial": ')
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setitem(writers._WRITERS, "jsonl", fills_the_disk)
    pool = write_jsonl(tmp_path / "pool.jsonl", step_pool())
    out = tmp_path / "out" / "picked.jsonl"
    if verb == "select":
        code, err = _cli("select", "random", pool, "-o", out, "--budget", "3", "--no-progress")
    else:
        recipe = tmp_path / "r.yaml"
        recipe.write_text("steps:\n  - select random: {budget: 3}\n")
        code, err = _cli("run", recipe, pool, "-o", out, "--no-progress")
    assert code == 2 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("entrosel: error: no space left on the device writing ")
    assert not out.exists() and not list(out.parent.glob(".picked*"))
