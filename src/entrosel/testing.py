"""Generic checks every registered part passes, a plugin's too (scikit-learn's
``check_estimator``, for entrosel's steps, engines and input formats).

    from entrosel.testing import check_step
    check_step(MyScorer)                    # raises AssertionError naming the check that failed

A step (a filter, scorer or selector) is run on a small pool written in a scratch folder,
with the fewest options it needs: its class's :meth:`example_options` (``{}`` by default),
or ``options=`` given here. A step that reads a score file gets one from ``score
compression`` (its example names the column, ``by: compression_ratio``). The checks:

- ``parameters``: constructible from the options, ``validate()`` passes, the hyper-parameters
  round-trip through the constructor, every option has help.
- ``interfaces``: the library, the command line and a one-step recipe write the same bytes.
- ``pool_kinds``: a path, a list of dicts, a pandas DataFrame and a ``datasets.Dataset`` give
  the same result.
- ``deterministic``: two runs with the same options (the same seed) write the same bytes.
- ``on_error_skip``: with bad records in the pool and ``on_error="skip"``, every input record
  is accounted for: kept, dropped, or rejected with a reason.
- ``bad_inputs``: each case of :data:`BAD_INPUTS` works as documented (docs/cli.md) or exits
  2 naming the file, with nothing written.
- ``resume`` (steps with ``checkpoint``/``resume`` options; slow): a run killed with SIGKILL
  resumes byte-identically.
"""
from __future__ import annotations

import contextlib
import dataclasses
import gzip
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from entrosel.params import check_fields, flag, hyper_parameters

__all__ = ["BAD_INPUTS", "CHECKS", "BadInput", "check_engine", "check_input_format", "check_step",
           "registered_steps", "step_pool"]

CHECKS = ("parameters", "interfaces", "pool_kinds", "deterministic", "on_error_skip", "bad_inputs",
          "resume")


def step_pool(n: int = 24) -> list[dict[str, Any]]:
    """The small pool every check runs on: ShareGPT conversations with ids, some of them
    repeating others, long enough for the default filters."""
    topics = ["rivers", "prime numbers", "bread", "the moon", "sorting lists", "tea", "volcanoes",
              "chess openings"]
    pool = []
    for i in range(n):
        topic = topics[i % len(topics)]
        question = f"Question {i}: tell me about {topic}, please, in a few sentences."
        answer = (f"Here is what I know about {topic}. " * (1 + i % 3)
                  + f"Fact number {i * 7 % 11} is worth remembering, and so is {i}. "
                  + "Ask again if you want more detail on any part of it.")
        pool.append({"id": f"c{i}", "conversations": [{"from": "human", "value": question},
                                                      {"from": "gpt", "value": answer}]})
    return pool


# ---- the bad inputs every verb that reads records meets ------------------------------------------

@dataclass(frozen=True)
class BadInput:
    """One bad (or unusual) input file: its name, how to write it, and whether a verb reading
    it works (``works``) or exits 2 naming the file (and ``line`` when given)."""

    name: str
    suffix: str
    write: Callable[[Path, list[dict[str, Any]]], None]
    works: bool
    decision: str  # what entrosel does with it, and why (docs/cli.md lists these)
    line: int | None = None


def _jsonl(records: Iterable[Any]) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def _write(data: bytes) -> Callable[[Path, list[dict[str, Any]]], None]:
    return lambda path, pool: path.write_bytes(data)


def _with(pool: list[dict[str, Any]], at: int, bad: bytes) -> bytes:
    lines = _jsonl(pool).splitlines(keepends=True)
    return b"".join(lines[:at] + [bad] + lines[at:])


