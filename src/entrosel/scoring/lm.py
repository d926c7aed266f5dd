"""Description length of samples under a causal language model (the ``[lm]`` extra).

Per sample, over its scored tokens t_1..t_n: ``tokens`` (n), ``nll_mean`` (nats per token),
``bits`` (-sum log2 q, the description length) and ``perplexity`` (exp nll_mean).

- Which tokens are scored: with a BOS token the tokenizer knows, it is prepended and every
  token of the text is scored; otherwise the first token (which has no context) is not.
  With ``target="response"`` only the tokens inside assistant turns (Alpaca: the output)
  are scored, conditioned on everything before them.
- Batches are sorted by length and padded on the right. Under the causal mask no real
  token can see the padding after it, so no attention mask is passed (which keeps the
  fast causal attention kernels) and the padded positions are left out of the sums; a
  batched score equals the one-at-a-time score.
- Samples longer than ``max_length`` are scored in sliding windows: windows of
  ``max_length`` tokens advancing by ``stride`` (default ``max_length // 2``); each token
  is scored once, in the first window where it is among the new tokens; past the first
  window that gives it at least ``max_length - stride`` (and at most ``max_length - 1``)
  tokens of context (``tests/test_lm.py`` checks this token by token).
- The output head runs only on the positions whose next token is scored (not on padding,
  on a window's context or, with ``target="response"``, on the prompt), a slice of them at
  a time, so a large vocabulary never needs the whole ``batch x length x vocab`` logits.
  Models whose forward changes the logits after the head (soft-capping, scaling) are
  found on the first batch and scored through their own forward instead.
- GPT-2's tanh-GELU, which transformers writes as Python arithmetic, runs as PyTorch's
  fused kernel while scoring (:func:`fused_activations`).
"""
from __future__ import annotations

import contextlib
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from entrosel.errors import InputError
from entrosel.formats.render import TURN_SEPARATOR, Turn, turns_text

TARGETS = ("all", "response")
# the defaults of `score lm` and `prune` (LanguageModelScorer's fields) and of this module
BATCH_SIZE = 16
MAX_LENGTH = 1024
_RESPONSE_ROLES = {"assistant"}
_LOGIT_ROWS = 512  # positions per head + log-softmax slice (its logits stay in cache)


def _torch():
    try:
        import torch
    except ImportError:
        raise InputError("LM scoring needs the [lm] extra and PyTorch: "
                         "pip install -c constraints.txt 'entrosel[lm]' torch") from None
    return torch


def cpu_threads() -> int:
    """The cores this process may run on (the default of ``--threads``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def set_threads(threads: int | None) -> int:
    """Set PyTorch's intra-op threads to ``threads`` (``None`` or 0: every core this process
    may use); return the number set. PyTorch's own default can be lower (OMP_NUM_THREADS)."""
    torch = _torch()
    n = int(threads) if threads else cpu_threads()
    if n < 1:
        raise InputError(f"--threads must be at least 1 (0: every core), not {threads}")
    torch.set_num_threads(n)
    return n


