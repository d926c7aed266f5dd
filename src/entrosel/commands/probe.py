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
from entrosel.formats.render import turns_text
from entrosel.io.records import Rejects, rejects_path
from entrosel.pool import InputOptions, Source, rendered_records


def probe_train(input: Source, output: str | Path, *, size: str = "tiny", epochs: int = 1,
                seed: int = 0, learning_rate: float | None = None, batch_size: int | None = None,
                device: str = "auto", input_format: str | None = None, text_field: str | None = None,
                template: str | None = None, on_error: str = "raise",
                progress: bool | None = None) -> dict[str, Any]:
    """Train the data probe on the rendered records of ``input``; see :func:`train_probe`."""
    from entrosel.probe.train import train_probe  # needs the [lm] extra
    from entrosel.scoring.lm import resolve_device

    device = resolve_device(device)
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
               budget_tokens: int | None = None, model: str | None = None, gguf_file: str | None = None,
               probe_size: str = "tiny", epochs: int = 1, seed: int = 0, target: str = "all",
               max_length: int = 1024, stride: int | None = None, batch_size: int = 16,
               device: str = "auto", dtype: str = "auto", info_lm: str = "mean",
               standardize: bool = False, scores_out: str | Path | None = None,
               input_format: str | None = None, text_field: str | None = None,
               template: str | None = None, on_error: str = "raise", engine: str = "local",
               ray_address: str | None = None, progress: bool | None = None) -> RunSummary:
    """The whole pipeline of Kim & Baek: train the probe on the pool (unless ``model`` is
    given), score every record's information content, prune the least informative.

    With ``engine="ray"`` the scoring runs on Ray (the probe trains here); its working
    folder is made beside ``output``, which must then be on storage every node sees."""
    t0 = time.perf_counter()
    read = dict(input_format=input_format, text_field=text_field, template=template)
    beside = Path(output).absolute().parent if engine == "ray" else None
    with tempfile.TemporaryDirectory(prefix="entrosel-prune-", dir=beside) as work:
        if model is None:
            model = str(Path(work) / "probe")
            probe_train(input, model, size=probe_size, epochs=epochs, seed=seed, device=device,
                        on_error="skip", progress=progress, **read)
        scores = Path(scores_out) if scores_out else Path(work) / "scores.jsonl"
        scored = score("lm", input, scores, model=model, gguf_file=gguf_file, target=target,
                       batch_size=batch_size, max_length=max_length, stride=stride,
                       device=device, dtype=dtype,
                       info_lm=info_lm, standardize=standardize, on_error=on_error,
                       progress=progress, engine=engine, ray_address=ray_address, **read)
        s = select_by_score(input, output, method="prune", scores=scores, by="info", keep=keep,
                            budget=budget, budget_tokens=budget_tokens, **read)
        rejects_file = None
        if scored.rejects_file is not None:
            rejects_file = Path(shutil.copyfile(scored.rejects_file, rejects_path(output)))
    return RunSummary(s.records, scored.rejected, time.perf_counter() - t0, Path(output), rejects_file)
