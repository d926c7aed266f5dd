"""``entrosel run RECIPE.yaml``: a list of steps over a pool, each cached, resumable.

A recipe is data, never code: YAML read with a safe loader, every step's options checked
before the first step runs (an error names the step and its line). Each step is written as
it is on the command line, options in snake_case::

    input: data/pool.jsonl
    output: data/sft.jsonl
    steps:
      - filter length: {min_chars: 200, min_response_chars: 20}
      - filter dedup: {near: true}
      - select zip: {budget: 1000, compressor: zstd}

The input is read once (a plain JSONL file in place, mapped; other inputs into memory); each
step is handed the records the steps before it kept and leaves only small files under
``work_dir`` (default ``OUTPUT.steps/``): the positions of the records it keeps
(``NN-KIND.kept.npy``), a score file, a report, and a completion marker holding its
fingerprint: the input's content, the reading options, the positions every step before it
kept, its own options, the content of the files it reads, and entrosel's version. A rerun
skips every step whose marker matches and resumes at the first unfinished one (ZIP from the
last round it saved: it keeps its state in ``NN-select-zip.state-FINGERPRINT/`` while it
runs); changed options or data rerun that step and, when it then keeps other records, the
ones after it. Every registered filter, scorer and selector is a step (``filter NAME``,
``score NAME``, ``select NAME``, with the options of its class). A ``score`` step writes a
score file (the next step that reads one, ``filter score`` or ``select prune|topk|band``,
uses it unless it names ``scores``) and ``report`` the selection report of the records so far
against the recipe's input; both pass the records on unchanged. The last step's records are
written once, to ``output``.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from entrosel.commands.options import drop_options, drop_outputs, progress_option
from entrosel.errors import InputError
from entrosel.filters import FILTERS
from entrosel.filters.params import Param, ParameterError, check_params
from entrosel.io.atomic import atomic_path
from entrosel.io.fingerprint import content_sha256
from entrosel.io.readers import INPUT_FORMATS, hub_name
from entrosel.io.records import Rejects
from entrosel.io.trace import DropLog, Removal, log_run, record_id, rejected_removal
from entrosel.io.writers import output_format_for, write_records
from entrosel.pool import RecordSet
from entrosel.scoring import SCORERS, Scorer
from entrosel.selection import SELECTORS
from entrosel.step import Step as StepClass, StepFiles, StepResult
from entrosel.version import __version__

_TOP = {"input": Param(str), "output": Param(str), "work_dir": Param(str),
        "input_format": Param(str, choices=INPUT_FORMATS), "text_field": Param(str),
        "template": Param(str), "on_error": Param(str, choices=("raise", "skip"))}

@dataclass
class Step:
    """One step of a recipe: its kind (``filter dedup``), options and YAML lines."""

    number: int
    kind: str
    options: dict[str, Any]
    line: int
    option_lines: dict[str, int] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"step {self.number} ({self.kind})"

    @property
    def stem(self) -> str:
        return f"{self.number:02d}-{self.kind.replace(' ', '-')}"


@dataclass(frozen=True)
class StepKind:
    """What a step of this kind accepts (``constraints``), checks across options, makes
    (``records``: a subset of the records it is given; ``scores``; a ``report``) and runs:
    ``run(records, files, step, recipe, state) -> StepResult``, on the records the steps before
    it kept, with ``state`` a folder for what it may resume from
    (:meth:`entrosel.step.Step.resumable`)."""

    constraints: dict[str, Param]
    makes: str
    check: Callable[[dict[str, Any]], None]
    run: Callable[[RecordSet, StepFiles, Step, "Recipe", Path], StepResult]
    reads_scores: bool = False  # its `scores` file may come from an earlier score step
    content_fields: tuple[str, ...] = ()  # options naming files the step's cache hashes


@dataclass
class Recipe:
    """A parsed, validated recipe."""

    path: Path
    input: str | None
    output: str | None
    work_dir: str | None
    reading: dict[str, Any]
    steps: list[Step]
    progress: bool | None = None  # the steps' progress bars (None: on a terminal)


# ---- the steps ------------------------------------------------------------------------------

def _step_kind(cls: type[StepClass]) -> StepKind:
    """A registered filter, scorer or selector as a recipe step: built from its options
    (those its constructor does not take are the local engine's: a parallel scorer's
    ``workers``) and run by :meth:`~entrosel.step.Step.apply`, which every kind implements."""
    constraints = _step_options(cls)
    reads_scores = cls.reads_scores()
    if reads_scores:  # an earlier score step can supply the score file
        constraints["scores"] = Param(str)
    fields = {f.name for f in dataclasses.fields(cls) if f.init}

    def build(options: dict[str, Any]) -> StepClass:
        return cls(**{k: v for k, v in options.items() if k in fields})

    def check(options: dict[str, Any]) -> None:
        build(options).validate()

    def run(records: RecordSet, files: StepFiles, step: Step, recipe: Recipe, state: Path) -> StepResult:
        from entrosel.engines import make_engine

        engine = {k: v for k, v in step.options.items() if k not in fields}
        return build(step.options).resumable(state).apply(
            records, files, reading=recipe.reading,
            engine=make_engine("local", **engine) if engine else None, progress=recipe.progress)

    makes = "scores" if issubclass(cls, Scorer) else "records"
    return StepKind(constraints, makes, check, run, reads_scores, cls.content_fields)


def _step_options(cls: type) -> dict[str, Param]:
    """A registered class's options as a step takes them: its own fields (the reading options
    are the recipe's), each with its allowed values; the engine's ``workers``."""
    from entrosel.engines import LocalEngine

    engine_params = {f.name: f.metadata.get("param") for f in dataclasses.fields(LocalEngine)}
    out: dict[str, Param] = {}
    for f in dataclasses.fields(cls):
        group = f.metadata.get("group")
        if not f.init or not f.metadata.get("cli", True) or group == "input":
            continue
        if group == "engine":
            if f.name in engine_params:  # a recipe runs here: the local engine's options only
                out[f.name] = engine_params[f.name]
            continue
        out[f.name] = f.metadata.get("param") or Param(str)
    if getattr(cls, "parallel", False):
        out.update(engine_params)
    return out


_REPORT = {"by": Param(str), "tokenizer": Param(str), "format": Param(str, choices=("html", "md"))}


def _check_report(options: dict[str, Any]) -> None:
    from entrosel.report.selection import pyplot

    pyplot("the report step")  # the [report] extra, checked before any step runs


def _run_report(records: RecordSet, files: StepFiles, step: Step, recipe: Recipe,
                state: Path) -> StepResult:
    from entrosel.report.selection import selection_report

    t0 = time.perf_counter()
    options = {k: v for k, v in step.options.items() if k != "format"}
    reading = {k: v for k, v in recipe.reading.items() if k != "on_error"}
    output = files.path(step.options.get("format", "html"))
    selection_report(records, output, **options, **reading)
    return StepResult(None, f"entrosel {step.kind}: {len(records):,} records against "
                            f"{step.options['pool']} in {time.perf_counter() - t0:.1f}s -> {output}")


# every registered filter, scorer and selector is a step, written as on the command line
STEPS: dict[str, StepKind] = {}


def registered_steps() -> dict[str, type[StepClass]]:
    """Every registered filter, scorer and selector, by its command (``filter length``,
    ``score compression``, ``select zip``, ...): plugins imported before the call included."""
    return {f"{cls.verb} {name}": cls for registry in (FILTERS, SCORERS, SELECTORS)
            for name, cls in registry.items()}


def steps() -> dict[str, StepKind]:
    """:data:`STEPS`, with a step for every filter, scorer and selector registered now (a
    plugin imported after this module too); entries already there are kept."""
    kinds = registered_steps()
    for kind in [k for k in STEPS if k != "report" and k not in kinds]:
        del STEPS[kind]  # unregistered since
    for kind, cls in kinds.items():
        if kind not in STEPS:
            STEPS[kind] = _step_kind(cls)
    STEPS.setdefault("report", StepKind(_REPORT, "report", _check_report, _run_report))
    return STEPS


# ---- reading and checking a recipe ------------------------------------------------------------

def _yaml():
    try:
        import yaml
    except ImportError:
        raise InputError("recipes need PyYAML: pip install 'entrosel[recipe]'") from None
    return yaml


def _lines(node: Any) -> dict[Any, tuple[int, Any]]:
    """A YAML mapping node's keys -> (1-based line, value node)."""
    out = {}
    for key, value in getattr(node, "value", []) or []:
        if hasattr(key, "value") and isinstance(key.value, str):
            out[key.value] = (key.start_mark.line + 1, value)
    return out