@contextlib.contextmanager
def transformers_bars_off() -> Iterator[None]:
    """Hide transformers' own per-file progress bars (loading, saving) inside the block:
    entrosel shows its own progress, and theirs would interleave with it."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def fused_activations(model: Any) -> Iterator[None]:
    """Inside the block, transformers' tanh-GELU written as Python arithmetic (GPT-2's
    ``gelu_new``, ``gelu_fast``; five tensor operations each) runs as PyTorch's single fused
    kernel of the same formula; the modules are put back afterwards. Scores move by about
    1e-7 (transformers itself calls the two equivalent)."""
    torch = _torch()
    try:
        from transformers.activations import FastGELUActivation, NewGELUActivation
    except ImportError:
        yield
        return
    slow = (NewGELUActivation, FastGELUActivation)
    swapped = [(parent, name, child) for parent in model.modules()
               for name, child in parent.named_children() if type(child) in slow]
    for parent, name, _ in swapped:
        setattr(parent, name, torch.nn.GELU(approximate="tanh"))
    try:
        yield
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)


DEVICE = re.compile(r"auto|(cpu|cuda|mps)(:\d+)?")


def check_device(device: str) -> str:
    """Refuse a ``--device`` PyTorch would not know, before any work."""
    if not isinstance(device, str) or not DEVICE.fullmatch(device):
        raise InputError(f"--device must be cpu, cuda, cuda:N or auto, not {device!r}")
    return device


def resolve_device(device: str = "auto") -> str:
    """The device to run on: ``auto`` is the GPU when PyTorch sees one."""
    check_device(device)
    torch = _torch()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda asked for, but PyTorch sees no CUDA device")
    return device


def load_causal_lm(model: str, gguf_file: str | None = None, device: str = "cpu",
                   dtype: str = "auto") -> tuple[Any, Any]:
    """A Hugging Face causal LM and its tokenizer from a folder, a hub name or a GGUF file."""
    torch = _torch()
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError:
        raise InputError("LM scoring needs transformers: pip install 'entrosel[lm]'") from None
    path = Path(model)
    if not path.exists() and (model.startswith((".", "/", "~")) or model.count("/") > 1):
        raise InputError("no such model folder or file (a hub name looks like 'org/name')", model)
    if gguf_file is None and path.is_file() and path.suffix == ".gguf":
        model, gguf_file = str(path.parent), path.name
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    kwargs: dict[str, Any] = {"gguf_file": gguf_file} if gguf_file else {}
    try:
        with transformers_bars_off():
            tokenizer = AutoTokenizer.from_pretrained(model, **kwargs)
            lm = AutoModelForCausalLM.from_pretrained(model, dtype=getattr(torch, dtype), **kwargs)
    except (OSError, ValueError) as e:
        raise InputError(f"cannot load model {model!r}: {e}") from None
    lm.to(device).eval()
    return lm, tokenizer


def _in_responses(turns: Sequence[Turn], offsets: Sequence[tuple[int, int]]) -> list[bool]:
    """Per token (its character span in ``turns_text(turns)``): whether it lies inside an
    assistant turn."""
    spans, pos = [], 0
    for t in turns:
        if t.role in _RESPONSE_ROLES:
            spans.append((pos, pos + len(t.text)))
        pos += len(t.text) + len(TURN_SEPARATOR)
    return [any(a <= s and e <= b and e > s for a, b in spans) for s, e in offsets]


@dataclass
class Encoded:
    """A sample's token ids and which of them are scored."""

    ids: list[int]
    scored: list[bool]