def _big_record(size: int) -> Callable[[Path, list[dict[str, Any]]], None]:
    def write(path: Path, pool: list[dict[str, Any]]) -> None:
        unit = b"lorem ipsum dolor sit amet %d "
        body = b"".join(unit % i for i in range(size // len(unit) + 1))[:size].decode()
        big = {"id": "big", "conversations": [{"from": "human", "value": "Summarise this: " + body},
                                              {"from": "gpt", "value": "It repeats lorem ipsum."}]}
        path.write_bytes(_jsonl(pool + [big]))
    return write


BAD_INPUTS: tuple[BadInput, ...] = (
    BadInput("empty file", ".jsonl", _write(b""), works=False,
             decision="exit 2, `FILE: input holds no records`: an empty pool is almost always a wrong path"),
    BadInput("empty array", ".json", _write(b"[]"), works=False,
             decision="exit 2, as an empty file"),
    BadInput("byte-order mark", ".jsonl", lambda p, pool: p.write_bytes(b"\xef\xbb\xbf" + _jsonl(pool)),
             works=True, decision="works: a UTF-8 BOM (what Excel and Windows tools write) is skipped, "
                                  "as `datasets` and pandas do"),
    BadInput("CRLF line ends", ".jsonl", lambda p, pool: p.write_bytes(_jsonl(pool).replace(b"\n", b"\r\n")),
             works=True, decision="works: Windows line ends are line ends"),
    BadInput("record of another format", ".jsonl", lambda p, pool: p.write_bytes(_with(pool, 2, _jsonl([
        {"id": "x", "messages": [{"role": "user", "content": "An OpenAI-style record among ShareGPT ones."},
                                 {"role": "assistant", "content": "Each record's format is told apart."}]}]))),
             works=True, decision="works: each record's format (ShareGPT, messages, Alpaca, text) is "
                                  "recognised on its own, so mixed pools render"),
    BadInput("record with no text", ".jsonl",
             lambda p, pool: p.write_bytes(_with(pool, 2, b'{"id": "x", "question": "q?", "answer": 42}\n')),
             works=False, line=3, decision="exit 2 naming `FILE:LINE` and the fields it has; "
                                           "`--text-field`/`--template` say where its text is, "
                                           "`--on-error skip` sets it aside. An empty text (`\"\"`) is a "
                                           "record, not an error"),
    BadInput("wrong field types", ".jsonl",
             lambda p, pool: p.write_bytes(_with(pool, 2, b'{"id": "x", "conversations": "hello"}\n')),
             works=False, line=3, decision="exit 2 naming `FILE:LINE` and the field"),
    BadInput("non-UTF-8 bytes", ".jsonl",
             lambda p, pool: p.write_bytes(_with(pool, 2, b'{"id": "x", "text": "caf\xe9"}\n')),
             works=False, line=3, decision="exit 2 naming `FILE:LINE` and the byte: re-encode the file "
                                           "as UTF-8 (or `--on-error skip`)"),
    BadInput("truncated last line", ".jsonl", lambda p, pool: p.write_bytes(_jsonl(pool)[:-20]),
             works=False, line=24, decision="exit 2 naming `FILE:LINE` (malformed JSON): a cut download should "
                                   "not pass unnoticed; `--on-error skip` keeps the rest"),
    BadInput("duplicate ids", ".jsonl", lambda p, pool: p.write_bytes(_jsonl(pool + [dict(pool[0], conversations=[
        {"from": "human", "value": "Another question with the same id."},
        {"from": "gpt", "value": "Ids are labels: entrosel indexes records by position."}])])), works=True,
             decision="works: records are known by their position (`index`); an `id` is carried "
                      "along as a label"),
    BadInput("gzip named .jsonl", ".jsonl", lambda p, pool: p.write_bytes(gzip.compress(_jsonl(pool), mtime=0)),
             works=True, decision="works: gzip is recognised by its first bytes, whatever the name"),
    BadInput("one record of 50 MB", ".jsonl", _big_record(50 << 20), works=True,
             decision="works: no limit on a record's size (memory grows with it)"),
)


# ---- how each kind of step runs -----------------------------------------------------------------

def registered_steps() -> dict[str, type]:
    """Every registered step, by its command (``filter length``, ``score compression``,
    ``select zip``, ...): plugins imported before the call included."""
    from entrosel.commands.recipe import registered_steps as by_command

    return by_command()


def _kind(cls: type) -> str:
    verb = getattr(cls, "verb", None)  # set by the base of each kind of step
    if verb is None:
        raise TypeError(f"{cls.__name__} is not a filter, scorer or selector")
    return verb


def _run_api(cls: type, options: dict[str, Any], source: Any, output: Path) -> None:
    from entrosel.commands.filter import filter_to_file

    verb = _kind(cls)
    reading = {k: options[k] for k in ("on_error",) if k in options}
    if verb == "filter":
        own = {k: v for k, v in options.items() if k not in reading}
        filter_to_file(cls(**own), source, output, **reading)
    elif verb == "score":
        cls(**options).score_file(source, output)
    else:
        cls(**options).select_file(source, output)


def _argv(cls: type, options: dict[str, Any]) -> list[str]:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    argv: list[str] = []
    for name, value in options.items():
        f = fields.get(name)
        default = f.default if f is not None else None
        if isinstance(value, bool):
            if value != default:
                argv.append(flag(name) if value else f"--no-{name.replace('_', '-')}")
            continue
        argv += [flag(name), str(value)]
    return argv


def _run_cli(cls: type, options: dict[str, Any], source: Path, output: Path) -> tuple[int, str]:
    from entrosel.cli import main

    err = io.StringIO()
    argv = [_kind(cls), cls.name, str(source), "-o", str(output), "--no-progress", *_argv(cls, options)]
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as e:  # argparse refused the arguments
            code = e.code
    return code, f"entrosel {' '.join(argv)}\n{err.getvalue()}"


def _run_recipe(cls: type, options: dict[str, Any], source: Path, output: Path, folder: Path) -> Path:
    """Run the step as the only step of a recipe (after ``score compression`` when it reads
    scores); returns the file to compare: the records, or a score step's scores."""
    import yaml

    from entrosel.commands.recipe import run_recipe

    verb = _kind(cls)
    reading = {k: options[k] for k in ("on_error",) if k in options}
    own = {k: v for k, v in options.items() if k not in reading and k != "scores"}
    steps = [{"score compression": {}}] if cls.reads_scores() else []
    steps.append({f"{verb} {cls.name}": own})
    recipe = folder / f"{cls.name}.recipe.yaml"
    recipe.write_text(yaml.safe_dump({"input": str(source), "output": str(output), **reading,
                                      "work_dir": str(folder / f"{cls.name}.steps"), "steps": steps}))
    run_recipe(recipe)
    if verb == "score":
        return next((folder / f"{cls.name}.steps").glob(f"{len(steps):02d}-*.scores.jsonl"))
    return output


def _scores_for(source: Path, folder: Path, **reading: Any) -> str:
    from entrosel.scoring import SCORERS

    out = folder / f"{source.stem}.scores.jsonl"
    SCORERS["compression"](**reading).score_file(source, out)
    return str(out)


def _options_of(step: Any) -> tuple[type, dict[str, Any]]:
    """A class and its example options, or an instance's class and the options it was given."""
    if isinstance(step, type):
        return step, {}
    cls = type(step)
    defaults = {f.name: f.default for f in dataclasses.fields(cls) if f.init}
    return cls, {k: v for k, v in hyper_parameters(step).items() if v != defaults.get(k)}


# ---- the checks ---------------------------------------------------------------------------------

def check_step(step: Any, *, options: dict[str, Any] | None = None, folder: str | Path | None = None,
               checks: Iterable[str] = CHECKS[:-1]) -> list[str]:
    """Run the generic ``checks`` (see the module docstring) on a step class or instance;
    returns the names of the checks run. Raises ``AssertionError`` naming the first failure."""
    cls, given = _options_of(step)
    if not dataclasses.is_dataclass(cls):
        raise AssertionError(f"{cls.__name__}: a step is a dataclass of its hyper-parameters")
    unknown = set(checks) - set(CHECKS)
    if unknown:
        raise ValueError(f"unknown checks {sorted(unknown)}; choose from {CHECKS}")
    with contextlib.ExitStack() as stack:
        if folder is None:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="entrosel-check-"))
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        pool = step_pool()
        source = folder / "pool.jsonl"
        source.write_bytes(_jsonl(pool))
        example = getattr(cls, "example_options", None)
        opts = {**(example(folder) if example is not None else {}), **given, **(options or {})}
        if cls.reads_scores() and "scores" not in opts:
            opts["scores"] = _scores_for(source, folder)
        ran = []
        for name in checks:
            if name == "resume" and not {"checkpoint", "resume"} <= {f.name for f in dataclasses.fields(cls)}:
                continue
            try:
                _CHECK_FUNCTIONS[name](cls, dict(opts), source, pool, folder / name)
            except AssertionError as e:
                raise AssertionError(f"{_kind(cls)} {cls.name}: check {name!r} failed: {e}") from None
            ran.append(name)
        return ran


