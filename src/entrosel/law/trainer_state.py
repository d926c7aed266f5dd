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
    losses = [float(e["loss"]) for e in history
              if isinstance(e, dict) and "loss" in e and float(e.get("epoch", 0.0)) <= 1.0 + 1e-9]
    if not losses:
        raise InputError("log_history holds no training 'loss' entry within the first epoch "
                         "(set logging_steps so that the first epoch logs the loss)", path)
    return sum(losses) / len(losses)