def load_recipe(path: str | Path) -> Recipe:
    """Parse and validate ``path``; raises :class:`InputError` naming the step and its line."""
    yaml = _yaml()
    p = Path(path)
    if not p.is_file():
        raise InputError("no such recipe file", p)
    text = p.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise InputError(f"not valid YAML: {getattr(e, 'problem', None) or e}", p,
                         mark.line + 1 if mark else None) from None
    if not isinstance(data, dict):
        raise InputError("a recipe is a mapping with 'steps' (and optionally input, output, "
                         "work_dir, ...)", p, 1)
    top = _lines(root)
    for key in data:
        if key != "steps" and key not in _TOP:
            raise InputError(f"unknown key {key!r}; a recipe holds steps, "
                             + ", ".join(_TOP), p, top.get(key, (None,))[0])
    try:
        check_params(data, _TOP)
    except ParameterError as e:
        raise InputError(e.message(e.name), p, top.get(e.name, (None,))[0]) from None
    steps_line, steps_node = top.get("steps", (1, None))
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise InputError("'steps' must be a list of steps, e.g. '- filter length: {min_chars: 200}'",
                         p, steps_line)
    steps = []
    for i, (raw, node) in enumerate(zip(raw_steps, steps_node.value), start=1):
        steps.append(_parse_step(p, i, raw, node))
    reading = {k: data[k] for k in ("input_format", "text_field", "template", "on_error") if k in data}
    recipe = Recipe(p, data.get("input"), data.get("output"), data.get("work_dir"), reading, steps)
    _check_steps(recipe)
    return recipe