def _check_parameters(cls, opts, source, pool, folder) -> None:
    from entrosel.errors import InputError

    step = cls(**opts)
    try:
        step.validate()
    except InputError as e:
        raise AssertionError(f"the options {opts} do not validate ({e}); give the fewest options "
                             "the step runs with in its example_options, or options=") from None
    params = hyper_parameters(step)
    again = cls(**params)
    assert hyper_parameters(again) == params, "the hyper-parameters do not round-trip through the constructor"
    check_fields(again)
    for f in dataclasses.fields(cls):
        if f.init and f.metadata.get("cli", True) and f.metadata.get("group") != "input":
            assert f.metadata.get("help") or f.metadata.get("group"), f"option {f.name!r} has no help"


def _check_interfaces(cls, opts, source, pool, folder) -> None:
    folder.mkdir(parents=True)
    api, cli, recipe = folder / "api.jsonl", folder / "cli.jsonl", folder / "recipe.jsonl"
    _run_api(cls, opts, source, api)
    code, err = _run_cli(cls, opts, source, cli)
    assert code == 0, f"the command line exited {code}: {err.strip()[-500:]}"
    assert cli.read_bytes() == api.read_bytes(), "the command line and the library wrote different bytes"
    made = _run_recipe(cls, opts, source, recipe, folder)
    assert made.read_bytes() == api.read_bytes(), "a one-step recipe and the library wrote different bytes"


