"""Train the data probe: a byte-level BPE tokenizer and a small GPT-2, from scratch, on a pool.

It is the reference model of information-content pruning (Kim & Baek) and gives the
entropy law's L, the mean training loss over the first epoch. The texts are rendered
records joined by the tokenizer's end-of-text token and cut into blocks of the context
length (packing); each epoch visits the blocks in a seeded random order. AdamW with a
linear warm-up (5% of the steps) and a cosine decay to zero. On CPU the same seed gives
the same model and losses.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from entrosel.errors import InputError
from entrosel.params import Param, check_params
from entrosel.io.atomic import atomic_path
from entrosel.progress import Progress
from entrosel.scoring.lm import transformers_bars_off

EOT = "<|endoftext|>"
PAD = "<pad>"


@dataclass(frozen=True)
class ProbeSize:
    vocab_size: int
    context: int
    n_embd: int
    n_layer: int
    n_head: int
    batch_size: int
    learning_rate: float


SIZES = {
    "tiny": ProbeSize(vocab_size=4096, context=128, n_embd=128, n_layer=2, n_head=4,
                      batch_size=16, learning_rate=2e-3),
    "small": ProbeSize(vocab_size=8192, context=256, n_embd=256, n_layer=4, n_head=4,
                       batch_size=16, learning_rate=1e-3),
    "base": ProbeSize(vocab_size=16384, context=512, n_embd=512, n_layer=8, n_head=8,
                      batch_size=16, learning_rate=6e-4),
}


DEFAULT_SIZE = "tiny"  # minutes on 2 CPU cores for a few MB; every verb's default


def train_tokenizer(texts: list[str], vocab_size: int):
    """A byte-level BPE tokenizer trained on ``texts``, as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[EOT, PAD], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    # BOS = EOT, as GPT-2: every text token of a scored sample then has a context
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOT, eos_token=EOT, pad_token=PAD)


def _torch_and_gpt2():
    try:
        import torch
        from transformers import GPT2Config, GPT2LMHeadModel
    except ImportError:
        raise InputError("the probe needs the [lm] extra: pip install -c constraints.txt 'entrosel[lm]'") from None
    return torch, GPT2Config, GPT2LMHeadModel


# What the probe's options may hold (seeds: what torch and numpy take)
PARAMS: dict[str, Param] = {
    "size": Param(str, choices=tuple(SIZES)), "epochs": Param(int, low=1),
    "seed": Param(int, low=0, high=2**32 - 1), "learning_rate": Param(float, low=0, low_open=True),
    "batch_size": Param(int, low=1)}


def check_probe_options(**values: Any) -> None:
    """Refuse a bad probe option (``size``, ``epochs``, ``seed``, ``learning_rate``,
    ``batch_size``; ``None``: the default) before any work: :class:`ParameterError`."""
    check_params(values, {k: PARAMS[k] for k in values})


def probe_size(size: str) -> ProbeSize:
    """The architecture and optimiser settings of ``--size``."""
    if size not in SIZES:
        raise InputError(f"--size must be one of {', '.join(SIZES)}, not {size!r}")
    return SIZES[size]


def pack_blocks(texts: list[str], tokenizer, context: int, max_blocks: int | None = None):
    """The texts' tokens, each text followed by end-of-text, cut into rows of ``context``
    tokens (packing); at most ``max_blocks`` rows. A stream shorter than one row is padded
    with end-of-text to one row. Returns ``(blocks, tokens_in_stream)``."""
    torch, _, _ = _torch_and_gpt2()
    ids: list[int] = []
    for enc in tokenizer(texts, add_special_tokens=False)["input_ids"]:
        ids.extend(enc)
        ids.append(tokenizer.eos_token_id)
    n_tokens = len(ids)
    n_blocks = max(1, n_tokens // context)
    if max_blocks is not None:
        n_blocks = min(n_blocks, max_blocks)
    if n_tokens < context:
        ids = ids + [tokenizer.eos_token_id] * (context - n_tokens)
    blocks = torch.tensor(ids[: n_blocks * context], dtype=torch.long).view(n_blocks, context)
    return blocks, n_tokens


def warmup_cosine(optimizer, total_steps: int):
    """The probe's learning-rate schedule over ``total_steps``: a linear warm-up over the
    first 5%, then a cosine decay to zero."""
    torch, _, _ = _torch_and_gpt2()
    warmup = max(1, int(0.05 * total_steps))

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total_steps - warmup)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)


PRECISIONS = ("auto", "float32", "bfloat16")


