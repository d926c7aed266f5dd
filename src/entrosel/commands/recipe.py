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

A step reads the previous step's records (the first reads ``input``) and writes its output
under ``work_dir`` (default ``OUTPUT.steps/``) with a completion marker holding the hash of
its input's content, its options and the reading options. A rerun skips every step whose
marker matches and resumes at the first unfinished one; changed options or data rerun that
step and the ones after it. Every registered filter, scorer and selector is a step
(``filter NAME``, ``score NAME``, ``select NAME``, with the options of its class). A ``score``
step writes a score file (the next step that reads one, ``filter score`` or ``select
prune|topk|band``, uses it unless it names ``scores``) and ``report`` the selection report of
the records so far against the recipe's input; both pass the records on unchanged. The last
records are copied to ``output``.
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

from entrosel.errors import InputError
from entrosel.filters import FILTERS
from entrosel.filters.params import Param, ParameterError, check_params
from entrosel.commands.options import progress_option
from entrosel.io.atomic import atomic_path
from entrosel.io.fingerprint import content_sha256
from entrosel.io.readers import INPUT_FORMATS, detect_format, read_records
from entrosel.io.writers import output_format_for, write_records
from entrosel.scoring import SCORERS
from entrosel.selection import SELECTORS

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
    """What a step of this kind accepts (``constraints``), checks across options, writes
    (``records``, ``scores`` or a ``report``) and runs (``run(input, output, step, recipe) -> summary line``)."""

    constraints: dict[str, Param]
    makes: str
    check: Callable[[dict[str, Any]], None]
    run: Callable[[Path, Path, Step, "Recipe"], str]
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

def _filter_kind(name: str) -> StepKind:
    cls = FILTERS[name]

    def check(options: dict[str, Any]) -> None:
        cls(**options).validate()

    def run(input: Path, output: Path, step: Step, recipe: Recipe) -> str:
        from entrosel.commands.filter import filter_to_file

        s = filter_to_file(cls(**step.options), input, output, **recipe.reading,
                           removed_out=output.with_name(step.stem + ".removed.jsonl"),
                           progress=recipe.progress)
        return s.line(step.kind)

    constraints = _step_options(cls)
    reads_scores = _needs_scores(constraints)
    if reads_scores:  # an earlier score step can supply the score file
        constraints["scores"] = Param(str)
    return StepKind(constraints, "records", check, run, reads_scores, cls.content_fields)


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