def _result(cls, opts, source: Any, folder: Path, name: str) -> Any:
    """What a step decides on ``source``: the kept indices, the score rows, the selection."""
    from entrosel.pool import InputOptions

    verb = _kind(cls)
    if verb == "filter":
        own = {k: v for k, v in opts.items() if k != "on_error"}
        step = cls(**own).fit(source, InputOptions(on_error=opts.get("on_error", "raise")), progress=False)
        return [i for i in range(_size(source)) if step.is_kept(i)]
    if verb == "score":
        out = folder / f"{name}.jsonl"
        cls(**opts).score_file(source, out)
        return out.read_bytes()
    return cls(**opts).select(source)


def _size(source: Any) -> int:
    """How many records (a path: lines) ``source`` holds."""
    if isinstance(source, (str, os.PathLike)):
        return len(Path(source).read_bytes().splitlines())
    return len(source)


def _check_pool_kinds(cls, opts, source, pool, folder) -> None:
    folder.mkdir(parents=True)
    kinds: dict[str, Any] = {"path": source, "list": pool}
    with contextlib.suppress(ImportError):
        import pandas
        kinds["DataFrame"] = pandas.DataFrame(pool)
    with contextlib.suppress(ImportError):
        import datasets
        kinds["Dataset"] = datasets.Dataset.from_list(pool)
    results = {kind: _result(cls, opts, value, folder, kind) for kind, value in kinds.items()}
    for kind, result in results.items():
        assert result == results["path"], f"a {kind} gives another result than a path"


def _check_deterministic(cls, opts, source, pool, folder) -> None:
    folder.mkdir(parents=True)
    _run_api(cls, opts, source, folder / "1.jsonl")
    _run_api(cls, opts, source, folder / "2.jsonl")
    assert (folder / "1.jsonl").read_bytes() == (folder / "2.jsonl").read_bytes(), \
        "two runs with the same options wrote different bytes"


def _check_on_error_skip(cls, opts, source, pool, folder) -> None:
    from entrosel.io.readers import read_records
    from entrosel.io.records import rejects_path

    folder.mkdir(parents=True)
    bad = folder / "bad.jsonl"
    lines = _jsonl(pool).splitlines(keepends=True)
    lines[3:3] = [b'{"id": "broken", "conversations": [\n', b'{"id": "no-text", "score": 1}\n']
    bad.write_bytes(b"".join(lines))
    skip = {**opts, "on_error": "skip"}
    if "scores" in skip:
        skip["scores"] = _scores_for(bad, folder, on_error="skip")
    out = folder / "out.jsonl"
    _run_api(cls, skip, bad, out)
    rejects = rejects_path(out)
    rejected = [r.data for r in read_records(rejects)] if rejects.exists() else []
    assert len(rejected) == 2 and all(r.get("reason") or r.get("error") for r in rejected), \
        f"the 2 bad records are not both rejected with a reason: {rejected}"
    written = [r.data for r in read_records(out)]
    verb = _kind(cls)
    if verb == "score":
        assert len(written) == len(pool), f"{len(written)} score rows for {len(pool)} readable records"
    else:
        assert len(written) <= len(pool) and len({json.dumps(r, sort_keys=True) for r in written}) == len(written)