def _parse_step(p: Path, number: int, raw: Any, node: Any) -> Step:
    line = node.start_mark.line + 1
    if not isinstance(raw, dict) or len(raw) != 1:
        raise InputError(f"step {number}: write a step as '- KIND: {{options}}' with one KIND "
                         f"of: {', '.join(steps())}", p, line)
    [(kind, options)] = raw.items()
    if kind not in steps():
        raise InputError(f"step {number}: unknown step {kind!r}; steps are: {', '.join(steps())}",
                         p, line)
    options = {} if options is None else options
    [(_, value_node)] = node.value
    if not isinstance(options, dict):
        raise InputError(f"step {number} ({kind}): options must be a mapping, e.g. "
                         "{min_chars: 200}", p, line)
    return Step(number, kind, options, line, {k: v[0] for k, v in _lines(value_node).items()})


def _check_steps(recipe: Recipe) -> None:
    scores_made = False
    for step in recipe.steps:
        kind = STEPS[step.kind]
        for key in step.options:
            if key not in kind.constraints:
                raise InputError(f"{step.label}: unknown option {key!r}; options are: "
                                 f"{', '.join(kind.constraints)}", recipe.path,
                                 step.option_lines.get(key, step.line))
        try:
            check_params(step.options, kind.constraints)
            if kind.reads_scores and "scores" not in step.options:
                if not scores_made:
                    raise InputError("needs scores: FILE, or a 'score ...' step before it")
                kind.check({**step.options, "scores": "<from the score step>"})
            else:
                kind.check(step.options)
        except ParameterError as e:
            raise InputError(f"{step.label}: {e.message(e.name)}", recipe.path,
                             step.option_lines.get(e.name, step.line)) from None
        except InputError as e:
            raise InputError(f"{step.label}: {e.reason}", recipe.path, step.line) from None
        scores_made = scores_made or kind.makes == "scores"


# ---- running ------------------------------------------------------------------------------------

@dataclass
class PlannedStep:
    step: Step
    files: StepFiles
    # files the step also reads, by option name (filter score: scores; report: pool)
    extras: dict[str, str | Path] = field(default_factory=dict)


@dataclass
class RunResult:
    """What ``run_recipe`` did: each step's summary line and whether it came from the cache."""

    output: Path | None
    lines: list[str]
    cached: int
    ran: int
    records: int | None
    seconds: float
    plan: list[str]
    note: str = ""  # the files --trace and the id lists wrote


def _plan(recipe: Recipe, input: str | Path, work: Path) -> list[PlannedStep]:
    planned, scores = [], None
    for step in recipe.steps:
        kind = STEPS[step.kind]
        item = PlannedStep(step, StepFiles(work / step.stem))
        if kind.reads_scores:
            item.extras["scores"] = Path(step.options["scores"]) if "scores" in step.options else scores
        for name in kind.content_fields:  # a file named in the options: its content counts
            value = step.options.get(name)
            if isinstance(value, str) and Path(value).exists():
                item.extras[name] = Path(value)
        if step.kind == "report":  # the selection against the pool it came from
            item.extras["pool"] = input
        planned.append(item)
        if kind.makes == "scores":
            scores = item.files.path("scores.jsonl")
    return planned


