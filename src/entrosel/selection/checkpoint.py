"""Saving and restoring a selection's state between rounds, atomically.

A run killed at any point (SIGKILL included) leaves either the previous round's state or
the new one, never half of one, so ``--resume`` continues exactly where it stood.

A state damaged afterwards (a truncated copy, a full disk, flipped bits) is refused on
``--resume`` with the file named, never resumed from: the state file carries a SHA-256
of its own content and of the fingerprint it was made under, and its arrays are checked
against each other before the run goes on.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from entrosel.errors import InputError
from entrosel.io.atomic import atomic_path

STATE_FILE = "state.npz"
META_FILE = "meta.json"
# the arrays of a state file, with their kind; all but the digest go into the digest
_ARRAYS = {"scores": "f", "live": "b", "selected": "i", "rounds": "i", "stage2": "f",
           "stage3": "f", "tokens": "i", "round": "i", "done": "b"}
_DIGEST = "sha256"
_COSTS = "costs"  # lazy rescoring's last known costs: only in the states of such runs


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
    # with lazy rescoring: each sample's conditional cost when it was last scored
    costs: np.ndarray | None = None


class Checkpoint:
    """A folder holding one run's state and the fingerprint of its input and options."""

    def __init__(self, folder: str | Path, fingerprint: dict[str, Any]) -> None:
        self.folder = Path(folder)
        self.fingerprint = fingerprint

    @property
    def exists(self) -> bool:
        return (self.folder / STATE_FILE).exists()

    def load(self) -> ZipState:
        """The saved state; :class:`InputError` naming the file if it is damaged or was made
        with other input or options."""
        meta_path = self.folder / META_FILE
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InputError(f"unreadable checkpoint metadata ({e}); {self._start_over}",
                             meta_path) from None
        if not isinstance(meta, dict) or not isinstance(meta.get("fingerprint"), dict):
            raise InputError(f"checkpoint metadata holds no fingerprint of the run that made it "
                             f"(damaged or not written by entrosel); {self._start_over}", meta_path)
        if meta["fingerprint"] != self.fingerprint:
            changed = sorted(k for k in set(meta["fingerprint"]) | set(self.fingerprint)
                             if meta["fingerprint"].get(k) != self.fingerprint.get(k))
            raise InputError("checkpoint was made with other input or options (differs in: "
                             f"{', '.join(changed)}); use another --checkpoint folder or the "
                             "same input and options", self.folder)
        return self._read_state(self.folder / STATE_FILE)

    @property
    def _start_over(self) -> str:
        return f"remove the folder {self.folder} to start over"

    def _read_state(self, path: Path) -> ZipState:
        def damaged(what: str) -> InputError:
            return InputError(f"checkpoint state is damaged: {what}; {self._start_over}", path)

        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()  # reads every member: a truncated or garbled one fails
            if bad is not None:
                raise damaged(f"member {bad!r} fails its CRC-32")
            with np.load(path, allow_pickle=False) as z:
                missing = sorted((set(_ARRAYS) | {_DIGEST}) - set(z.files))
                if missing == [_DIGEST]:  # every array there, no digest: saved before digests
                    raise InputError("checkpoint saved by an entrosel older than its content "
                                     "check (no sha256 in it), so it cannot be trusted to "
                                     f"resume; {self._start_over}", path)
                if missing:
                    raise damaged(f"no {', '.join(missing)} in it")
                arrays = {name: z[name] for name in _ARRAYS}
                if _COSTS in z.files:
                    arrays[_COSTS] = z[_COSTS]
                digest = z[_DIGEST]
        except InputError:
            raise
        except Exception as e:  # whatever a damaged zip or .npy header makes them raise
            raise damaged(f"unreadable, {type(e).__name__}: {e}") from None
        if (digest.shape != () or digest.dtype.kind != "U"
                or str(digest) != _state_digest(arrays, self.fingerprint)):
            raise damaged("its content does not match the SHA-256 saved with it")
        problem = _inconsistency(arrays)
        if problem:
            raise damaged(problem)
        return ZipState(scores=arrays["scores"].copy(), live=arrays["live"].copy(),
                        selected=arrays["selected"].tolist(), rounds=arrays["rounds"].tolist(),
                        stage2=arrays["stage2"].tolist(), stage3=arrays["stage3"].tolist(),
                        tokens=int(arrays["tokens"]), round=int(arrays["round"]),
                        done=bool(arrays["done"]),
                        costs=arrays[_COSTS].copy() if _COSTS in arrays else None)

    def save(self, state: ZipState) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        arrays = {"scores": np.asarray(state.scores, dtype=np.float64),
                  "live": np.asarray(state.live, dtype=bool),
                  "selected": np.asarray(state.selected, dtype=np.int64),
                  "rounds": np.asarray(state.rounds, dtype=np.int64),
                  "stage2": np.asarray(state.stage2, dtype=np.float64),
                  "stage3": np.asarray(state.stage3, dtype=np.float64),
                  "tokens": np.asarray(state.tokens, dtype=np.int64),
                  "round": np.asarray(state.round, dtype=np.int64),
                  "done": np.asarray(state.done, dtype=bool)}
        if state.costs is not None:
            arrays[_COSTS] = np.asarray(state.costs, dtype=np.float64)
        buf = io.BytesIO()
        # The digest lives inside the state file, so it is replaced together with it.
        np.savez(buf, **arrays, **{_DIGEST: np.asarray(_state_digest(arrays, self.fingerprint))})
        # Metadata first: a state file is only ever read beside the metadata that made it.
        with atomic_path(self.folder / META_FILE) as tmp:
            tmp.write_text(json.dumps({"fingerprint": self.fingerprint}, indent=1))
        with atomic_path(self.folder / STATE_FILE) as tmp:
            with open(tmp, "wb") as f:
                f.write(buf.getbuffer())
                f.flush()
                os.fsync(f.fileno())


