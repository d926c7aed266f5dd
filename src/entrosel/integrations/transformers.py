"""The entropy law inside a Hugging Face ``Trainer`` run: :class:`EntropyLawCallback`.

``law measure``, ``law track`` and ``law check`` run beside training; this callback runs the same
measurement and the same rule inside it, so that the warning reaches the trainer's own log:

- **on train begin**, R of the training data (rendered as ``entrosel measure`` renders records),
  judged against the history's earlier versions by the ``law check`` rule;
- **once the first epoch ends** (or the set ``fraction`` of it), L, the mean of the training
  losses the trainer logged within it (as ``law track --trainer-state`` reads a
  ``trainer_state.json``); the version (name, time, R, L, records, content hash) is appended to
  the history, which ``law check`` and ``law report`` read as they read ``law track``'s, and
  judged again with L.

A flagged version is logged as a warning; with ``on_risk="stop"`` the run also stops (the
Trainer ends after the step under way). It works under TRL's trainers (they subclass
``Trainer``), with gradient accumulation (L is made of the losses the trainer logs, one per
optimizer step), with several processes (each one measures and judges, so that all stop
together; only the main process writes the history and logs) and with resumed runs (a version
already in the history with the same name and content hash is not appended again).

Needs the ``[transformers]`` extra (``pip install 'entrosel[transformers]'``).
"""
from __future__ import annotations

import datetime as dt
import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from entrosel.commands.law import _check_history_name
from entrosel.commands.measure import measure_one
from entrosel.errors import InputError
from entrosel.formats.render import Renderer, detect_record_format
from entrosel.formats.serialize import SERIALIZATIONS
from entrosel.law.check import Verdict, check_sigma, check_version
from entrosel.law.history import Version, load_history, save_history
from entrosel.law.trainer_state import logged_loss
from entrosel.params import Param, check_params
from entrosel.pool import Source
from entrosel.scoring.compression import Compressor

try:
    from transformers import Trainer, TrainerCallback
except ImportError:  # pragma: no cover - the extra is missing
    raise InputError("EntropyLawCallback needs transformers: pip install 'entrosel[transformers]'") from None

__all__ = ["EntropyLawCallback"]

logger = logging.getLogger(__name__)

_PARAMS = {"name": Param(str, required=True), "on_risk": Param(str, choices=("warn", "stop")),
           "fraction": Param(float, low=0, low_open=True, high=1),
           "serialize": Param(str, choices=SERIALIZATIONS)}
# The columns each record format renders from (entrosel.formats.render)
_FORMAT_COLUMNS = {"sharegpt": ("conversations",), "messages": ("messages",),
                   "alpaca": ("instruction", "input", "output"), "text": ("text",)}
_DESCRIBE = {"sharegpt": "chat 'conversations'", "messages": "chat 'messages'",
             "alpaca": "'instruction'/'input'/'output'", "text": "the 'text' column"}
_DECODE_BATCH = 256
_FRAMES = 8  # how far up the call stack the trainer that calls this callback is looked for
_KEY = "entropy_law/"  # prefix of the values logged through the trainer


