"""The command line's options, defined once: the shared option groups every verb takes
(reading the input, compression, running, engines, LM scoring) and the flags of a
registered class, built from its fields (:func:`entrosel.params.option`: help, default and
allowed values are written there, and only there)."""
from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any, Iterator

from entrosel.io.readers import INPUT_FORMATS
from entrosel.params import flag

# the option groups a registered class may ask for (its ``option_groups``), by name
GROUP_TITLES = {"input": "reading the input", "compression": "compression",
                "lm": "scoring with the language model", "engine": "scaling out",
                "method": "method settings", "budget": "the budget (one of)", "order": "order",
                "exact": "exact duplicates (always)", "near": "near duplicates (MinHash LSH)"}


def unescape(template: str | None) -> str | None:
    """Shells pass "\\n" through literally; templates almost always mean a newline."""
    return None if template is None else template.replace("\\n", "\n").replace("\\t", "\t")


def input_output(p: argparse.ArgumentParser, input_help: str | None = None,
                 output_help: str | None = None, output_metavar: str | None = None) -> None:
    """The INPUT positional and the required -o/--output every writing verb takes."""
    p.add_argument("input", help=input_help or "the pool: a data file or folder (see --input-format)")
    p.add_argument("-o", "--output", required=True, metavar=output_metavar,
                   help=output_help or "where to write the result (format from the extension)")


def input_options(parser: argparse.ArgumentParser, on_error: bool = True) -> None:
    """How to read the input; ``on_error=False`` for verbs that refuse any bad record."""
    g = parser.add_argument_group(GROUP_TITLES["input"])
    g.add_argument("--input-format", choices=INPUT_FORMATS,
                   help="input format (default: from the extension; a folder is a HF dataset, or a "
                        "folder of shard files read in name order as one data set)")
    text = g.add_mutually_exclusive_group()
    text.add_argument("--text-field", metavar="NAME", help="take each record's text from this field")
    text.add_argument("--template", metavar="TEMPLATE", type=unescape,
                      help="render each record with a str.format template, e.g. '{instruction}\\n{output}'")
    if not on_error:
        return
    g.add_argument("--on-error", choices=("raise", "skip"), default="raise",
                   help="on a bad record: stop with file:line: reason (raise, default), or skip it "
                        "and write it to OUTPUT.rejects.jsonl (skip)")


def field_options(parser: Any, cls: type, group: str | None = None, unset_none: bool = False) -> None:
    """The flags of ``cls``'s fields that belong to ``group`` (``None``: the class's own).
    ``unset_none``: a flag not given parses as ``None`` (the class's default then applies,
    and the command can tell what was given); the help still names the default."""
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if not f.init or not meta.get("cli", True) or meta.get("group") != group:
            continue
        param = meta.get("param")
        default = None if f.default is dataclasses.MISSING else f.default
        flags = (flag(f.name), *meta.get("flags", ()))
        help_ = meta.get("help", "")
        if param is not None and param.kind is bool:
            if default is True:  # a switch that is on: the flag turns it off
                parser.add_argument(f"--no-{f.name.replace('_', '-')}", dest=f.name,
                                    action="store_false", help=help_,
                                    default=None if unset_none else True)
            else:
                parser.add_argument(*flags, dest=f.name, action="store_true", help=help_,
                                    default=None if unset_none else False)
            continue
        kwargs: dict[str, Any] = {"dest": f.name, "default": None if unset_none else default}
        if param is not None and param.choices is not None:
            kwargs["choices"] = param.choices
        else:
            kwargs["metavar"] = meta.get("metavar")
            kind = param.kind if param is not None else str
            kwargs["type"] = unescape if f.name == "template" else kind
        one_of = isinstance(parser, argparse._MutuallyExclusiveGroup)  # the group is required
        if not one_of and (meta.get("required") or (param is not None and param.required)):
            kwargs["required"] = True
        elif default is not None and "(default" not in help_:
            help_ += f" (default: {default})"
        parser.add_argument(*flags, help=help_, **kwargs)


def step_parsers(verbs: Any, verb: str, registry: Any, *, help: str, description: str, dest: str,
                 metavar: str, output_help: str, unset_none: bool = False) -> Iterator[tuple[type, Any]]:
    """``entrosel VERB NAME`` for every class registered in ``registry``: each parser takes
    INPUT, ``-o`` and the class's own options; yields ``(class, parser)`` for the verb to add
    what is its own (its outputs, its engine, what it runs)."""
    parent = verbs.add_parser(verb, help=help, description=description)
    kinds = parent.add_subparsers(dest=dest, required=True, metavar=metavar)
    for name, cls in registry.items():
        # a class without a description is described by its docstring (names without reST quoting)
        about = cls.description or " ".join((cls.__doc__ or "").replace("``", "").split())
        p = kinds.add_parser(name, help=cls.help, description=about)
        input_output(p, output_help=output_help)
        class_options(p, cls, unset_none=unset_none)
        yield cls, p


