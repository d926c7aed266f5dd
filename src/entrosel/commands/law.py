"""``entrosel law measure|track|check``: R and L of data versions, their history, the warning."""
from __future__ import annotations

import datetime as dt
import os
import tempfile
from pathlib import Path
from typing import Any

from entrosel.commands.measure import measure_one
from entrosel.errors import InputError
from entrosel.law.check import Verdict, check_sigma, check_version
from entrosel.law.history import Version, load_history, save_history
from entrosel.law.trainer_state import first_epoch_loss
from entrosel.params import Param, check_params
from entrosel.pool import InputOptions, Source
from entrosel.probe.train import DEFAULT_SIZE, SIZES as PROBE_SIZES

# L is a mean loss in nats per token
_MEASURE = {"loss": Param(float, low=0), "probe_size": Param(str, choices=tuple(PROBE_SIZES)),
            "seed": Param(int, low=0, high=2**32 - 1), "on_error": Param(str, choices=("raise", "skip"))}
_HISTORY_SUFFIXES = (".json", ".csv")


def _check_measure_options(loss: float | None, trainer_state: str | Path | None, probe: bool,
                           probe_size: str, seed: int, device: str, on_error: str) -> None:
    """Every option of :func:`law_measure`, before the set is read."""
    if sum(x is not None and x is not False for x in (loss, trainer_state, probe or None)) > 1:
        raise InputError("give L one way: --loss, --trainer-state or --probe")
    check_params({"loss": loss, "probe_size": probe_size, "seed": seed, "on_error": on_error}, _MEASURE)
    if trainer_state is not None and not Path(trainer_state).is_file():
        raise InputError("no such file for --trainer-state (the trainer_state.json a Hugging Face "
                         "Trainer writes into each checkpoint)", trainer_state)
    if probe:
        from entrosel.scoring.lm import resolve_device

        resolve_device(device)


def _check_history_name(history: str | Path) -> None:
    if Path(history).suffix.lower() not in _HISTORY_SUFFIXES:
        raise InputError("a history file is .json or .csv (HISTORY)", history)


def law_measure(input: Source, *, serialize: str = "text", compressor: str = "zlib", level: int | None = None,
                tokenizer: str | None = None,
                probe: bool = False, probe_size: str = DEFAULT_SIZE, seed: int = 0, device: str = "auto",
                loss: float | None = None,
                trainer_state: str | Path | None = None, input_format: str | None = None,
                text_field: str | None = None, template: str | None = None, on_error: str = "raise",
                progress: bool | None = None) -> dict[str, Any]:
    """R, records, sha256, tokens (with ``tokenizer``) and L of one set. L comes from ``loss``,
    a ``trainer_state`` file, or ``probe`` (one epoch of the data probe, same size and seed
    for every set so that the values compare)."""
    _check_measure_options(loss, trainer_state, probe, probe_size, seed, device, on_error)
    read = dict(input_format=input_format, text_field=text_field, template=template)
    m = measure_one(input, serialize=serialize, compressor=compressor, level=level, on_error=on_error,
                    progress=progress, **read)
    row: dict[str, Any] = {"input": m["input"], "records": m["records"], "R": m["R"],
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
    _check_history_name(history)
    check_params({"score": score}, {"score": Param(float)})
    options = {k: measure_options.get(k, default) for k, default in (
        ("loss", None), ("trainer_state", None), ("probe", False), ("probe_size", DEFAULT_SIZE),
        ("seed", 0), ("device", "auto"), ("on_error", "raise"))}
    _check_measure_options(**options)
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
    check_sigma(sigma)
    return check_version(_existing_history(history), name, sigma)


def law_report(history: str | Path, output: str | Path, sigma: float = 2.0) -> Path:
    """Write the report of ``history`` to ``output`` (.html or .md); see :mod:`entrosel.report.law`."""
    from entrosel.report.law import write_report

    check_sigma(sigma)
    if Path(output).suffix.lower() not in (".html", ".md"):
        raise InputError("the report (-o) is .html or .md", output)
    return write_report(_existing_history(history), output, sigma)