class EntropyLawCallback(TrainerCallback):
    """Check a data version by the entropy law while a ``transformers.Trainer`` trains on it.

    Parameters
    ----------
    history : a ``.json`` or ``.csv`` history (as ``entrosel law track`` writes; created when
        it does not exist yet).
    name : the version's name in the history.
    on_risk : ``"warn"`` (default) logs a flagged version as a warning; ``"stop"`` also sets
        ``control.should_training_stop``, with a message that names the rule that fired.
    fraction : L is measured over the training losses logged within this fraction of the first
        epoch (default 1: the whole first epoch); for long epochs. Use one fraction for all the
        versions of a history.
    sigma : k in the rule (as ``law check --sigma``).
    dataset : the records to measure R over (a path, a list of dicts, a pandas DataFrame or a
        Hugging Face ``Dataset``), when they are not the trainer's ``train_dataset``; for
        instance the raw records before tokenizing.
    text_field, template, input_format : how records become text, as on the command line.
    serialize, compressor, level : how R is measured, as ``entrosel law track`` does it
        (``text``, ``zlib`` at level 9 by default). The history does not record them: measure
        every version of one history the same way (``compressor="lzma"`` sees duplicates far
        apart, which zlib's 32 KiB window does not).

    Which data R is measured over (:attr:`measured_from_` says it, and the log repeats it):
    ``dataset`` when given; otherwise the trainer's ``train_dataset`` (before the Trainer drops
    the columns the model does not take): with ``text_field`` or ``template``, that; else the
    first record format found in its columns, as ``entrosel measure`` renders it (ShareGPT
    ``conversations``, chat ``messages``, Alpaca ``instruction``/``input``/``output``, a
    ``text`` column); else its token ids (``input_ids``), decoded by the trainer's tokenizer (its
    ``processing_class``, or its data collator's) with special tokens (padding, end of text)
    skipped, or, with no tokenizer, written as decimal numbers separated by spaces. A streamed
    (iterable) training set cannot be measured before it is trained on: pass ``dataset``.

    What is logged: ``entropy_law/R``, ``/records``, ``/R_limit`` and ``/risk`` (1 when flagged)
    at the start, then ``entropy_law/L``, ``/L_floor`` and ``/risk`` once L is known, through the
    trainer's ``log`` (the console, ``report_to``, ``trainer_state.json``); the verdict's text to
    the ``entrosel.integrations.transformers`` logger (a warning when a risk is flagged).

    After the run: :attr:`version_` (the :class:`~entrosel.law.history.Version` recorded),
    :attr:`verdict_` (the last :class:`~entrosel.law.check.Verdict`), :attr:`recorded_` (what
    happened to the history), :attr:`stopped_` (why the run was stopped, or ``None``).
    """

    def __init__(self, history: str | Path, name: str, *, on_risk: str = "warn", fraction: float = 1.0,
                 sigma: float = 2.0, dataset: Source | None = None, text_field: str | None = None,
                 template: str | None = None, input_format: str | None = None, serialize: str = "text",
                 compressor: str = "zlib", level: int | None = None) -> None:
        check_params({"name": name, "on_risk": on_risk, "fraction": fraction, "serialize": serialize}, _PARAMS)
        if not str(name).strip():
            raise InputError("name (the version's name in the history) is empty")
        check_sigma(sigma)
        _check_history_name(history)
        if text_field and template:
            raise InputError("give text_field or template, not both")
        Renderer(text_field, template)  # refuses a bad template now
        Compressor(compressor, level)
        load_history(history)  # a history that cannot be read is refused before training
        self.history, self.name, self.on_risk = Path(history), str(name), on_risk
        self.fraction, self.sigma = float(fraction), float(sigma)
        self.dataset, self.text_field, self.template, self.input_format = dataset, text_field, template, input_format
        self.serialize, self.compressor, self.level = serialize, compressor, level
        self._reset()

    def _reset(self) -> None:
        self.version_: Version | None = None
        self.verdict_: Verdict | None = None
        self.measured_from_: str | None = None
        self.recorded_: str | None = None
        self.stopped_: str | None = None
        self._earlier: list[Version] = []
        self._trainer: Trainer | None = None
        self._done = False
        self._logging = False

    # -- the Trainer's events ---------------------------------------------------------------

    def on_train_begin(self, args, state, control, **kwargs):
        self._reset()
        self._trainer = _calling_trainer(self)
        data = self.dataset
        if data is None:
            data = self._trainer.train_dataset if self._trainer is not None else getattr(
                kwargs.get("train_dataloader"), "dataset", None)
        tokenizer = kwargs.get("processing_class")
        if tokenizer is None and self._trainer is not None:  # a collator that pads holds one
            tokenizer = getattr(self._trainer.data_collator, "tokenizer", None)
        m, self.measured_from_ = self._measure(data, tokenizer)
        versions = load_history(self.history)
        stored = self._stored(versions, m["sha256"])
        if stored is not None:  # a resumed or repeated run of a version the history holds
            self._earlier, version = versions[:stored], versions[stored]
        else:
            self._earlier = versions
            version = Version(name=self.name, time=_now(), R=m["R"], L=None, score=None,
                              records=m["records"], sha256=m["sha256"])
        self.version_ = version
        verdict = self._judge(version)
        values = {"R": version.R, "records": version.records, "R_limit": verdict.R_limit}
        self._report(args, state, control, values, verdict,
                     f"R {version.R:.4f} over {version.records:,} records ({self.measured_from_}; "
                     f"{self.serialize} serialization, {self.compressor})")
        if getattr(args, "logging_strategy", None) == "no":
            self._say(state, logging.WARNING, "the trainer logs no training loss (logging_strategy "
                      "'no'), so L cannot be measured; set logging_steps so that the first epoch logs it")
        if self._reached(state):  # resumed beyond the part of the first epoch L is measured over
            self._finish(args, state, control)
        return control

    def on_log(self, args, state, control, logs=None, **kwargs):
        # the first logged loss at or past the fraction: every loss logged within it is in
        if not self._done and not self._logging and logs and "loss" in logs and self._reached(state):
            self._finish(args, state, control)
        return control

    def on_epoch_end(self, args, state, control, **kwargs):
        # with logging per steps the epoch's last loss is logged by now; per epoch, it comes after
        if not self._done and getattr(args, "logging_strategy", None) != "epoch" and self._reached(state):
            self._finish(args, state, control)
        return control

    def on_train_end(self, args, state, control, **kwargs):
        if not self._done and self.version_ is not None:  # ended before the fraction: R only
            self._finish(args, state, control)
        self._trainer = None  # the trainer holds this callback: no cycle kept after the run
        return control

    # -- the work ---------------------------------------------------------------------------

    def _reached(self, state) -> bool:
        """Has training reached the end of the part of the first epoch L is measured over?"""
        return self.version_ is not None and (state.epoch or 0.0) >= self.fraction - 1e-9

    def _finish(self, args, state, control) -> None:
        """L from the log, the version into the history, the verdict logged."""
        self._done = True
        reached = self._reached(state)
        loss = logged_loss(state.log_history, self.fraction) if reached else None
        version = self.version_
        if loss is None:
            where = (f"the training ended at epoch {state.epoch or 0.0:.3f}, before the part of the first "
                     f"epoch L is measured over ({self.fraction:g})" if not reached else
                     f"no training loss was logged within epoch {self.fraction:g} (set logging_steps "
                     "so that it is)")
            self._say(state, logging.WARNING, f"L not measured: {where}; the version is recorded with R only")
        if version.L is None and loss is not None:
            version = Version(name=version.name, time=_now(), R=version.R, L=loss, score=version.score,
                              records=version.records, sha256=version.sha256)
        self.version_ = version
        self.recorded_ = self._record(state, version)
        verdict = self._judge(version)
        if version.L is None:  # nothing new to judge: R was judged at the start
            self._say(state, logging.INFO, f"history: {self.recorded_}")
            return
        values = {"R": version.R, "L": version.L, "L_floor": verdict.L_floor}
        self._report(args, state, control, values, verdict,
                     f"R {version.R:.4f}, L {version.L:.4f} (mean training loss within epoch "
                     f"{self.fraction:g}); history: {self.recorded_}")

    def _record(self, state, version: Version) -> str:
        """Append ``version`` to the history (main process only); say what happened."""
        if not state.is_world_process_zero:
            return "written by the main process"
        versions = load_history(self.history)
        stored = self._stored(versions, version.sha256)
        if stored is not None and (versions[stored].L is not None or version.L is None):
            return f"already in {self.history} (same name and content hash)"
        if stored is not None:  # recorded with R only before (a stopped run): L is filled in
            versions[stored] = version
            save_history(self.history, versions)
            return f"L added to the version in {self.history}"
        same = [v.name for v in versions if v.sha256 == version.sha256]
        save_history(self.history, versions + [version])
        return f"added to {self.history}" + (f" (same content as version {same[-1]!r})" if same else "")

    def _stored(self, versions: list[Version], sha256: str) -> int | None:
        """Position of the last version with this name and content hash, if the history has one."""
        hits = [i for i, v in enumerate(versions) if v.name == self.name and v.sha256 == sha256]
        return hits[-1] if hits else None

    def _judge(self, version: Version) -> Verdict:
        self.verdict_ = check_version(self._earlier + [version], sigma=self.sigma)
        return self.verdict_

    def _report(self, args, state, control, values: dict[str, Any], verdict: Verdict, what: str) -> None:
        """Log the numbers through the trainer and the verdict as text; stop on a risk if asked."""
        values = {_KEY + k: float(v) for k, v in values.items() if v is not None}
        values[_KEY + "risk"] = float(verdict.risky)
        if self._trainer is not None:
            self._logging = True
            try:
                self._trainer.log(values)
            finally:
                self._logging = False
        if verdict.risky:
            rule = f"the law check rule (sigma {self.sigma:g}) flagged it: " + "; ".join(verdict.flags)
            self._say(state, logging.WARNING, f"{what}. RISK: {rule}")
            if self.on_risk == "stop":
                control.should_training_stop = True
                self.stopped_ = f"stopped (on_risk='stop'): {rule}"
                self._say(state, logging.WARNING, "training stops: on_risk='stop'")
        else:
            against = (f"no risk against {verdict.earlier} earlier version(s)" if verdict.earlier
                       else "nothing to compare with yet")
            self._say(state, logging.INFO, f"{what}. {against}")

    def _say(self, state, level: int, message: str) -> None:
        if state.is_world_process_zero:
            logger.log(level, "entropy law, version %r: %s", self.name, message)

    def _measure(self, data: Any, tokenizer: Any) -> tuple[dict[str, Any], str]:
        """R of the training data, and a phrase saying what it was measured over."""
        options = dict(serialize=self.serialize, compressor=self.compressor, level=self.level,
                       text_field=self.text_field, template=self.template, progress=False)
        if self.dataset is not None:
            kind = "a file" if isinstance(data, (str, Path)) else "records"
            return (measure_one(data, input_format=self.input_format, **options),
                    f"{kind} given as dataset=")
        records, what = _training_records(data, tokenizer, self.text_field, self.template, self.serialize)
        return measure_one(records, **options), what