@dataclass
class LMScorer:
    """Scores texts (or turns) with a causal LM; ``score`` returns one row per sample."""

    model: Any
    tokenizer: Any
    batch_size: int = BATCH_SIZE
    max_length: int = MAX_LENGTH
    stride: int | None = None
    target: str = "all"
    device: str = "cpu"
    _bos: int | None = field(init=False, default=None)
    _pad: int = field(init=False, default=0)
    _head_is_logits: bool | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise InputError(f"--target must be one of {', '.join(TARGETS)}, not {self.target!r}")
        if self.max_length < 2:
            raise InputError(f"--max-length must be >= 2, not {self.max_length}")
        # a window never exceeds what the model has position embeddings for
        config = getattr(self.model, "config", None)
        limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
        if limit:
            self.max_length = min(self.max_length, int(limit))
        self.stride = self.stride or max(1, self.max_length // 2)
        if not 1 <= self.stride <= self.max_length - 1:
            raise InputError(f"--stride must be in 1..{self.max_length - 1}")
        self._bos = getattr(self.tokenizer, "bos_token_id", None)
        # No scored token ever sees the padding, so its id is free: one other than the
        # model's pad id keeps transformers from asking for an attention mask we do not need.
        self._pad = 1 if getattr(config, "pad_token_id", None) == 0 else 0

    # -- turning samples into ids and masks ---------------------------------------------
    def encode(self, turns: Sequence[Turn]) -> Encoded:
        return self.encode_many([turns])[0]

    def encode_many(self, samples: Sequence[Sequence[Turn]]) -> list[Encoded]:
        """Token ids and scored flags of many samples; one tokenizer call for all of them
        (a fast tokenizer spreads the texts over its threads)."""
        if not samples:
            return []
        response = self.target == "response"
        batch = self.tokenizer([turns_text(turns) for turns in samples], add_special_tokens=False,
                               return_offsets_mapping=response)
        out = []
        for k, turns in enumerate(samples):
            ids = list(batch["input_ids"][k])
            scored = (_in_responses(turns, batch["offset_mapping"][k]) if response
                      else [True] * len(ids))
            if self._bos is not None:
                ids, scored = [self._bos] + ids, [False] + scored
            elif scored:
                scored[0] = False  # nothing predicts the first token
            out.append(Encoded(ids, scored))
        return out

    def _windows(self, enc: Encoded) -> list[tuple[list[int], list[bool]]]:
        """Pieces of at most ``max_length`` tokens starting every ``stride`` tokens; a piece
        scores only the tokens no earlier piece reached, so each token is scored once."""
        n, size = len(enc.ids), self.max_length
        pieces, reached = [], 0
        for begin in range(0, max(n, 1), self.stride):
            end = min(begin + size, n)
            mask = [False] * (reached - begin) + enc.scored[reached:end]
            pieces.append((enc.ids[begin:end], mask))
            reached = end
            if end == n:
                break
        return pieces

    # -- the forward passes ---------------------------------------------------------------
    def _nll_sums(self, ids, keep):
        """Per row of ``ids``: the summed negative log-probability of the next tokens where
        ``keep`` (one shorter than ``ids``) is true, in float64."""
        torch = _torch()
        rows, cols = keep.nonzero(as_tuple=True)  # position cols predicts token cols + 1
        targets = ids[rows, cols + 1]
        nll = torch.empty(targets.shape, dtype=torch.float32, device=ids.device)
        for a, logits in self._scored_logits(ids, rows, cols):
            nll[a:a + len(logits)] = torch.nn.functional.cross_entropy(
                logits, targets[a:a + len(logits)], reduction="none")
        sums = torch.zeros(len(ids), dtype=torch.float64, device=ids.device)
        return sums.index_add_(0, rows, nll.double())

    def _scored_logits(self, ids, rows, cols) -> Iterator[tuple[int, Any]]:
        """``(start, float logits)`` at positions ``(rows, cols)``, a slice at a time."""
        backbone = self.model.get_decoder() if hasattr(self.model, "get_decoder") else self.model.base_model
        head = self.model.get_output_embeddings()
        if self._head_is_logits is None:
            self._head_is_logits = self._check_head(backbone, head, ids[:1, :16])
        if self._head_is_logits:
            hidden = backbone(input_ids=ids).last_hidden_state[rows, cols]
            for a in range(0, len(rows), _LOGIT_ROWS):
                yield a, head(hidden[a:a + _LOGIT_ROWS]).float()
        else:
            logits = self.model(input_ids=ids).logits
            for a in range(0, len(rows), _LOGIT_ROWS):
                yield a, logits[rows[a:a + _LOGIT_ROWS], cols[a:a + _LOGIT_ROWS]].float()

    def _check_head(self, backbone, head, ids) -> bool:
        """Whether the model's logits are just its output head on the last hidden state.
        Some models change them after the head (Gemma 2's soft-capping, Cohere's logit
        scale); those are scored through their own forward, whole logits and all."""
        torch = _torch()
        own = self.model(input_ids=ids).logits.float()
        ours = head(backbone(input_ids=ids).last_hidden_state).float()
        return bool(torch.allclose(own, ours, rtol=1e-4, atol=1e-4))

    def score(self, samples: Iterable[Sequence[Turn]], progress: Any = None) -> list[dict[str, float]]:
        torch = _torch()
        encoded = self.encode_many(list(samples))
        pieces = [(k, ids, mask) for k, e in enumerate(encoded) for ids, mask in self._windows(e)]
        order = sorted(range(len(pieces)), key=lambda p: len(pieces[p][1]), reverse=True)
        nll = np.zeros(len(encoded), dtype=np.float64)
        count = np.zeros(len(encoded), dtype=np.int64)
        with torch.inference_mode(), fused_activations(self.model):
            for b in range(0, len(order), self.batch_size):
                batch = [pieces[p] for p in order[b:b + self.batch_size]]
                width = max(len(ids) for _, ids, _ in batch)
                ids = torch.full((len(batch), width), self._pad, dtype=torch.long)
                scored = torch.zeros((len(batch), width), dtype=torch.bool)
                for row, (_, piece, mask) in enumerate(batch):
                    ids[row, :len(piece)] = torch.tensor(piece)
                    scored[row, :len(piece)] = torch.tensor(mask, dtype=torch.bool)
                keep = scored[:, 1:]
                if keep.any():
                    sums = self._nll_sums(ids.to(self.device), keep.to(self.device)).cpu().numpy()
                    ns = keep.sum(dim=1).numpy()
                    for row, (k, _, _) in enumerate(batch):
                        nll[k] += sums[row]
                        count[k] += ns[row]
                if progress is not None:
                    progress.update(sum(len(p) for _, p, _ in batch))
        rows = []
        for k in range(len(encoded)):
            n = int(count[k])
            mean = float(nll[k] / n) if n else float("nan")
            rows.append({"tokens": n, "nll_mean": mean, "bits": float(nll[k] / math.log(2)),
                         "perplexity": math.exp(mean) if n else float("nan")})
        return rows