def class_options(parser: argparse.ArgumentParser, cls: type, unset_none: bool = False) -> None:
    """A registered class's own flags, then the shared groups it names in ``option_groups``
    (``unset_none``: see :func:`field_options`)."""
    field_options(parser, cls, unset_none=unset_none)
    for group in getattr(cls, "option_groups", ()):
        if group == "input":
            input_options(parser)
        elif group == "budget":  # exactly one of them
            field_options(parser.add_mutually_exclusive_group(required=True), cls, group)
        elif group == "order":
            order_options(parser)
        elif group == "engine":
            names = tuple(f.name for f in dataclasses.fields(cls)
                          if f.metadata.get("group") == "engine" and f.name != "engine")
            engine_options(parser, workers="workers" in names, only=names)
        else:
            field_options(parser.add_argument_group(GROUP_TITLES[group]), cls, group, unset_none)


def order_options(parser: argparse.ArgumentParser) -> None:
    """``--highest`` / ``--lowest`` (older spellings ``--largest`` / ``--smallest``)."""
    order = parser.add_mutually_exclusive_group()
    order.add_argument("--highest", "--largest", dest="largest", action="store_true", default=True,
                       help="highest scores first (default; --largest is the older spelling)")
    order.add_argument("--lowest", "--smallest", dest="largest", action="store_false",
                       help="lowest scores first (--smallest is the older spelling)")


def engine_options(parser: argparse.ArgumentParser, *, workers: bool = True,
                   only: tuple[str, ...] | None = None, engine_help: str | None = None) -> Any:
    """``--engine`` and the engines' options (each says which engine takes it): all of
    them, or ``only`` these; ``workers=False`` for work that runs in one process. Returns
    the option group."""
    from entrosel.engines import ENGINES

    g = parser.add_argument_group(GROUP_TITLES["engine"])
    g.add_argument("--engine", choices=ENGINES.names(), default="local",
                   help=engine_help or "where the work runs: local processes (default), or a Ray "
                                       "cluster; the results are the same")
    seen = set() if workers else {"workers"}
    for name, cls in ENGINES.items():
        for f in dataclasses.fields(cls):
            if f.name in seen or (only is not None and f.name not in only):
                continue
            seen.add(f.name)
            meta = f.metadata
            owners = [n for n, c in ENGINES.items() if f.name in {x.name for x in dataclasses.fields(c)}]
            help_ = meta.get("help", "")
            if len(owners) < len(ENGINES):
                help_ = f"with --engine {'/'.join(owners)}: {help_}"
            param = meta.get("param")
            g.add_argument(flag(f.name), dest=f.name, type=param.kind if param else str, default=None,
                           metavar=meta.get("metavar"), help=help_)
    return g


def engine_option_names() -> tuple[str, ...]:
    """Every registered engine's options, by name, in registration order."""
    from entrosel.engines import ENGINES

    return tuple(dict.fromkeys(f.name for cls in ENGINES.values() for f in dataclasses.fields(cls)))


def engine_settings(a: argparse.Namespace) -> dict[str, Any]:
    """The engine options given on the command line (``None``: not given)."""
    return {n: getattr(a, n) for n in sorted(engine_option_names()) if hasattr(a, n)}


def shard_option(parser: Any) -> None:
    parser.add_argument("--shard", metavar="I/N",
                        help="score only shard I of N (0-based; blocks of 4096 records dealt out in "
                             "turn) into OUTPUT.shards/, skipping it if its completion marker is "
                             "there; the shard that finds all N done merges them into OUTPUT. For "
                             "Slurm job arrays: --shard $SLURM_ARRAY_TASK_ID/N")


def drop_options(parser: argparse.ArgumentParser) -> None:
    """``--trace`` and the id lists, on every verb that drops records."""
    g = parser.add_argument_group("what was dropped, and why")
    g.add_argument("--trace", metavar="FILE",
                   help="write one row per dropped input record (.jsonl or .parquet): id (its "
                        "'id' field, else its index), index, step, reason, detail with the "
                        "numbers; `entrosel explain ID --trace FILE` tells one record's story")
    g.add_argument("--write-kept-ids", dest="kept_ids", metavar="FILE",
                   help="write the kept records' ids, one per row: FILE.txt one per line, or a "
                        ".jsonl/.parquet/.csv table with an 'id' column")
    g.add_argument("--write-removed-ids", dest="removed_ids", metavar="FILE",
                   help="write the dropped records' ids (every input record not kept), in the "
                        "same forms")


def drop_outputs(a: argparse.Namespace) -> dict[str, Any]:
    """The keywords of :func:`drop_options` for the library's functions."""
    return {"trace": a.trace, "kept_ids": a.kept_ids, "removed_ids": a.removed_ids}


def progress_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", dest="progress", action="store_const", const=False,
                        default=None, help="hide the progress bar (shown on a terminal)")


def device_option(g: Any) -> None:
    g.add_argument("--device", default="auto",
                   help="cpu, cuda (or cuda:N), or auto: the GPU when PyTorch sees one (default: auto)")


def from_args(cls: type, a: argparse.Namespace) -> Any:
    """An instance of ``cls`` from the parsed options that name its fields."""
    return cls(**{f.name: getattr(a, f.name) for f in dataclasses.fields(cls)
                  if f.init and hasattr(a, f.name)})


def print_summary(verb: str, s: Any, extra: str = "") -> None:
    """The one-line summary on stderr of a verb that wrote a file."""
    rejected = f", {s.rejected} rejected -> {s.rejects_file}" if s.rejected else ""
    note = f" ({s.note})" if s.note else ""
    print(f"entrosel {verb}: {s.records:,} records{extra}{rejected} in {s.seconds:.1f}s -> {s.output}{note}",
          file=sys.stderr)