def _check_bad_inputs(cls, opts, source, pool, folder) -> None:
    folder.mkdir(parents=True)
    for case in BAD_INPUTS:
        if case.name == "one record of 50 MB" and os.environ.get("ENTROSEL_CHECK_BIG") != "1":
            continue  # minutes for some steps: the full tier sets ENTROSEL_CHECK_BIG=1
        path = folder / (case.name.replace(" ", "-").replace(".", "") + case.suffix)
        case.write(path, pool)
        use = dict(opts)
        if "scores" in use:
            if case.works:
                use["scores"] = _scores_for(path, folder)
            else:
                use["scores"] = _scores_for(source, folder)
        out = folder / f"out-{path.stem}.jsonl"
        code, err = _run_cli(cls, use, path, out)
        if case.works:
            assert code == 0, f"{case.name}: exited {code}, expected to work: {err.strip()[-300:]}"
            continue
        assert code == 2, f"{case.name}: exited {code}, expected 2: {err.strip()[-300:]}"
        message = [line for line in err.strip().splitlines() if line.startswith("entrosel: error:")]
        assert len(message) == 1 and "Traceback" not in err, f"{case.name}: not one message: {err[-300:]}"
        where = str(path) if case.line is None else f"{path}:{case.line}"
        assert where in message[0], f"{case.name}: the message does not name {where}: {message[0]}"
        assert not out.exists() and not list(folder.glob(f"out-{path.stem}*")), \
            f"{case.name}: something was written"


def _check_resume(cls, opts, source, pool, folder) -> None:
    """Kill a checkpointing run with SIGKILL once its first state is saved, then resume."""
    folder.mkdir(parents=True)
    big = folder / "pool.jsonl"
    big.write_bytes(_jsonl(step_pool(600)))
    args = [sys.executable, "-m", "entrosel", _kind(cls), cls.name, str(big), "--no-progress",
            *_argv(cls, opts)]
    full = folder / "full.jsonl"
    subprocess.run([*args, "-o", str(full)], check=True, capture_output=True)
    cp, out = folder / "cp", folder / "resumed.jsonl"
    proc = subprocess.Popen([*args, "-o", str(out), "--checkpoint", str(cp)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline and not (cp.exists() and any(cp.iterdir())):
        time.sleep(0.005)
    assert proc.poll() is None, "the run ended before its first checkpoint; cannot kill it halfway"
    time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert not out.exists(), "a killed run left output"
    subprocess.run([*args, "-o", str(out), "--checkpoint", str(cp), "--resume"], check=True,
                   capture_output=True)
    assert out.read_bytes() == full.read_bytes(), "the resumed run wrote other bytes"


_CHECK_FUNCTIONS = {"parameters": _check_parameters, "interfaces": _check_interfaces,
                    "pool_kinds": _check_pool_kinds, "deterministic": _check_deterministic,
                    "on_error_skip": _check_on_error_skip, "bad_inputs": _check_bad_inputs,
                    "resume": _check_resume}


# ---- engines and input formats ------------------------------------------------------------------

def check_engine(engine: Any) -> None:
    """An engine's ``map`` keeps order and gives what a plain loop gives, and ZIP on it picks
    what it picks on the local engine."""
    from entrosel.selection import ZipSelector

    items = list(range(37))
    assert list(engine.map(_square, items)) == [x * x for x in items], "map lost or reordered items"
    pool = step_pool()
    local = ZipSelector(budget=6, k1=16, k2=6, k3=2, workers=1).select(pool)
    assert ZipSelector(budget=6, k1=16, k2=6, k3=2, engine=engine).select(pool) == local, \
        "ZIP picks other records on this engine than on the local one"


def _square(x: int) -> int:
    return x * x


def check_input_format(name: str, folder: str | Path | None = None) -> None:
    """Records written in format ``name`` read back as the same records, and a file of this
    format with no records is refused."""
    from entrosel.io.readers import read_records
    from entrosel.io.writers import write_records

    pool = [{"id": r["id"], "text": r["conversations"][1]["value"]} for r in step_pool(8)]
    suffix = {"jsonl": ".jsonl", "json": ".json", "csv": ".csv", "parquet": ".parquet", "hf": "",
              "folder": ""}[name]
    with contextlib.ExitStack() as stack:
        if folder is None:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="entrosel-format-"))
        folder = Path(folder)
        if name == "folder":
            target = folder / "shards"
            target.mkdir()
            write_records(pool[:5], target / "part-0000.jsonl")
            write_records(pool[5:], target / "part-0001.jsonl")
        else:
            target = folder / f"pool{suffix}"
            write_records(pool, target, output_format=name)
        back = [r.data for r in read_records(target, name)]
        assert back == pool, f"{name}: records read back differ from those written"
        assert [r.index for r in read_records(target, name)] == list(range(len(pool))), \
            f"{name}: records are not numbered from 0 in order"
