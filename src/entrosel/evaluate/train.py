"""One training run of ``evaluate``: a model, a subset, a fixed amount of work, a seed.

The subset's records are tokenized into one stream (each record after an end-of-text
token, as the data probe packs them) with a flag per token saying whether it is trained
on (every token, or with ``target="response"`` only the assistant turns, the SFT loss),
and cut into rows of the context length. Equal work: ``total_rows`` rows are trained on
whatever the subset's size; a larger subset is cut to its first ``total_rows`` rows, a
smaller one is cycled, each pass in a seeded random order. The training loop is the data
probe's (:func:`entrosel.probe.train.train_steps`: AdamW, 5% linear warm-up, cosine decay to
zero, gradient clipping at 1).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Sequence

from entrosel.errors import InputError
from entrosel.formats.render import Turn
from entrosel.probe.train import ProbeSize, _Batches, _torch_and_gpt2, train_steps
from entrosel.scoring.lm import LMScorer

IGNORE = -100  # the label transformers' loss leaves out


@dataclass
class Rows:
    """A subset's packed rows: ``ids`` and ``labels`` (``IGNORE`` where not trained on),
    both ``(n, context)``; ``tokens`` is the length of the stream they were cut from."""

    ids: Any
    labels: Any
    tokens: int

    def __len__(self) -> int:
        return len(self.ids)


def pack_rows(samples: Sequence[Sequence[Turn]], tokenizer: Any, context: int, target: str = "all") -> Rows:
    """The samples' tokens as one stream, end-of-text between records, cut into rows of
    ``context`` tokens (a stream shorter than a row is padded with end-of-text, untrained).
    Rows with nothing to train on (all prompt, under ``target="response"``) are dropped."""
    torch, _, _ = _torch_and_gpt2()
    # LMScorer knows which tokens are the responses; its leading BOS is replaced by the
    # end-of-text that separates records in the stream
    scorer = LMScorer(None, tokenizer, target=target)
    eos = tokenizer.eos_token_id
    ids, train = [eos], [False]
    for enc in scorer.encode_many(list(samples)):
        body, flags = (enc.ids[1:], enc.scored[1:]) if scorer._bos is not None else (enc.ids, enc.scored)
        if target == "all":
            flags = [True] * len(body)
        ids += body + [eos]
        train += flags + [bool(flags) and flags[-1]]  # end-of-text after a trained token: learn to stop
    tokens = len(ids)
    if tokens < context:
        ids += [eos] * (context - tokens)
        train += [False] * (context - tokens)
    n = len(ids) // context
    id_rows = torch.tensor(ids[: n * context], dtype=torch.long).view(n, context)
    mask = torch.tensor(train[: n * context], dtype=torch.bool).view(n, context)
    mask[:, 0] = False  # the first token of a row has no context in it
    keep = mask.any(dim=1)
    if not keep.any():
        raise InputError("no token to train on: with --target response the subset needs "
                         "assistant turns (ShareGPT gpt, messages assistant, Alpaca output)")
    labels = torch.where(mask, id_rows, torch.full_like(id_rows, IGNORE))
    return Rows(id_rows[keep], labels[keep], tokens)


def plan(n_rows: int, total_rows: int, seed: int) -> list[int]:
    """Row indices to train on, in order: passes over the first ``min(n_rows, total_rows)``
    rows, each in a seeded random order, cut at ``total_rows``."""
    torch, _, _ = _torch_and_gpt2()
    used = min(n_rows, total_rows)
    generator = torch.Generator().manual_seed(seed)
    order: list[int] = []
    while len(order) < total_rows:
        order += torch.randperm(used, generator=generator).tolist()
    return order[:total_rows]


def scratch_gpt2(tokenizer: Any, spec: ProbeSize, seed: int) -> Any:
    """The data probe's GPT-2 of ``spec``, freshly initialised for ``seed``."""
    torch, GPT2Config, GPT2LMHeadModel = _torch_and_gpt2()
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=spec.context, n_embd=spec.n_embd,
                        n_layer=spec.n_layer, n_head=spec.n_head, bos_token_id=tokenizer.bos_token_id,
                        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model = GPT2LMHeadModel(config)
    model.loss_type = "ForCausalLM"  # the class name does not tell transformers; this is its default
    return model


def fresh_copy(model: Any, seed: int) -> Any:
    """A copy of a pre-trained model to fine-tune (the original stays untouched for the next run)."""
    torch, _, _ = _torch_and_gpt2()
    torch.manual_seed(seed)  # dropout
    return copy.deepcopy(model)


def train_rows(model: Any, rows: Rows, total_rows: int, *, learning_rate: float, batch_size: int,
               seed: int, device: str = "cpu", precision: str = "auto", progress: bool | None = None,
               description: str = "training") -> dict[str, Any]:
    """Train ``model`` in place on ``total_rows`` rows of ``rows`` (see :func:`plan`), by the
    probe's training loop (:func:`entrosel.probe.train.train_steps`).

    Returns ``losses`` (each step's), ``L`` (the mean loss of the steps of the first pass,
    the entropy law's first-epoch loss), ``steps``, ``trained_tokens`` (tokens read),
    ``supervised_tokens`` (tokens whose loss is trained on, counted over the rows read) and
    ``train_seconds``.
    """
    torch, _, _ = _torch_and_gpt2()
    order = plan(len(rows), total_rows, seed)
    steps = math.ceil(len(order) / batch_size)
    first_pass = math.ceil(min(len(rows), total_rows) / batch_size)
    indices = [torch.tensor(order[step * batch_size:(step + 1) * batch_size]) for step in range(steps)]
    losses, seconds = train_steps(model, _Batches(rows.ids, rows.labels, indices), learning_rate=learning_rate,
                                  device=device, precision=precision, progress=progress,
                                  description=description)
    trained = len(order) * rows.ids.shape[1]
    # a row's first label is never a target (transformers shifts labels by one)
    supervised = int((rows.labels[torch.tensor(order)][:, 1:] != IGNORE).sum())
    return {"losses": losses, "L": sum(losses[:first_pass]) / first_pass, "steps": steps,
            "trained_tokens": trained, "supervised_tokens": supervised, "train_seconds": seconds,
            "tokens_per_s": trained / seconds if seconds > 0 else float("nan")}
