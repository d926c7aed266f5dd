"""Saving and restoring a selection's state between rounds, atomically.

A run killed at any point (SIGKILL included) leaves either the previous round's state or
the new one, never half of one, so ``--resume`` continues exactly where it stood.
"""
from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from entrosel.errors import InputError
from entrosel.io.atomic import atomic_path

STATE_FILE = "state.npz"
META_FILE = "meta.json"


@dataclass
class ZipState:
    """Everything the greedy loop needs to go on: global scores, the live mask and the
    selection so far (pool positions with their round and stage ratios)."""

    scores: np.ndarray
    live: np.ndarray
    selected: list[int] = field(default_factory=list)
    rounds: list[int] = field(default_factory=list)
    stage2: list[float] = field(default_factory=list)
    stage3: list[float] = field(default_factory=list)
    tokens: int = 0
    round: int = 0
    done: bool = False


class Checkpoint:
    """A folder holding one run's state and the fingerprint of its input and options."""

    def __init__(self, folder: str | Path, fingerprint: dict[str, Any]) -> None:
        self.folder = Path(folder)
        self.fingerprint = fingerprint

    @property
    def exists(self) -> bool:
        return (self.folder / STATE_FILE).exists()

    def load(self) -> ZipState:
        meta_path = self.folder / META_FILE
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(f"unreadable checkpoint metadata ({e}); remove the folder to start over",
                             meta_path) from None
        if meta.get("fingerprint") != self.fingerprint:
            changed = sorted(k for k in set(meta.get("fingerprint", {})) | set(self.fingerprint)
                             if meta.get("fingerprint", {}).get(k) != self.fingerprint.get(k))
            raise InputError("checkpoint was made with other input or options (differs in: "
                             f"{', '.join(changed)}); use another --checkpoint folder or the "
                             "same input and options", self.folder)
        with np.load(self.folder / STATE_FILE) as z:
            return ZipState(scores=z["scores"].copy(), live=z["live"].copy(),
                            selected=z["selected"].tolist(), rounds=z["rounds"].tolist(),
                            stage2=z["stage2"].tolist(), stage3=z["stage3"].tolist(),
                            tokens=int(z["tokens"]), round=int(z["round"]), done=bool(z["done"]))

    def save(self, state: ZipState) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        np.savez(buf, scores=state.scores, live=state.live,
                 selected=np.asarray(state.selected, dtype=np.int64),
                 rounds=np.asarray(state.rounds, dtype=np.int64),
                 stage2=np.asarray(state.stage2, dtype=np.float64),
                 stage3=np.asarray(state.stage3, dtype=np.float64),
                 tokens=state.tokens, round=state.round, done=state.done)
        # Metadata first: a state file is only ever read beside the metadata that made it.
        with atomic_path(self.folder / META_FILE) as tmp:
            tmp.write_text(json.dumps({"fingerprint": self.fingerprint}, indent=1))
        with atomic_path(self.folder / STATE_FILE) as tmp:
            with open(tmp, "wb") as f:
                f.write(buf.getbuffer())
                f.flush()
                os.fsync(f.fileno())