def _state_digest(arrays: dict[str, np.ndarray], fingerprint: dict[str, Any]) -> str:
    """SHA-256 over the fingerprint and every array's name, kind, shape and bytes."""
    h = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode())
    for name in [*_ARRAYS, *([_COSTS] if _COSTS in arrays else [])]:
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape}:".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _inconsistency(arrays: dict[str, np.ndarray]) -> str | None:
    """What makes these arrays no state of a ZIP run, or ``None``."""
    for name, kind in _ARRAYS.items():
        a = arrays[name]
        if a.dtype.kind != kind:
            return f"{name} holds {a.dtype} values"
        if a.ndim != (0 if name in ("tokens", "round", "done") else 1):
            return f"{name} has shape {a.shape}"
    n, picked = len(arrays["scores"]), len(arrays["selected"])
    if len(arrays["live"]) != n:
        return f"{len(arrays['live'])} live flags for {n} scores"
    if _COSTS in arrays and (arrays[_COSTS].dtype.kind != "f" or arrays[_COSTS].shape != (n,)):
        return f"costs of {arrays[_COSTS].dtype} and shape {arrays[_COSTS].shape} for {n} scores"
    for name in ("rounds", "stage2", "stage3"):
        if len(arrays[name]) != picked:
            return f"{len(arrays[name])} {name} entries for {picked} selected"
    selected = arrays["selected"]
    if picked and (selected.min() < 0 or selected.max() >= n):
        return f"a selected position outside the pool of {n}"
    if len(np.unique(selected)) != picked:
        return "a position selected twice"
    if arrays["live"][selected].any():
        return "a selected position still live"
    if arrays["tokens"] < 0 or arrays["round"] < 0:
        return "a negative token or round count"
    if picked and (np.any(np.diff(arrays["rounds"]) < 0) or arrays["rounds"][-1] > arrays["round"]):
        return "rounds out of order"
    return None