def _scorer_kind(name: str) -> StepKind:
    cls = SCORERS[name]

    def split(options: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        from entrosel.engines import make_engine

        params = {k: v for k, v in options.items() if k != "workers"}
        return params, make_engine("local", workers=options.get("workers"))

    def check(options: dict[str, Any]) -> None:
        cls(**split(options)[0]).validate()

    def run(input: Path, output: Path, step: Step, recipe: Recipe) -> str:
        params, engine = split(step.options)
        scorer = cls(**recipe.reading, **params)
        s = scorer.score_file(input, output, engine=engine, progress=recipe.progress)
        return f"entrosel {step.kind}: {s.records:,} records scored{scorer.summary(s)} in {s.seconds:.1f}s -> {output}"

    return StepKind(_step_options(cls), "scores", check, run, content_fields=cls.content_fields)


def _needs_scores(constraints: dict[str, Param]) -> bool:
    """Whether a step cannot run without a score file (``select random`` only may take one)."""
    return "scores" in constraints and constraints["scores"].required


def _selector_kind(name: str) -> StepKind:
    cls = SELECTORS[name]
    options = _step_options(cls)
    reads_scores = _needs_scores(options)
    if reads_scores:  # an earlier score step can supply the score file
        options["scores"] = Param(str)

    def check(options: dict[str, Any]) -> None:
        cls(**options).validate()

    def run(input: Path, output: Path, step: Step, recipe: Recipe) -> str:
        shows = {"progress": recipe.progress} if "progress" in {f.name for f in dataclasses.fields(cls)} else {}
        selector = cls(**recipe.reading, **step.options, **shows)
        s = selector.select_file(input, output)
        return f"entrosel {step.kind}: {s.records:,} records{selector.summary(s)} in {s.seconds:.1f}s -> {output}"

    return StepKind(options, "records", check, run, reads_scores, cls.content_fields)


_REPORT = {"by": Param(str), "tokenizer": Param(str), "format": Param(str, choices=("html", "md"))}


def _check_report(options: dict[str, Any]) -> None:
    from entrosel.report.selection import pyplot

    pyplot("the report step")  # the [report] extra, checked before any step runs


def _run_report(input: Path, output: Path, step: Step, recipe: Recipe) -> str:
    from entrosel.report.selection import selection_report

    t0 = time.perf_counter()
    options = {k: v for k, v in step.options.items() if k != "format"}
    reading = {k: v for k, v in recipe.reading.items() if k != "on_error"}
    selection_report(input, output, **options, **reading)
    return (f"entrosel {step.kind}: {input} against {step.options['pool']} in "
            f"{time.perf_counter() - t0:.1f}s -> {output}")


# every registered filter, scorer and selector is a step, written as on the command line
STEPS: dict[str, StepKind] = {}


def steps() -> dict[str, StepKind]:
    """:data:`STEPS`, with a step for every filter, scorer and selector registered now (a
    plugin imported after this module too); entries already there are kept."""
    kinds = {**{f"filter {n}": _filter_kind for n in FILTERS},
             **{f"score {n}": _scorer_kind for n in SCORERS},
             **{f"select {n}": _selector_kind for n in SELECTORS}}
    for kind in [k for k in STEPS if k != "report" and k not in kinds]:
        del STEPS[kind]  # unregistered since
    for kind, make in kinds.items():
        if kind not in STEPS:
            STEPS[kind] = make(kind.split(" ", 1)[1])
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
    input: Path
    output: Path
    marker: Path
    # files the step also reads, by option name (filter score: scores; report: pool)
    extras: dict[str, Path] = field(default_factory=dict)


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


def _plan(recipe: Recipe, input: Path, work: Path) -> list[PlannedStep]:
    suffix = ".parquet" if detect_format(input) == "parquet" else ".jsonl"
    planned, current, scores = [], input, None
    for step in recipe.steps:
        kind = STEPS[step.kind]
        ending = {"scores": ".scores.jsonl", "report": "." + step.options.get("format", "html")}
        out = work / (step.stem + ending.get(kind.makes, suffix))
        item = PlannedStep(step, current, out, work / (step.stem + ".done.json"))
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
            scores = out
        elif kind.makes == "records":
            current = out
    return planned


def _fingerprint(item: PlannedStep, recipe: Recipe) -> str:
    from entrosel import __version__

    blob = {"step": item.step.kind, "options": item.step.options, "reading": recipe.reading,
            "input": content_sha256(item.input), "version": __version__}
    for name, path in item.extras.items():
        blob[name] = content_sha256(path)
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()


def _done(item: PlannedStep, fingerprint: str) -> dict[str, Any] | None:
    """The marker of a finished step with this fingerprint, else None."""
    try:
        marker = json.loads(item.marker.read_text())
    except (OSError, ValueError):
        return None
    if marker.get("fingerprint") != fingerprint or not item.output.exists():
        return None
    return marker


def run_recipe(recipe: str | Path | Recipe, input: str | Path | None = None,
               output: str | Path | None = None, work_dir: str | Path | None = None,
               dry_run: bool = False, echo: Callable[[str], None] | None = None, *,
               on_error: str | None = None, progress: bool | None = None) -> RunResult:
    """Run (or with ``dry_run``, plan) a recipe; ``input``/``output``/``work_dir`` and
    ``on_error`` override the recipe's. ``echo`` receives each step's summary line as it
    finishes; ``progress``: the steps' progress bars (``None``: on a terminal)."""
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
    source = Path(source)
    if not source.exists():
        raise InputError("no such file or folder", source)
    if target is not None:
        output_format_for(target)
    work = Path(work_dir or recipe.work_dir or f"{target}.steps")
    planned = _plan(recipe, source, work)
    echo = echo or (lambda line: None)
    lines, plan, cached, ran, upstream_fresh = [], [], 0, 0, True
    for item in planned:
        step = item.step
        fingerprint = _fingerprint(item, recipe) if upstream_fresh and item.input.exists() else None
        marker = _done(item, fingerprint) if fingerprint else None
        opts = ", ".join(f"{k}: {json.dumps(v)}" for k, v in step.options.items())
        status = "cached" if marker else "to run"
        plan.append(f"{step.number}. {step.kind} {{{opts}}}: {item.input} -> {item.output} [{status}]")
        if dry_run:
            upstream_fresh = upstream_fresh and marker is not None
            continue
        if marker is not None:
            line = f"entrosel run: {step.label} cached -> {item.output}"
            cached += 1
        else:
            item.output.parent.mkdir(parents=True, exist_ok=True)
            scoped = Step(step.number, step.kind, dict(step.options), step.line, step.option_lines)
            scoped.options.update({name: str(path) for name, path in item.extras.items()})
            line = STEPS[step.kind].run(item.input, item.output, scoped, recipe)
            fingerprint = fingerprint or _fingerprint(item, recipe)
            with atomic_path(item.marker) as tmp:
                tmp.write_text(json.dumps({"fingerprint": fingerprint, "step": step.kind,
                                           "options": step.options, "output": str(item.output),
                                           "summary": line}, indent=1) + "\n")
            ran += 1
        lines.append(line)
        echo(line)
    if dry_run:
        return RunResult(None, lines, cached, ran, None, time.perf_counter() - t0, plan)
    last = next((p.output for p in reversed(planned) if STEPS[p.step.kind].makes == "records"), source)
    records = _publish(last, Path(target), source)
    return RunResult(Path(target), lines, cached, ran, records, time.perf_counter() - t0, plan)


def _publish(last: Path, target: Path, source: Path) -> int:
    """Put the last step's records at ``target`` (a copy, or a conversion to its format)."""
    if output_format_for(target) == detect_format(last) and last.is_file():
        with atomic_path(target) as tmp:
            shutil.copyfile(last, tmp)
        return sum(1 for _ in read_records(target))
    return write_records(read_records(last), target, like=source)


# ---- command line -------------------------------------------------------------------------------

def _cmd_run(a: argparse.Namespace) -> int:
    echo = (lambda line: print(line, file=sys.stderr))
    result = run_recipe(a.recipe, a.input, a.output, a.work_dir, a.dry_run, echo=echo,
                        on_error=a.on_error, progress=a.progress)
    if a.dry_run:
        print(f"plan of {a.recipe}:")
        for line in result.plan:
            print("  " + line)
        return 0
    print(f"entrosel run: {len(result.lines)} steps ({result.ran} run, {result.cached} cached), "
          f"{result.records:,} records in {result.seconds:.1f}s -> {result.output}", file=sys.stderr)
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
    progress_option(p)
    p.set_defaults(run=_cmd_run)