def _digest(blob: Any) -> str:
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()


def _fingerprint(item: PlannedStep, given: str) -> str:
    """A step's cache key: what it is given (``given``: the input's content and reading
    options, then the positions each step before it kept), its options, the content of the
    files it reads, and the code's version."""
    blob = {"step": item.step.kind, "options": item.step.options, "given": given, "version": __version__}
    for name, path in item.extras.items():
        blob[name] = _content(path)
    return _digest(blob)


def _content(source: str | Path) -> str:
    """What a cache key holds of a file: the hash of its content; of a Hub data set (a name,
    ``hf://datasets/...``), its name and the fingerprint ``datasets`` gives the copy it
    loads (the same data give the same fingerprint, a new revision another)."""
    hub = hub_name(source) if isinstance(source, str) else None
    if hub is None:
        return content_sha256(source)
    from entrosel.io.readers import load_hub_dataset

    return _digest({"hub": str(hub), "fingerprint": load_hub_dataset(hub)._fingerprint})


def _done(item: PlannedStep, fingerprint: str) -> dict[str, Any] | None:
    """The marker of a finished step with this fingerprint, else None."""
    try:
        marker = json.loads(item.files.path("done.json").read_text())
    except (OSError, ValueError):
        return None
    if marker.get("fingerprint") != fingerprint or not all(Path(p).exists() for p in marker.get("files", [])):
        return None
    return marker


def _made(kind: StepKind, files: StepFiles, step: Step) -> list[Path]:
    """The files a finished step of this kind leaves (its marker checks they are there)."""
    if kind.makes == "records":
        return [files.path("kept.npy")]
    if kind.makes == "scores":
        return [files.path("scores.jsonl")]
    return [files.path(step.options.get("format", "html"))]


