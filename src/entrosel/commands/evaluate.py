"""``entrosel evaluate``: which subset trains the better model? (library: :func:`evaluate`)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from entrosel.errors import InputError
from entrosel.evaluate.runner import Evaluator
from entrosel.probe.train import DEFAULT_SIZE, SIZES as PROBE_SIZES


def evaluate(subsets: Sequence[str | Path] | str | Path, evals: Sequence[str | Path] | str | Path,
             output: str | Path, **options: Any) -> dict[str, Any]:
    """Train the same model the same way on each subset and measure it on the held-out
    ``evals``; write ``output``/results.json, results.csv and report.html. ``options`` are
    :class:`~entrosel.evaluate.runner.Evaluator`'s (``size``, ``model``, ``tokens``,
    ``epochs``, ``target``, ``seeds``, ``device``, ...). Returns the results."""
    if isinstance(subsets, (str, Path)):
        subsets = [subsets]
    if isinstance(evals, (str, Path)):
        evals = [evals]
    log = options.pop("log", None)
    return Evaluator(**options).run(subsets, evals, output, log=log)


def _seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seeds takes integers separated by commas, not {text!r}") from None


def _cmd_evaluate(a: argparse.Namespace) -> int:
    from entrosel.evaluate.results import format_table

    def log(message: str) -> None:
        if a.progress is not False:
            print(f"entrosel evaluate: {message}", file=sys.stderr, flush=True)

    evaluator = Evaluator(size=a.size, model=a.model, gguf_file=a.gguf_file, tokens=a.tokens, epochs=a.epochs,
                          target=a.target, seeds=a.seeds, device=a.device, learning_rate=a.learning_rate,
                          batch_size=a.batch_size, context=a.context, tokenizer_data=a.tokenizer_data,
                          rank_prompts=a.rank_prompts, rank_candidates=a.rank_candidates,
                          input_format=a.input_format, text_field=a.text_field, template=a.template,
                          threads=a.threads, precision=a.precision, progress=a.progress)
    if not a.eval:
        raise InputError("give at least one held-out set with --eval")
    results = evaluator.run(a.subsets, a.eval, a.output, log=log)
    print(format_table(results))
    runs = len(results["subsets"]) * len(results["options"]["seeds"])
    reused = f", {evaluator.reused_runs} reused from {a.output}/runs" if evaluator.reused_runs else ""
    print(f"entrosel evaluate: {len(results['subsets'])} subsets x {len(results['options']['seeds'])} seeds "
          f"= {runs} runs{reused} in {results['seconds']:.1f}s -> {a.output}/results.json, results.csv, "
          "report.html", file=sys.stderr)
    return 0


def add_evaluate_parser(verbs: Any) -> None:
    """The ``evaluate`` sub-command (cli.py adds it with one line)."""
    from entrosel.commands.options import device_option, input_options

    p = verbs.add_parser(
        "evaluate", help="which subset trains the better model? train on each, compare on held-out sets",
        description="For each SUBSET, train the same model the same way (same tokenizer, work, "
                    "schedule and seeds) and measure it on every --eval set: loss (nats/token); "
                    "multiple-choice accuracy (acc, acc_norm, as lm-evaluation-harness) for sets of "
                    "{question, choices, answer}; response ranking (true response against "
                    "--rank-candidates - 1 others, given the prompt) for sets that end in an "
                    "assistant turn. The first subset is the baseline. Writes DIR/results.json, "
                    "DIR/results.csv, DIR/report.html; finished runs are kept in DIR/runs/ and "
                    "skipped by a rerun. Needs the [lm] and [report] extras.")
    p.add_argument("subsets", nargs="+", metavar="SUBSET")
    p.add_argument("--eval", action="append", nargs="+", metavar="EVAL", default=None,
                   help="held-out set(s): loss / ranking sets, or multiple-choice sets")
    p.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="folder for results.json, results.csv, report.html and runs/ (reused by a rerun)")
    model = p.add_argument_group("the model")
    model.add_argument("--size", choices=tuple(PROBE_SIZES), default=DEFAULT_SIZE,
                       help=f"train the data probe's GPT-2 of this size from scratch (default: {DEFAULT_SIZE})")
    model.add_argument("--model", metavar="PATH_OR_NAME",
                       help="fine-tune this pre-trained causal LM instead (HF folder or .gguf file)")
    model.add_argument("--gguf-file", metavar="NAME", help="GGUF file inside the --model folder")
    model.add_argument("--tokenizer-data", metavar="FILE",
                       help="train the shared tokenizer on FILE (default: the distinct records of all "
                            "the subsets); not with --model")
    work = p.add_argument_group("the training")
    budget = work.add_mutually_exclusive_group()
    budget.add_argument("--tokens", type=int, metavar="N",
                        help="every run trains on exactly N tokens: a smaller subset is cycled, a "
                             "larger one cut (equal work)")
    budget.add_argument("--epochs", type=int, metavar="E", help="E passes over each subset (default: 1)")
    work.add_argument("--target", choices=("all", "response"), default="all",
                      help="train and measure on all tokens, or only the assistant turns (SFT loss)")
    work.add_argument("--seeds", type=_seeds, default=[0], metavar="S,S,...",
                      help="training seeds; each subset is trained once per seed (default: 0)")
    device_option(work)
    work.add_argument("--threads", type=int, help="PyTorch threads on CPU (default: every core)")
    work.add_argument("--precision", choices=("auto", "float32", "bfloat16"), default="auto",
                      help="bfloat16 autocast for training and measuring (weights stay float32); "
                           "auto: bfloat16 on GPU, float32 on CPU")
    work.add_argument("--learning-rate", type=float, help="peak learning rate (default: by size; 5e-5 with --model)")
    work.add_argument("--batch-size", type=int, help="rows per step (default: 16; 8 with --model)")
    work.add_argument("--context", type=int, help="with --model: tokens per row (default: 512)")
    measure = p.add_argument_group("the measures")
    measure.add_argument("--rank-prompts", type=int, default=100, metavar="N",
                         help="response ranking on the first N prompts of each set (default: 100; 0: off)")
    measure.add_argument("--rank-candidates", type=int, default=4, metavar="K",
                         help="responses ranked per prompt, the true one included (default: 4)")
    input_options(p, on_error=False)
    p.add_argument("--no-progress", dest="progress", action="store_const", const=False, default=None,
                   help="hide the progress bars and per-run lines")
    p.set_defaults(run=lambda a: _cmd_evaluate(_flatten(a)))


def _flatten(a: argparse.Namespace) -> argparse.Namespace:
    # --eval A B --eval C: one list
    a.eval = [e for group in (a.eval or []) for e in group]
    return a
