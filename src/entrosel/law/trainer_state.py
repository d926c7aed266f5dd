"""Read the entropy law's L from a training log the user already has."""
from __future__ import annotations

import json
from pathlib import Path

from entrosel.errors import InputError


def first_epoch_loss(path: str | Path) -> float:
    """Mean training loss over the first epoch from a Hugging Face ``trainer_state.json``:
    the ``loss`` entries of ``log_history`` logged at ``epoch <= 1``."""
    try:
        state = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"cannot read trainer state: {e}", path) from None
    history = state.get("log_history") if isinstance(state, dict) else None
    if not isinstance(history, list):
        raise InputError("no 'log_history' list; pass the trainer_state.json a Hugging Face "
                         "Trainer writes into each checkpoint", path)
    loss = logged_loss(history)
    if loss is None:
        raise InputError("log_history holds no training 'loss' entry within the first epoch "
                         "(set logging_steps so that the first epoch logs the loss)", path)
    return loss


def logged_loss(log_history: list, until_epoch: float = 1.0) -> float | None:
    """The mean of the training ``loss`` entries of a Trainer's ``log_history`` logged at
    ``epoch <= until_epoch`` (the entropy law's L at 1, the first epoch); ``None`` when none is.
    :func:`first_epoch_loss` and the Trainer callback both compute L here."""
    losses = [float(e["loss"]) for e in log_history
              if isinstance(e, dict) and "loss" in e and float(e.get("epoch", 0.0)) <= until_epoch + 1e-9]
    return sum(losses) / len(losses) if losses else None
