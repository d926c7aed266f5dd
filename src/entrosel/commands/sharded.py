"""Scoring in shards: ``--shard I/N`` runs one slice (no Ray; a Slurm array task), and
``--engine ray`` runs every slice on a Ray cluster. Either way each shard writes its own
score file and completion marker (see :mod:`entrosel.engines.shards`), and once all N are
done they are merged by input index into ``SCORES``: the same bytes a local run writes.
"""
from __future__ import annotations

import heapq
import json
import os
import time
from pathlib import Path
from typing import Any, Callable

from entrosel.commands.score import RunSummary, add_info, score_compression, score_lm, score_words
from entrosel.engines.shards import (Shard, finished_count, finished_marker, marker_path,
                                     read_marker, shard_output)
from entrosel.errors import InputError
from entrosel.io.atomic import atomic_path
from entrosel.io.fingerprint import path_fingerprint
from entrosel.io.readers import read_records
from entrosel.io.records import rejects_path
from entrosel.io.writers import write_records

SCORERS: dict[str, Callable[..., RunSummary]] = {
    "compression": score_compression, "lm": score_lm, "words": score_words}
# options that change how a run goes, not what it writes
_RUN_ONLY = {"workers", "progress", "loaded"}


def _fingerprint(scorer: str, input: str | Path, options: dict[str, Any]) -> dict[str, Any]:
    """What a shard's rows depend on: the scorer, its options, and the input's (and model's)
    path and content (see :func:`entrosel.io.fingerprint.path_fingerprint`)."""
    kept = {k: v for k, v in sorted(options.items()) if k not in _RUN_ONLY}
    key = {"scorer": scorer, "input": os.path.abspath(input), **kept,
           "input_content": path_fingerprint(input)}
    if options.get("model"):
        key["model_content"] = path_fingerprint(options["model"])
    return key


def score_shard(scorer: str, input: str | Path, output: str | Path, shard: Shard,
                merge: bool = True, **options: Any) -> RunSummary:
    """Score ``shard`` of ``input`` with ``SCORERS[scorer]`` unless its marker says it is
    done; then, if every shard is done (and ``merge``), merge them into ``output``.
    ``RunSummary.records`` counts this shard's rows; ``note`` says what happened."""
    if not isinstance(input, (str, os.PathLike)):
        raise InputError("sharded scoring needs the input as a file or folder path")
    if scorer not in SCORERS:
        raise ValueError(f"unknown scorer {scorer!r}")
    key = _fingerprint(scorer, input, options)
    t0 = time.perf_counter()
    marker = finished_marker(output, shard, key)
    if marker is not None:
        summary = RunSummary(marker["records"], marker["rejected"], 0.0, shard_output(output, shard),
                             bytes=marker["bytes"], note=f"shard {shard.index}/{shard.count} was already done")
    else:
        target = shard_output(output, shard)
        target.parent.mkdir(parents=True, exist_ok=True)
        summary = SCORERS[scorer](input, target, shard=shard, **options)
        with atomic_path(marker_path(output, shard)) as tmp:
            tmp.write_text(json.dumps({"shard": shard.index, "of": shard.count, "records": summary.records,
                                       "rejected": summary.rejected, "bytes": summary.bytes,
                                       "seconds": summary.seconds, "options": key}, indent=1) + "\n")
        summary.note = f"shard {shard.index}/{shard.count}"
    done = finished_count(output, shard.count, key)
    if merge and done == shard.count:
        merged = merge_shards(output, shard.count)
        summary.note += f"; all {shard.count} shards done, {merged.records:,} rows merged -> {output}"
    else:
        summary.note += f"; {done} of {shard.count} shards done"
    summary.seconds = time.perf_counter() - t0
    return summary


def merge_shards(output: str | Path, count: int) -> RunSummary:
    """Merge the ``count`` finished shards of ``output`` by input index into ``output`` (and
    their rejects and metadata beside it)."""
    t0 = time.perf_counter()
    shards = [Shard(i, count) for i in range(count)]
    markers = [read_marker(output, s) for s in shards]
    missing = [s.index for s, m in zip(shards, markers) if m is None]
    if missing:
        raise InputError(f"shards {missing[:10]} of {count} have not finished; run them "
                         f"(--shard I/{count}) before merging", output)
    options = markers[0]["options"]
    stale = [s.index for s, m in zip(shards, markers) if m["options"] != options]
    if stale:
        raise InputError(f"shards {stale[:10]} of {count} were scored from another version of the "
                         f"input or model than shard 0; run them again (--shard I/{count})", output)
    rows = list(heapq.merge(*([r.data for r in read_records(shard_output(output, s))]
                              for s, m in zip(shards, markers) if m["records"] > 0),
                            key=lambda row: row["index"]))
    if options["scorer"] == "lm":  # a standardized info is over the whole pool, not one shard
        add_info(rows, options.get("info_lm", "mean"), options.get("standardize", False))
    write_records(rows, output)
    meta = Path(f"{shard_output(output, shards[0])}.meta.json")
    if meta.exists():
        with atomic_path(f"{output}.meta.json") as tmp:
            tmp.write_text(meta.read_text())
    rejected = list(heapq.merge(*(_rejects_of(output, s) for s in shards), key=lambda r: r["index"] or 0))
    rejects_file = None
    if rejected:
        rejects_file = rejects_path(output)
        write_records(rejected, rejects_file)
    return RunSummary(len(rows), len(rejected), time.perf_counter() - t0, Path(output), rejects_file,
                      sum(m["bytes"] for m in markers))


