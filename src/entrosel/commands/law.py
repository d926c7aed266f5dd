"""``entrosel law measure|track|check``: R and L of data versions, their history, the warning."""
from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path
from typing import Any

from entrosel.commands.measure import measure_one
from entrosel.errors import InputError
from entrosel.law.check import Verdict, check_version
from entrosel.law.history import Version, load_history, save_history
from entrosel.law.trainer_state import first_epoch_loss
from entrosel.pool import InputOptions, Source


def law_measure(input: Source, *, serialize: str = "text", compressor: str = "zlib", level: int | None = None,
                tokenizer: str | None = None,
                probe: bool = False, probe_size: str = "tiny", seed: int = 0, device: str = "auto",
                loss: float | None = None,
                trainer_state: str | Path | None = None, input_format: str | None = None,
                text_field: str | None = None, template: str | None = None, on_error: str = "raise",
                progress: bool | None = None) -> dict[str, Any]:
    """R, records, sha256, tokens (with ``tokenizer``) and L of one set. L comes from ``loss``,
    a ``trainer_state`` file, or ``probe`` (one epoch of the data probe, same size and seed
    for every set so that the values compare)."""
    if sum(x is not None and x is not False for x in (loss, trainer_state, probe or None)) > 1:
        raise InputError("give L one way: --loss, --trainer-state or --probe")
    read = dict(input_format=input_format, text_field=text_field, template=template)
    m = measure_one(input, serialize=serialize, compressor=compressor, level=level, on_error=on_error,
                    progress=progress, **read)
    row: dict[str, Any] = {"input": m["input"], "records": m["records"], "R": m["compression_ratio"],
                           "sha256": m["sha256"], "serialize": serialize, "compressor": compressor,
                           "level": m["level"], "rejected": m["rejected"]}
    if "rejects_file" in m:
        row["rejects_file"] = m["rejects_file"]
    if tokenizer:
        from entrosel.scoring.tokens import record_token_counts

        # the records R was measured over: those the measurement rejected are passed over
        options = InputOptions(input_format, "text", text_field, template)
        row["tokens"] = int(record_token_counts(input, None, tokenizer, options).sum())
    if loss is not None:
        row["L"], row["L_from"] = float(loss), "given"
    elif trainer_state is not None:
        row["L"], row["L_from"] = first_epoch_loss(trainer_state), str(trainer_state)
    elif probe:
        from entrosel.commands.probe import probe_train

        with tempfile.TemporaryDirectory(prefix="entrosel-law-") as work:
            metrics = probe_train(input, Path(work) / "probe", size=probe_size, epochs=1, seed=seed,
                                  device=device, on_error="skip", progress=progress, **read)
        row["L"], row["L_from"] = metrics["first_epoch_loss"], f"probe {probe_size} seed {seed}"
    return row


def law_track(history: str | Path, name: str, input: Source, *, score: float | None = None,
              **measure_options: Any) -> tuple[Version, str]:
    """Append version ``name`` of ``input`` to ``history``. Returns the version and what
    happened: ``added``, or ``unchanged`` when the latest version with that name has the same
    content hash (and no new L or score to record)."""
    versions = load_history(history)
    m = law_measure(input, **measure_options)
    version = Version(name=name, time=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                      R=m["R"], L=m.get("L"), score=score, records=m["records"], sha256=m["sha256"])
    same = [v for v in versions if v.sha256 == version.sha256]
    rejected = (f"; {m['rejected']} records rejected -> {m['rejects_file']}"
                if m.get("rejected") else "")
    if same and version.L is None and score is None:
        return same[-1], f"unchanged (same content as version {same[-1].name!r}){rejected}"
    save_history(history, versions + [version])
    note = f"added (same content as version {same[-1].name!r})" if same else "added"
    return version, note + rejected


def _existing_history(history: str | Path) -> list[Version]:
    if not os.path.exists(history):
        raise InputError("no such history file; create it with `entrosel law track`", history)
    return load_history(history)


def law_check(history: str | Path, name: str | None = None, sigma: float = 2.0) -> Verdict:
    """Judge a version of ``history`` against the earlier ones (see :mod:`entrosel.law.check`)."""
    return check_version(_existing_history(history), name, sigma)


def law_report(history: str | Path, output: str | Path, sigma: float = 2.0) -> Path:
    """Write the report of ``history`` to ``output`` (.html or .md); see :mod:`entrosel.report.law`."""
    from entrosel.report.law import write_report

    return write_report(_existing_history(history), output, sigma)