def cpu_bf16() -> bool:
    """Whether this CPU has native bfloat16 instructions (AVX512-BF16 or AMX), where
    PyTorch's oneDNN kernels run bfloat16 matrix products fast."""
    torch, _, _ = _torch_and_gpt2()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(precision: str, device: str) -> str:
    """``auto``: bfloat16 autocast on a GPU, float32 on CPU (the same numbers as before this
    option existed; bfloat16 on CPU is asked for by name: benchmarks/bench_train_speed.py
    measures its speed and its loss against float32); ``bfloat16`` on a CPU without bfloat16
    instructions is refused."""
    if precision not in PRECISIONS:
        raise InputError(f"--precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "auto":
        return "bfloat16" if device.startswith("cuda") else "float32"
    if precision == "bfloat16" and device == "cpu" and not cpu_bf16():
        raise InputError("--precision bfloat16: this CPU has no bfloat16 instructions (avx512_bf16 or amx)")
    return precision


def autocast(device: str, precision: str = "auto"):
    """bfloat16 mixed precision (weights and optimiser stay float32) when ``precision``
    resolves to bfloat16 on ``device``; nothing otherwise."""
    import contextlib

    torch, _, _ = _torch_and_gpt2()
    if resolve_precision(precision, device) == "bfloat16":
        return torch.autocast("cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_steps(model, batches: Sequence[Any], *, learning_rate: float, device: str = "cpu",
                precision: str = "auto", progress: bool | None = None,
                description: str = "training") -> tuple[list[float], float]:
    """The one training loop of the probe and of ``evaluate``: ``model`` trained in place, one
    step per ``(input_ids, labels)`` of ``batches`` (labels ``-100`` where not trained on;
    transformers shifts them by one inside). AdamW (weight decay 0.01), 5% linear warm-up
    then cosine decay to zero over ``len(batches)`` steps, gradients clipped at norm 1.
    Returns each step's loss and the seconds taken."""
    torch, _, _ = _torch_and_gpt2()
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    scheduler = warmup_cosine(optimizer, len(batches))
    losses: list[float] = []
    t0 = time.perf_counter()
    with Progress(description, total=len(batches), unit=" steps", enabled=progress) as bar:
        for ids, labels in batches:
            with autocast(device, precision):
                loss = model(input_ids=ids.to(device), labels=labels.to(device)).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            bar.update(1, postfix=f"loss {losses[-1]:.3f}")
    model.eval()
    return losses, time.perf_counter() - t0


class _Batches(Sequence):
    """Rows of ``data`` picked by each index tensor, built when the loop asks (no copy of the
    whole plan in memory)."""

    def __init__(self, data: Any, labels: Any, indices: list[Any]) -> None:
        self.data, self.labels, self.indices = data, labels, indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k):
        rows = self.indices[k]
        return self.data[rows], self.labels[rows]


def train_model(blocks, tokenizer, spec: ProbeSize, *, epochs: int = 1, seed: int = 0,
                learning_rate: float | None = None, batch_size: int | None = None,
                device: str = "cpu", precision: str = "auto", progress: bool | None = None):
    """Train a GPT-2 of ``spec`` from scratch on packed ``blocks``; return it with its metrics.

    Every epoch visits the blocks in a seeded random order (:func:`train_steps`).
    ``first_epoch_loss`` is the mean training loss of epoch one.
    """
    torch, GPT2Config, GPT2LMHeadModel = _torch_and_gpt2()
    check_probe_options(epochs=epochs, seed=seed, learning_rate=learning_rate, batch_size=batch_size)
    lr = learning_rate or spec.learning_rate
    bs = batch_size or spec.batch_size
    n_blocks = len(blocks)
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=spec.context, n_embd=spec.n_embd,
                        n_layer=spec.n_layer, n_head=spec.n_head, bos_token_id=tokenizer.bos_token_id,
                        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model = GPT2LMHeadModel(config)
    model.loss_type = "ForCausalLM"  # the class name does not tell transformers; this is its default
    steps_per_epoch = math.ceil(n_blocks / bs)
    generator = torch.Generator().manual_seed(seed)
    indices = []
    for _ in range(epochs):
        order = torch.randperm(n_blocks, generator=generator)
        indices += [order[step * bs:(step + 1) * bs] for step in range(steps_per_epoch)]
    # labels equal to the inputs: every token is trained on
    losses, _ = train_steps(model, _Batches(blocks, blocks, indices), learning_rate=lr, device=device,
                            precision=precision, progress=progress, description="training probe")
    epoch_losses = [sum(losses[e * steps_per_epoch:(e + 1) * steps_per_epoch]) / steps_per_epoch
                    for e in range(epochs)]
    metrics = {"first_epoch_loss": epoch_losses[0], "epoch_losses": epoch_losses, "losses": losses,
               "steps": len(indices), "blocks": n_blocks, "epochs": epochs, "seed": seed,
               "learning_rate": lr, "batch_size": bs, "architecture": asdict(spec)}
    return model, metrics


def evaluation_loss(model, blocks, batch_size: int = 32, device: str = "cpu") -> float:
    """Mean next-token loss (nats per token) of ``model`` over packed ``blocks``."""
    torch, _, _ = _torch_and_gpt2()
    total, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(blocks), batch_size):
            batch = blocks[start:start + batch_size].to(device)
            predicted = batch.numel() - len(batch)  # every row predicts all but its first token
            total += model(input_ids=batch, labels=batch).loss.item() * predicted
            count += predicted
    return total / count


def train_probe(texts: Iterable[str], output: str | Path, *, size: str = DEFAULT_SIZE, epochs: int = 1,
                seed: int = 0, learning_rate: float | None = None, batch_size: int | None = None,
                device: str = "cpu", precision: str = "auto", progress: bool | None = None) -> dict[str, Any]:
    """Train the probe on ``texts``; save a Hugging Face model folder with ``metrics.json``.

    Returns the metrics: the loss of every step, the mean loss of each epoch
    (``first_epoch_loss`` is the entropy law's L), tokens, blocks and seconds.
    """
    _torch_and_gpt2()  # the [lm] extra's message before the tokenizer's imports fail
    check_probe_options(size=size, epochs=epochs, seed=seed, learning_rate=learning_rate,
                        batch_size=batch_size)
    spec = probe_size(size)
    t0 = time.perf_counter()
    texts = list(texts)
    if not texts:
        raise InputError("the probe needs at least one text to train on")
    tokenizer = train_tokenizer(texts, spec.vocab_size)
    blocks, n_tokens = pack_blocks(texts, tokenizer, spec.context)
    model, trained = train_model(blocks, tokenizer, spec, epochs=epochs, seed=seed,
                                 learning_rate=learning_rate, batch_size=batch_size,
                                 device=device, precision=precision, progress=progress)
    metrics = {**trained, "tokens": max(n_tokens, spec.context), "texts": len(texts), "size": size,
               "seconds": time.perf_counter() - t0}
    with atomic_path(output) as tmp:
        with transformers_bars_off():
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    return metrics
