"""``entrosel probe train`` and ``entrosel prune``: the information-content pruning pipeline."""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from entrosel.commands.score import RunSummary
from entrosel.commands.select import select_by_score
from entrosel.commands.sharded import score
from entrosel.engines import Engine, make_engine
from entrosel.errors import InputError
from entrosel.formats.render import turns_text
from entrosel.io.records import Rejects, rejects_path
from entrosel.pool import InputOptions, Source, rendered_records
from entrosel.probe.train import DEFAULT_SIZE

# prune's own options; the probe's are entrosel.probe.train.PARAMS
def probe_train(input: Source, output: str | Path, *, size: str = DEFAULT_SIZE, epochs: int = 1,
                seed: int = 0, learning_rate: float | None = None, batch_size: int | None = None,
                device: str = "auto", input_format: str | None = None, text_field: str | None = None,
                template: str | None = None, on_error: str = "raise", threads: int | None = None,
                progress: bool | None = None) -> dict[str, Any]:
    """Train the data probe on the rendered records of ``input``; see :func:`train_probe`.
    ``threads``: PyTorch's threads on CPU (default: every core)."""
    from entrosel.probe.train import check_probe_options, train_probe  # needs the [lm] extra
    from entrosel.scoring.lm import resolve_device, set_threads

    check_probe_options(size=size, epochs=epochs, seed=seed, learning_rate=learning_rate,
                        batch_size=batch_size)
    device = resolve_device(device)
    set_threads(threads)
    options = InputOptions(input_format, "text", text_field, template, on_error)
    rejects = Rejects(on_error)
    texts = [turns_text(turns) for _, turns in rendered_records(input, options, rejects)]
    metrics = train_probe(texts, output, size=size, epochs=epochs, seed=seed, learning_rate=learning_rate,
                          batch_size=batch_size, device=device, progress=progress)
    metrics["rejected"] = len(rejects)
    written = rejects.write(rejects_path(output))
    if written is not None:
        metrics["rejects_file"] = str(written)
    return metrics


def prune_pool(input: Source, output: str | Path, *, keep: float | None = None, budget: int | None = None,
               budget_tokens: int | None = None, model: str | None = None, probe_size: str = DEFAULT_SIZE,
               epochs: int = 1, seed: int = 0, scores_out: str | Path | None = None,
               engine: str | Engine = "local", ray_address: str | None = None,
               progress: bool | None = None, **scoring: Any) -> RunSummary:
    """The whole pipeline of Kim & Baek: train the probe on the pool (unless ``model`` is
    given), score every record's information content, prune the least informative.
    ``scoring``: the fields of :class:`~entrosel.scoring.LanguageModelScorer` (``target``,
    ``max_length``, ``device``, ..., and the input fields), with its defaults.

    With a distributed engine (``engine="ray"``) the scoring runs there (the probe trains
    here); its working folder is made beside ``output``, which must then be on storage every
    node sees. Every option is checked before the probe trains; a ``budget`` above the pool's
    readable records is refused."""
    from entrosel.probe.train import check_probe_options
    from entrosel.scoring import LanguageModelScorer
    from entrosel.selection import PruneSelector

    t0 = time.perf_counter()
    read = {k: scoring[k] for k in ("input_format", "text_field", "template") if k in scoring}
    on_error = scoring.get("on_error", "raise")
    scorer = LanguageModelScorer(model=model or "the probe", **scoring).validate()
    PruneSelector(scores="scores", by="info", keep=keep, budget=budget,
                  budget_tokens=budget_tokens).validate()
    runner = make_engine(engine, ray_address=ray_address)  # an option of another engine is refused
    if model is None:
        check_probe_options(size=probe_size, epochs=epochs, seed=seed)
    if budget is not None:
        readable = sum(1 for _ in rendered_records(input, InputOptions(on_error=on_error, **read),
                                                   Rejects(on_error)))
        if budget > readable:
            raise InputError(f"--budget ({budget:,}) is above the pool's {readable:,} readable "
                             f"records; give at most {readable:,}, or --keep a fraction")
    # a distributed engine's workers read the scores' folder: beside the output, not in /tmp
    beside = Path(output).absolute().parent if runner.distributes else None
    with tempfile.TemporaryDirectory(prefix="entrosel-prune-", dir=beside) as work:
        if model is None:
            scorer.model = str(Path(work) / "probe")
            probe_train(input, scorer.model, size=probe_size, epochs=epochs, seed=seed,
                        device=scorer.device, on_error="skip", threads=scorer.threads, progress=progress,
                        **read)
        scores = Path(scores_out) if scores_out else Path(work) / "scores.jsonl"
        scored = score(scorer, input, scores, progress=progress, engine=runner)
        s = select_by_score(input, output, method="prune", scores=str(scores), by="info", keep=keep,
                            budget=budget, budget_tokens=budget_tokens, on_error=on_error, **read)
        rejects_file = None
        if scored.rejects_file is not None:
            rejects_file = Path(shutil.copyfile(scored.rejects_file, rejects_path(output)))
    return RunSummary(s.records, scored.rejected, time.perf_counter() - t0, Path(output), rejects_file)
