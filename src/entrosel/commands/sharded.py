"""Scoring in shards: ``--shard I/N`` runs one slice (no Ray; a Slurm array task), and
``--engine ray`` runs every slice on a Ray cluster. Either way each shard writes its own
score file and completion marker (see :mod:`entrosel.engines.shards`), and once all N are
done they are merged by input index into ``SCORES``: the same bytes a local run writes.
"""
from __future__ import annotations

import dataclasses
import heapq
import json
import os
import time
from pathlib import Path
from typing import Any

from entrosel.engines.base import Engine, make_engine
from entrosel.engines.shards import (Shard, finished_count, finished_marker, marker_path,
                                     read_marker, shard_output)
from entrosel.errors import InputError
from entrosel.io.atomic import atomic_path
from entrosel.io.fingerprint import path_fingerprint
from entrosel.io.readers import read_records
from entrosel.io.records import rejects_path
from entrosel.io.writers import output_format_for, write_records
from entrosel.scoring import SCORERS
from entrosel.scoring.base import RunSummary, Scorer


def _plain(value: Any) -> Any:
    """A hyper-parameter as JSON holds it (a path as its string, a NumPy number as Python's)."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value.item() if hasattr(value, "item") and not isinstance(value, (str, bytes)) else value


def _fingerprint(scorer: Scorer, input: str | Path) -> dict[str, Any]:
    """What a shard's rows depend on: the scorer, its hyper-parameters, and the input's (and
    model's) path and content (see :func:`entrosel.io.fingerprint.path_fingerprint`)."""
    params = {k: _plain(v) for k, v in sorted(scorer.get_params().items())}
    key = {"scorer": scorer.name, "input": os.path.abspath(input), **params,
           "input_content": path_fingerprint(input)}
    for name in scorer.content_fields:
        if getattr(scorer, name):
            key[f"{name}_content"] = path_fingerprint(getattr(scorer, name))
    return key


def score_shard(scorer: Scorer, input: str | Path, output: str | Path, shard: Shard,
                merge: bool = True, *, engine: Engine | None = None, loaded: Any = None,
                progress: bool | None = None) -> RunSummary:
    """Score ``shard`` of ``input`` with ``scorer`` unless its marker says it is done; then,
    if every shard is done (and ``merge``), merge them into ``output``.
    ``RunSummary.records`` counts this shard's rows; ``note`` says what happened."""
    if not isinstance(input, (str, os.PathLike)):
        raise InputError("sharded scoring needs the input as a file or folder path")
    output_format_for(output, "-o")  # the merge writes it: refused before any shard runs
    key = _fingerprint(scorer.validate(), input)
    t0 = time.perf_counter()
    marker = finished_marker(output, shard, key)
    if marker is not None:
        summary = RunSummary(marker["records"], marker["rejected"], 0.0, shard_output(output, shard),
                             bytes=marker["bytes"], note=f"shard {shard.index}/{shard.count} was already done")
    else:
        target = shard_output(output, shard)
        target.parent.mkdir(parents=True, exist_ok=True)
        summary = scorer.score_file(input, target, engine=engine, shard=shard, loaded=loaded,
                                    progress=progress)
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


def _scorer_of(key: dict[str, Any]) -> Scorer:
    """The scorer a shard marker's options describe."""
    cls = SCORERS[key["scorer"]]
    return cls(**{f.name: key[f.name] for f in dataclasses.fields(cls) if f.name in key})


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
    _scorer_of(options).merge(rows)  # e.g. a standardized info is over the whole pool, not one shard
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


def score_in_shards(scorer: Scorer, input: str | Path, output: str | Path, engine: Engine,
                    progress: bool | None = None) -> RunSummary:
    """Score every shard on ``engine`` (e.g. Ray Data tasks; a model-loading scorer on workers
    that each load it once), then merge. Shards already done are skipped, so a failed run
    can be rerun. The input must be readable at the same path on every node."""
    t0 = time.perf_counter()
    count = engine.shard_count()
    work = _ShardWork(scorer, str(input), str(output), count, engine.shard_engine())
    setup = scorer.load if scorer.loads_model else None
    engine.map_shards(count, work, setup=setup, wants_gpu=scorer.wants_gpu())
    merged = merge_shards(output, count)
    merged.seconds = time.perf_counter() - t0
    return merged


class _ShardWork:
    """What a distributed task runs for one shard (a class so that it pickles)."""

    def __init__(self, scorer: Scorer, input: str, output: str, count: int, engine: Engine) -> None:
        self.scorer, self.input, self.output, self.count, self.engine = scorer, input, output, count, engine

    def __call__(self, loaded: Any, shard: int) -> dict[str, Any]:
        s = score_shard(self.scorer, self.input, self.output, Shard(shard, self.count), merge=False,
                        engine=self.engine, loaded=loaded, progress=False)
        return {"shard": shard, "records": s.records, "bytes": s.bytes}


def score(scorer: str | Scorer, input: Any, output: str | Path, *, engine: str | Engine = "local",
          shard: Shard | str | None = None, workers: int | None = None,
          ray_address: str | None = None, shards: int | None = None, actors: int | None = None,
          gpus_per_actor: float | None = None, progress: bool | None = None,
          **params: Any) -> RunSummary:
    """``entrosel score NAME``: the scorer named ``scorer`` in :data:`entrosel.scoring.SCORERS`
    built from ``params`` (or a :class:`Scorer`), run here, on one ``shard`` (``"I/N"``), or
    on an engine that shards (``engine="ray"``: all shards, then merged)."""
    if isinstance(scorer, str):
        scorer = SCORERS[scorer](**params)
    elif params:
        raise InputError(f"{', '.join(params)}: set these on the scorer object, not beside it")
    scorer.validate()
    output_format_for(output, "-o")
    if not scorer.loads_model:
        given = [f for f, v in (("--actors", actors), ("--gpus-per-actor", gpus_per_actor)) if v is not None]
        if given:
            raise InputError(f"{', '.join(given)}: model replicas are for a scorer that loads a "
                             f"model (score lm), not score {scorer.name}; drop "
                             f"{'it' if len(given) == 1 else 'them'}")
    runner = make_engine(engine, workers=workers, ray_address=ray_address, shards=shards,
                         actors=actors, gpus_per_actor=gpus_per_actor)
    if isinstance(shard, str):
        shard = Shard.parse(shard)
    if runner.distributes:
        if workers is not None:
            raise InputError(f"--workers: with --engine {runner.name} each shard runs as one task "
                             "on one CPU; set how many with --shards")
        if shard is not None:
            raise InputError(f"--shard runs one slice here; --engine {runner.name} runs them all: "
                             "give one of the two")
        return score_in_shards(scorer, input, output, runner, progress)
    if shard is not None:
        return score_shard(scorer, input, output, shard, engine=runner, progress=progress)
    return scorer.score_file(input, output, engine=runner, progress=progress)