def run_recipe(recipe: str | Path | Recipe, input: str | Path | None = None,
               output: str | Path | None = None, work_dir: str | Path | None = None,
               dry_run: bool = False, echo: Callable[[str], None] | None = None, *,
               on_error: str | None = None, progress: bool | None = None,
               trace: str | Path | None = None, kept_ids: str | Path | None = None,
               removed_ids: str | Path | None = None) -> RunResult:
    """Run (or with ``dry_run``, plan) a recipe; ``input``/``output``/``work_dir`` and
    ``on_error`` override the recipe's. ``echo`` receives each step's summary line as it
    finishes; ``progress``: the steps' progress bars (``None``: on a terminal). ``input`` may
    name a Hub data set (``hf://datasets/...``).

    ``trace``: one row per input record that did not reach ``output``, with the step that
    dropped it (``read`` for records that could not be read) and why; every input record is
    either in ``output`` or in the trace, once (see :mod:`entrosel.io.trace`).
    ``kept_ids``/``removed_ids``: the ids of both, one per row.

    The input is read once; each step is handed the records the steps before it kept and
    leaves only small files (positions kept, scores, a report); the records are written
    once, to ``output``."""
    t0 = time.perf_counter()
    recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    reading = recipe.reading
    if on_error is not None:
        check_params({"on_error": on_error}, {"on_error": _TOP["on_error"]})
        reading = {**reading, "on_error": on_error}
    recipe = dataclasses.replace(recipe, reading=reading, progress=progress)
    source = input if input is not None else recipe.input
    target = output if output is not None else recipe.output
    if source is None:
        raise InputError("no input: give INPUT or put 'input:' in the recipe", recipe.path)
    if target is None and not dry_run:
        raise InputError("no output: give -o OUTPUT or put 'output:' in the recipe", recipe.path)
    hub = hub_name(str(source), recipe.reading.get("input_format"))
    if hub is not None:
        source = str(hub)
    else:
        source = Path(source)
        if not source.exists():
            raise InputError("no such file or folder", source)
    if target is not None:
        output_format_for(target)
    log = DropLog(trace, kept_ids, removed_ids)
    work = Path(work_dir or recipe.work_dir or f"{target}.steps")
    planned = _plan(recipe, source, work)
    echo = echo or (lambda line: None)
    records: RecordSet | None = None
    if not dry_run:
        rejects = Rejects(recipe.reading.get("on_error", "raise"))
        records = RecordSet.read(source, recipe.reading.get("input_format"), rejects, progress)
        work.mkdir(parents=True, exist_ok=True)  # only once the input reads: a bad one leaves nothing
        rejects.write(work / "00-input.rejects.jsonl")
        if log.wanted:
            log_run(log, {}, [], {row["index"]: rejected_removal(row) for row in rejects.rejected}, "read", 0)
    given = _digest({"input": _content(source), "reading": recipe.reading})
    lines, plan, cached, ran, known = [], [], 0, 0, True
    for item in planned:
        step, kind = item.step, STEPS[item.step.kind]
        fingerprint = _fingerprint(item, given) if known else None
        marker = _done(item, fingerprint) if fingerprint else None
        opts = ", ".join(f"{k}: {json.dumps(v)}" for k, v in step.options.items())
        made = _made(kind, item.files, step)
        plan.append(f"{step.number}. {step.kind} {{{opts}}} -> {made[0]} [{'cached' if marker else 'to run'}]")
        if dry_run:  # what a step is given is known only once the steps before it are done
            known = known and marker is not None
            if known and kind.makes == "records":
                given = _digest({"given": given, "kept": marker["kept"]})
            continue
        drops = None
        if marker is not None:
            kept = np.load(item.files.path("kept.npy")).tolist() if kind.makes == "records" else None
            line = f"entrosel run: {step.label} cached -> {made[0]}"
            cached += 1
        else:
            scoped = Step(step.number, step.kind, dict(step.options), step.line, step.option_lines)
            scoped.options.update({name: str(path) for name, path in item.extras.items()})
            # what the step may resume from if this run is killed: kept under the step's
            # fingerprint, so a changed step never continues another's state
            fingerprint = fingerprint or _fingerprint(item, given)
            state = item.files.path(f"state-{fingerprint[:16]}")
            for stale in item.files.stem.parent.glob(item.files.stem.name + ".state-*"):
                if stale != state:
                    shutil.rmtree(stale, ignore_errors=True)
            result = kind.run(records, item.files, scoped, recipe, state)
            kept, line = result.kept, result.line
            if log.wanted and result.drops is not None:
                drops = result.drops()
                _write_drops(drops, item.files.path("drops.jsonl"))
            else:  # one from an earlier run would no longer hold
                item.files.path("drops.jsonl").unlink(missing_ok=True)
            if kind.makes == "records":
                with atomic_path(item.files.path("kept.npy")) as tmp, open(tmp, "wb") as f:
                    np.save(f, np.asarray(kept, dtype=np.int64))
            with atomic_path(item.files.path("done.json")) as tmp:
                tmp.write_text(json.dumps({
                    "fingerprint": fingerprint, "step": step.kind, "options": step.options,
                    "files": [str(p) for p in made], "summary": line,
                    "kept": _digest(kept) if kept is not None else None}, indent=1) + "\n")
            shutil.rmtree(state, ignore_errors=True)  # the marker and the positions hold the result now
            ran += 1
        if kept is not None:
            if log.wanted:
                _log_step(log, records, kept, drops, item, marker)
            records = records.take(kept)
            given = _digest({"given": given, "kept": _digest(kept)})
        if records is not None:
            records.release()  # what the next step reads it maps again, from the page cache
        lines.append(line)
        echo(line)
    if dry_run:
        return RunResult(None, lines, cached, ran, None, time.perf_counter() - t0, plan)
    n = write_records(records, target, like=source)
    if log.wanted:
        for record in records:
            log.keep(record_id(record))
        log.write()
    return RunResult(Path(target), lines, cached, ran, n, time.perf_counter() - t0, plan, log.note())


def _write_drops(drops: dict[int, Removal], path: Path) -> None:
    """A step's removals by position, for a later traced run that finds the step cached."""
    rows = ({"position": p, **{k: v for k, v in dataclasses.asdict(r).items() if v is not None}}
            for p, r in sorted(drops.items()))
    write_records(rows, path)


def _cached_drops(item: PlannedStep, marker: dict[str, Any] | None) -> dict[int, Removal]:
    """The removals of a step that did not run now: its drops file; for a step cached by an
    untraced run, what its files say (a filter's removed rows, any step's bad records)."""
    from entrosel.io.readers import read_records

    drops, rejects, removed = (item.files.path(name)
                               for name in ("drops.jsonl", "rejects.jsonl", "removed.jsonl.gz"))
    if drops.exists() and drops.stat().st_size:
        fields = {f.name for f in dataclasses.fields(Removal)}
        return {r.data["position"]: Removal(**{k: v for k, v in r.data.items() if k in fields})
                for r in read_records(drops)}
    out: dict[int, Removal] = {}
    if rejects.exists():
        out.update((r.data["index"], rejected_removal(r.data)) for r in read_records(rejects))
    if removed.exists() and removed.stat().st_size:
        for r in read_records(removed):
            row = r.data
            out[row["index"]] = Removal(row["reason"], row["detail"], row.get("duplicate_of"),
                                        row.get("similarity"))
    return out