def _rejects_of(output: str | Path, shard: Shard) -> list[dict[str, Any]]:
    path = rejects_path(shard_output(output, shard))
    return [r.data for r in read_records(path)] if path.exists() else []


def score_on_ray(scorer: str, input: str | Path, output: str | Path, *, shards: int | None = None,
                 ray_address: str | None = None, actors: int | None = None,
                 gpus_per_actor: float = 0, **options: Any) -> RunSummary:
    """Score every shard on Ray (Ray Data ``map_batches``; for ``lm``, a pool of actors that
    each load the model once), then merge. Shards already done are skipped, so a failed
    run can be rerun. The input must be readable at the same path on every node."""
    from entrosel.engines.ray import init_ray, map_shards

    t0 = time.perf_counter()
    resources = init_ray(ray_address).cluster_resources()
    if shards is None:
        shards = max(1, int(resources.get("CPU", 1)))
    options.pop("progress", None)
    if scorer == "compression":
        options["workers"] = 1  # Ray gives each task one CPU
    work = _ShardWork(scorer, str(input), str(output), shards, options)
    setup = _ModelLoader(options) if scorer == "lm" else None
    if scorer == "lm":
        gpus_per_actor = actor_gpus(options.get("device", "auto"), gpus_per_actor, resources.get("GPU", 0))
    map_shards(shards, work, setup=setup, concurrency=actors, num_gpus=gpus_per_actor, address=ray_address)
    merged = merge_shards(output, shards)
    merged.seconds = time.perf_counter() - t0
    return merged


def actor_gpus(device: str, requested: float, cluster_gpus: float) -> float:
    """GPUs each LM actor asks Ray for: as requested, else one when the cluster has GPUs and
    ``device`` lets the model use them (auto, cuda)."""
    if requested:
        return requested
    return 1.0 if cluster_gpus and (device == "auto" or device.startswith("cuda")) else 0.0


class _ShardWork:
    """What a Ray task runs for one shard (a class so that Ray can pickle it)."""

    def __init__(self, scorer: str, input: str, output: str, count: int, options: dict[str, Any]) -> None:
        self.scorer, self.input, self.output, self.count, self.options = scorer, input, output, count, options

    def __call__(self, loaded: Any, shard: int) -> dict[str, Any]:
        extra = {"loaded": loaded} if loaded is not None else {}
        s = score_shard(self.scorer, self.input, self.output, Shard(shard, self.count), merge=False,
                        progress=False, **self.options, **extra)
        return {"shard": shard, "records": s.records, "bytes": s.bytes}


class _ModelLoader:
    """Loads the LM once per Ray actor."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options

    def __call__(self) -> tuple[Any, Any]:
        from entrosel.scoring.lm import load_causal_lm, resolve_device

        o = self.options
        return load_causal_lm(o["model"], o.get("gguf_file"), resolve_device(o.get("device", "auto")),
                              o.get("dtype", "auto"))


def score(scorer: str, input: Any, output: str | Path, *, engine: str = "local",
          shard: Shard | str | None = None, ray_address: str | None = None,
          shards: int | None = None, actors: int | None = None, gpus_per_actor: float = 0,
          **options: Any) -> RunSummary:
    """``entrosel score SCORER``: :func:`score_compression`, :func:`score_lm` or
    :func:`score_words` (``options`` are theirs) on the local machine, on one ``shard``
    (``"I/N"``), or on Ray (``engine="ray"``, all shards, then merged)."""
    if scorer not in SCORERS:
        raise InputError(f"unknown scorer {scorer!r}; choose one of {', '.join(SCORERS)}")
    if engine not in ("local", "ray"):
        raise InputError(f"--engine must be local or ray, not {engine!r}")
    if isinstance(shard, str):
        shard = Shard.parse(shard)
    if engine != "ray":
        ray_only = {"--ray-address": ray_address, "--shards": shards, "--actors": actors,
                    "--gpus-per-actor": gpus_per_actor or None}
        given = [flag for flag, value in ray_only.items() if value is not None]
        if given:
            raise InputError(f"{', '.join(given)} {'is' if len(given) == 1 else 'are'} for "
                             "--engine ray; add --engine ray or drop "
                             f"{'it' if len(given) == 1 else 'them'}")
    if engine == "ray":
        if shard is not None:
            raise InputError("--shard runs one slice without Ray; --engine ray runs them all: "
                             "give one of the two")
        return score_on_ray(scorer, input, output, shards=shards, ray_address=ray_address,
                            actors=actors, gpus_per_actor=gpus_per_actor, **options)
    if shard is not None:
        return score_shard(scorer, input, output, shard, **options)
    return SCORERS[scorer](input, output, **options)