def _training_records(data: Any, tokenizer: Any, text_field: str | None, template: str | None,
                      serialize: str) -> tuple[Source, str]:
    """The records of the trainer's training set to measure, and what was used of them."""
    if data is None:
        raise InputError("the trainer has no train_dataset to measure: pass dataset= to EntropyLawCallback")
    if not (hasattr(data, "__len__") and hasattr(data, "__getitem__")):
        raise InputError(f"the training set ({type(data).__name__}) is streamed: its R cannot be measured "
                         "before training without reading it; pass dataset= (the records, a path, a "
                         "list of dicts or a Dataset) to EntropyLawCallback")
    if len(data) == 0:
        raise InputError("the training set is empty")
    first = data[0]
    if not isinstance(first, Mapping):
        raise InputError(f"a training example is a {type(first).__name__}, not a mapping of columns: "
                         "pass dataset= (the records to measure) to EntropyLawCallback")
    hf = hasattr(data, "column_names") and hasattr(data, "select_columns")
    if text_field or template:
        what = f"the {text_field!r} column" if text_field else "the template"
        if hf and text_field:
            data = data.select_columns([text_field])
        return _rows(data, hf), what
    fmt = detect_record_format(first)
    if fmt is not None:
        if hf and serialize == "text":  # the columns rendering reads: the rest need not be read
            data = data.select_columns([c for c in _FORMAT_COLUMNS[fmt] if c in data.column_names])
        return _rows(data, hf), _DESCRIBE[fmt]
    if "input_ids" in first:
        if hf:
            data = data.select_columns(["input_ids"])
        ids = (_list(row["input_ids"]) for row in _rows(data, hf))
        decode = getattr(tokenizer, "batch_decode", None)
        if decode is None:
            return ({"text": " ".join(map(str, x))} for x in ids), "token ids ('input_ids') as numbers (no tokenizer)"
        return _decoded(ids, decode), "token ids ('input_ids') decoded by the tokenizer, special tokens skipped"
    raise InputError(f"the training set has no text entrosel can find (columns: {', '.join(map(str, first))}); "
                     "it looks for conversations, messages, instruction/output, text or input_ids: name the "
                     "column with text_field=, or pass the records to measure as dataset=")


def _rows(data: Any, hf: bool):
    return data if hf else (data[i] for i in range(len(data)))


def _list(ids: Any) -> list[int]:
    return ids.tolist() if hasattr(ids, "tolist") else list(ids)


def _decoded(ids, decode):
    batch: list[list[int]] = []
    for x in ids:
        batch.append(x)
        if len(batch) == _DECODE_BATCH:
            yield from ({"text": t} for t in decode(batch, skip_special_tokens=True))
            batch = []
    if batch:
        yield from ({"text": t} for t in decode(batch, skip_special_tokens=True))


def _calling_trainer(callback: EntropyLawCallback) -> Trainer | None:
    """The Trainer whose callback handler is calling ``callback`` (its ``log`` reaches the console
    and every ``report_to`` integration), found up the call stack; ``None`` outside a Trainer."""
    frame = sys._getframe(1)
    for _ in range(_FRAMES):
        if frame is None:
            return None
        owner = frame.f_locals.get("self")
        if isinstance(owner, Trainer) and any(c is callback for c in owner.callback_handler.callbacks):
            return owner
        frame = frame.f_back
    return None


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