def _log_step(log: DropLog, records: RecordSet, kept: list[int],
              drops: dict[int, Removal] | None, item: PlannedStep,
              marker: dict[str, Any] | None) -> None:
    """Trace the records of ``records`` (a step's input) that the step did not pass on."""
    if drops is None:
        drops = _cached_drops(item, marker)
    gone = set(range(len(records))).difference(kept)
    if not gone:
        return
    summary = (marker or {}).get("summary", "")
    removals, ids = {}, {}
    for p in gone:
        r = drops.get(p) or Removal("not_kept", f"not passed on by {item.step.kind} (the step was "
                                                f"cached by a run without --trace: {summary})")
        if r.duplicate_of is not None:
            dup = records[r.duplicate_of]
            ids[dup.index] = record_id(dup)
            r = dataclasses.replace(r, duplicate_of=dup.index)
        record = records[p]
        ids[record.index] = record_id(record)
        removals[record.index] = r
    log_run(log, ids, [], removals, item.step.kind, item.step.number)


# ---- command line -------------------------------------------------------------------------------

def _cmd_run(a: argparse.Namespace) -> int:
    echo = (lambda line: print(line, file=sys.stderr))
    result = run_recipe(a.recipe, a.input, a.output, a.work_dir, a.dry_run, echo=echo,
                        on_error=a.on_error, progress=a.progress, **drop_outputs(a))
    if a.dry_run:
        print(f"plan of {a.recipe}:")
        for line in result.plan:
            print("  " + line)
        return 0
    note = f" ({result.note})" if result.note else ""
    print(f"entrosel run: {len(result.lines)} steps ({result.ran} run, {result.cached} cached), "
          f"{result.records:,} records in {result.seconds:.1f}s -> {result.output}{note}", file=sys.stderr)
    return 0


def add_run_parser(verbs: Any) -> None:
    """``entrosel run``: hooked into :func:`entrosel.cli.build_parser`."""
    p = verbs.add_parser("run", help="run a recipe: filter, dedup, score and select steps, cached",
                         description="Run the steps of a YAML recipe in order (" + ", ".join(steps())
                                     + "). Each step's output is cached under the work folder "
                                       "by the hash of its input and options; a rerun resumes "
                                       "at the first unfinished step.")
    p.add_argument("recipe", metavar="RECIPE.yaml", help="the recipe (e.g. recipes/sft-default.yaml)")
    p.add_argument("input", nargs="?", help="the pool (default: the recipe's input)")
    p.add_argument("-o", "--output", help="final records (default: the recipe's output)")
    p.add_argument("--work-dir", metavar="DIR",
                   help="step outputs and completion markers (default: OUTPUT.steps)")
    p.add_argument("--dry-run", action="store_true", help="print the plan (cached or to run) and stop")
    p.add_argument("--on-error", choices=("raise", "skip"),
                   help="on a bad record: stop with file:line: reason, or skip it and write it to a "
                        "step's OUTPUT.rejects.jsonl (default: the recipe's on_error, else raise)")
    drop_options(p)
    progress_option(p)
    p.set_defaults(run=_cmd_run)


def _cmd_explain(a: argparse.Namespace) -> int:
    from entrosel.io.trace import explain

    print(explain(a.record, a.trace))
    return 0


def add_explain_parser(verbs: Any) -> None:
    """``entrosel explain``: hooked into :func:`entrosel.cli.build_parser`."""
    p = verbs.add_parser("explain", help="why a record was dropped: its row in a --trace file",
                         description="Print one record's story from a trace written by --trace "
                                     "(filter, select, run): the step that dropped it and why, "
                                     "or that the trace does not list it (it was kept).")
    p.add_argument("record", metavar="ID", help="the record's id: its 'id' field, else its input index")
    p.add_argument("--trace", required=True, metavar="FILE", help="the trace (.jsonl or .parquet)")
    p.set_defaults(run=_cmd_explain)
