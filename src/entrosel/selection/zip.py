"""ZIP (Yin et al. 2024): pick a subset whose compression ratio is low, greedily.

Each round:

1. global: the K1 live samples with the lowest score (initially each sample's own ratio);
2. local coarse: rescore them against everything selected so far; these ratios overwrite
   their scores (a lazy update); the K2 lowest form a batch, which leaves the pool;
3. local fine: from an empty anchor, repeatedly take the batch sample whose addition gives
   the lowest ratio, K3 times (fewer when the batch or the budget runs out).

Scores are float64; ties go to the lower input row. Output stops exactly at the budget.
With zstd every ratio is a conditional one (long-memory ZIP, see
:mod:`entrosel.scoring.conditional`): the anchors are remembered whole, up to zstd's reach,
and past it by an index of the picks' fingerprints (exact copies; see
:class:`entrosel.scoring.anchored.PickIndex`); a selection that outgrows the reach is said
once on stderr.
See ``docs/zip.md``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from entrosel.engines import WorkerDied
from entrosel.errors import InputError
from entrosel.io.records import Rejects
from entrosel.pool import InputOptions, Pool, Source, load_pool, reusable
from entrosel.progress import Progress
from entrosel.scoring.anchored import AnchoredGroup, anchored_group, resolve_strategy
from entrosel.formats.serialize import SERIALIZATIONS
from entrosel.params import Param, option
from entrosel.scoring.compression import (COMPRESSOR_HELP, COMPRESSORS, LEVEL_HELP, SERIALIZE_HELP,
                                          Compressor, zstd_module)
from entrosel.scoring.conditional import LongMemory
from entrosel.scoring.tokens import record_token_counts
from entrosel.selection.base import SELECTORS, EngineSelector
from entrosel.selection.checkpoint import Checkpoint, ZipState

_SCORE_CHUNK = 4096
# how often a recipe's ZIP step saves its state (a kill loses at most this much work)
RESUMABLE_SAVE_EVERY_S = 30.0


class Interrupted(Exception):
    """Ctrl-C during selection; the state of the last finished round is saved (if asked)."""

    def __init__(self, round_: int, selected: int, checkpoint: Path | None) -> None:
        self.round, self.selected, self.checkpoint = round_, selected, checkpoint
        where = f"; state saved in {checkpoint}, rerun with --resume" if checkpoint else ""
        super().__init__(f"interrupted after round {round_} with {selected} selected{where}")


@dataclass
class RoundTiming:
    round: int
    stage2_s: float
    stage3_s: float
    selected: int


@SELECTORS.register("zip")
@dataclass(kw_only=True)
class ZipSelector(EngineSelector):
    """Select samples by ZIP. Parameters as in the paper's ZIP.py; ``select`` does the work.

    After ``select``: ``selected_`` (input row indices, in selection order), ``rounds_``,
    ``stage2_ratios_``, ``stage3_ratios_`` (per selected sample), ``ids_``,
    ``round_timings_``, ``initial_scoring_s_``, ``rejects_``, ``tokens_``, ``engine_`` (the
    :class:`~entrosel.engines.Engine` it ran on) and ``notes_``
    (what was said on stderr, e.g. that a long-memory anchor outgrew zstd's reach).
    """

    budget: int | None = option(None, "number of samples to select", param=Param(int, low=1),
                                metavar="N", group="budget")
    budget_tokens: int | None = option(None, "stop once the selection holds N tokens (needs "
                                       "--tokenizer)", param=Param(int, low=1), metavar="N",
                                       group="budget")
    tokenizer: str | None = option(None, "Hugging Face tokenizer (tokenizer.json, folder or hub "
                                   "name) for --budget-tokens", param=Param(str), metavar="PATH_OR_NAME")
    k1: int = option(10_000, "stage-1 candidates per round", param=Param(int, low=1))
    k2: int = option(200, "stage-2 batch size", param=Param(int, low=1))
    k3: int = option(100, "stage-3 picks per round", param=Param(int, low=1))
    serialize: str = option("text", SERIALIZE_HELP, param=Param(str, choices=SERIALIZATIONS),
                            group="compression")
    level: int | None = option(None, LEVEL_HELP, param=Param(int), group="compression")
    compressor: str = option("zlib", COMPRESSOR_HELP, param=Param(str, choices=COMPRESSORS),
                             group="compression")
    checkpoint: str | Path | None = option(None, "save the state after every round in DIR",
                                           metavar="DIR")
    resume: bool = option(False, "continue the run saved in --checkpoint DIR", param=Param(bool))
    rescore: str = option("all", "stages 2 and 3: rescore every candidate (all, as ZIP.py) or only "
                          "those whose last score, a bound, could still win (lazy: long-memory "
                          "ZIP, approximate, about 2x faster; docs/zip.md)",
                          param=Param(str, choices=("all", "lazy")), group="compression")
    strategy: str = option("auto", cli=False)  # how ratios are computed; see scoring.anchored
    # with a checkpoint, save at most this often (0: after every round, as --checkpoint does);
    # a save costs about 25 ms on 424,323 records, 6% of a round
    save_every_s: float = option(0.0, cli=False)

    selected_: list[int] = field(default_factory=list, init=False, repr=False)

    help: ClassVar[str] = "ZIP: greedy selection of a low-compression-ratio subset"

    @classmethod
    def example_options(cls, folder: Path) -> dict[str, Any]:
        return {"budget": 8, "k1": 16, "k2": 6, "k3": 2, "workers": 1}
    description: ClassVar[str] = (
        "ZIP (Yin et al. 2024): select samples whose set has a low compression ratio. Each round "
        "takes the K1 lowest-scoring samples, rescores them against the selection, keeps the K2 "
        "best as a batch and greedily picks K3 of it. Output: the selected records, unchanged, "
        "in selection order, stopping exactly at the budget (or, said on stderr, earlier when "
        "the pool runs out: a round's unpicked batch members leave it, as in ZIP.py).")
    option_groups: ClassVar[tuple[str, ...]] = ("budget", "input", "compression", "engine")
    content_fields: ClassVar[tuple[str, ...]] = ("tokenizer",)
    scores_out_help: ClassVar[str | None] = ("write each selected record's rank, index, id, round, "
                                             "stage-2 and stage-3 ratios")

    def _check(self) -> None:
        if (self.budget is None) == (self.budget_tokens is None):
            raise InputError("give a budget: --budget N (samples) or --budget-tokens N (with --tokenizer)")
        if self.budget_tokens is not None and not self.tokenizer:
            raise InputError("--budget-tokens needs --tokenizer PATH_OR_NAME")
        if self.resume and not self.checkpoint:
            raise InputError("--resume needs --checkpoint DIR")
        if self.checkpoint and not self.resume and Checkpoint(self.checkpoint, {}).exists:
            raise InputError("folder holds a checkpoint already; pass --resume to continue it, "
                             "or remove the folder to start over", self.checkpoint)
        if self.k2 > self.k1:
            raise InputError(f"--k2 ({self.k2}) must be at most --k1 ({self.k1}): the batch is "
                             "taken from the K1 candidates")
        if self.k3 > self.k2:
            raise InputError(f"--k3 ({self.k3}) must be at most --k2 ({self.k2}): the picks are "
                             "taken from the K2 batch")
        compressor = Compressor(self.compressor, self.level)  # refuses a level out of range
        if self.rescore == "lazy" and resolve_strategy(compressor, self.strategy) != "conditional":
            raise InputError("--rescore lazy needs --compressor zstd: it bounds a candidate's "
                             "ratio by its last conditional cost, which only long memory keeps")
        # a bad worker count or an option of another engine is refused before the pool is read
        self._make_engine()

    def resumable(self, folder: Path) -> "ZipSelector":
        """Saved in ``folder`` as it goes (every 30 s at most) and resumed from it, unless the
        caller chose a checkpoint of its own: a recipe killed in the middle of ZIP continues
        from the last round saved, not from the step's start."""
        if self.checkpoint is not None:
            return self
        return dataclasses.replace(self, checkpoint=str(folder), resume=True,
                                   save_every_s=RESUMABLE_SAVE_EVERY_S)

    def score_rows(self, indices: list[int]) -> list[dict[str, Any]]:
        rows = []
        for rank, (index, id_, rnd, r2, r3) in enumerate(zip(
                indices, self.ids_, self.rounds_, self.stage2_ratios_, self.stage3_ratios_)):
            row: dict[str, Any] = {"rank": rank, "index": index}
            if id_ is not None:
                row["id"] = id_
            row.update(round=rnd, stage2_ratio=r2, stage3_ratio=r3)
            rows.append(row)
        return rows

    def summary(self, s: Any) -> str:
        tokens = f", {self.tokens_:,} tokens" if self.budget_tokens is not None else ""
        rounds = max(self.rounds_, default=0)  # 1-based; with --resume, the earlier ones too
        return f" selected in {rounds} rounds{tokens}"

    def select(self, source: Source) -> list[int]:
        """Run ZIP over ``source`` (a path, or dict records); return input indices."""
        self.validate()
        source = reusable(source)
        compressor = Compressor(self.compressor, self.level)
        options = InputOptions(self.input_format, self.serialize, self.text_field,
                               self.template, self.on_error)
        self.rejects_ = Rejects(options.on_error)
        self.notes_: list[str] = []
        with load_pool(source, options, self.rejects_, self.progress) as pool:
            if len(pool) == 0:
                raise InputError("no usable records in the input (all were rejected)",
                                 source if isinstance(source, (str, Path)) else None)
            self._check_budget(len(pool))
            tokens = self._token_counts(source, options, pool)
            checkpoint = self._checkpoint(pool, compressor)
            state = self._start(checkpoint)
            self._sizes, self._framing = pool.sizes.astype(np.float64), options.serialization.framing
            with self._evaluators(pool, options, compressor) as group:
                state = self._run(pool, group, tokens, state, checkpoint)
            self.selected_ = [int(pool.index[p]) for p in state.selected]
            self.ids_ = [pool.ids[p] for p in state.selected]
        self.rounds_ = list(state.rounds)
        self.stage2_ratios_ = list(state.stage2)
        self.stage3_ratios_ = list(state.stage3)
        self.tokens_ = state.tokens
        if self._budget_left(state):
            # each round's K2 batch leaves the pool but only K3 of it is picked (as ZIP.py)
            held = (f"{len(self.selected_):,} of the --budget {self.budget:,}"
                    if self.budget is not None else
                    f"{self.tokens_:,} of the --budget-tokens {self.budget_tokens:,} tokens")
            self._note(f"the pool ran out at {held}: every round removes its K2={self.k2} "
                       f"batch and keeps K3={self.k3} of it; a smaller K2/K3 ratio or a larger "
                       "pool reaches the budget")
        return self.selected_

    def _evaluators(self, pool: Pool, options: InputOptions, compressor: Compressor):
        # stage 3's batch is scored in this process: one small call per pick (see AnchoredGroup)
        return anchored_group(self.engine_, pool.items, options.serialization.framing, compressor,
                              self.strategy, anchors=("selected",), local=("batch",))

    def _token_counts(self, source: Source, options: InputOptions, pool: Pool) -> np.ndarray | None:
        if self.budget_tokens is None:
            return None
        return record_token_counts(source, pool.index, self.tokenizer, options)

    def _checkpoint(self, pool: Pool, compressor: Compressor) -> Checkpoint | None:
        if not self.checkpoint:
            return None
        digest = hashlib.sha256()
        digest.update(pool.items.offsets.tobytes())
        digest.update(pool.index.tobytes())
        with open(pool.items.path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        fingerprint = {"pool_sha256": digest.hexdigest(), "budget": self.budget,
                       "budget_tokens": self.budget_tokens, "tokenizer": self.tokenizer,
                       "k1": self.k1, "k2": self.k2, "k3": self.k3, "serialize": self.serialize,
                       "compressor": compressor.name, "level": compressor.level,
                       "strategy": resolve_strategy(compressor, self.strategy)}
        if self.rescore != "all":  # absent for the default, so older checkpoints still resume
            fingerprint["rescore"] = self.rescore
        if compressor.name == "zstd":  # its match finder decides the selection
            zstd = zstd_module()
            fingerprint["zstd"] = f"zstandard {zstd.__version__}, libzstd {'.'.join(map(str, zstd.ZSTD_VERSION))}"
            if fingerprint["strategy"] == "conditional":  # past 16 MiB its picks differ from before
                fingerprint["long_memory"] = "tables up to the window; the picks' index past the reach"
        cp = Checkpoint(self.checkpoint, fingerprint)
        if cp.exists and not self.resume:
            raise InputError("folder holds a checkpoint already; pass --resume to continue it, "
                             "or remove the folder to start over", cp.folder)
        return cp

    def _start(self, checkpoint: Checkpoint | None) -> ZipState | None:
        if checkpoint is not None and self.resume and checkpoint.exists:
            return checkpoint.load()
        return None

    def _budget_left(self, state: ZipState) -> bool:
        if self.budget is not None:
            return len(state.selected) < self.budget
        return state.tokens < self.budget_tokens

    def _run(self, pool: Pool, group: AnchoredGroup, tokens: np.ndarray | None,
             state: ZipState | None, checkpoint: Checkpoint | None) -> ZipState:
        n = len(pool)
        self.round_timings_: list[RoundTiming] = []
        t0 = time.perf_counter()
        if state is None:
            with Progress("scoring pool", total=n, enabled=self.progress) as bar:
                scores = np.empty(n, dtype=np.float64)
                costs = np.empty(n, dtype=np.float64) if self.rescore == "lazy" else None
                for start in range(0, n, _SCORE_CHUNK):
                    chunk = range(start, min(n, start + _SCORE_CHUNK))
                    if costs is None:
                        scores[start:chunk.stop] = group.ratios("selected", chunk)
                    else:  # the same ratios, n / C(x), with the costs kept as bounds
                        costs[start:chunk.stop] = group.costs("selected", chunk)
                        scores[start:chunk.stop] = self._lengths(chunk, True) / costs[start:chunk.stop]
                    bar.update(len(chunk))
            state = ZipState(scores=scores, live=np.ones(n, dtype=bool), costs=costs)
            if checkpoint is not None:
                checkpoint.save(state)
        else:
            # one extension per round, as the run made them: a long-memory anchor's C(A)
            # depends on how it was built
            for _, picks in itertools.groupby(zip(state.selected, state.rounds), key=lambda pr: pr[1]):
                group.extend("selected", [p for p, _ in picks])
        self.initial_scoring_s_ = time.perf_counter() - t0
        self._reach = self._memory_reach(pool)

        total = self.budget if self.budget is not None else self.budget_tokens
        saved = time.perf_counter()
        resumes_at = (state.round, len(state.selected))  # the round, the picks last saved
        try:
            with Progress("selecting", total=total, enabled=self.progress) as bar:
                bar.update(len(state.selected) if self.budget is not None else state.tokens)
                while not state.done:
                    if not self._budget_left(state) or not state.live.any():
                        state.done = True
                        break
                    before = len(state.selected), state.tokens
                    self._round(group, tokens, state)
                    if checkpoint is not None and time.perf_counter() - saved >= self.save_every_s:
                        checkpoint.save(state)
                        saved, resumes_at = time.perf_counter(), (state.round, len(state.selected))
                    gained = (len(state.selected) - before[0] if self.budget is not None
                              else state.tokens - before[1])
                    bar.update(gained, postfix=f"round {state.round}")
            if checkpoint is not None:
                checkpoint.save(state)
        except KeyboardInterrupt:
            if checkpoint is None:
                raise Interrupted(state.round, len(state.selected), None) from None
            raise Interrupted(*resumes_at, checkpoint.folder) from None
        except WorkerDied as e:  # only once the replacements ran out
            if checkpoint is None:
                raise
            raise WorkerDied(f"{e}; the state is saved in {checkpoint.folder}: rerun with --resume") from None
        return state

    def _round(self, group: AnchoredGroup, tokens: np.ndarray | None, state: ZipState) -> None:
        """One round of the three stages; ``state`` is only changed once it is complete, so a
        Ctrl-C inside leaves the state of the previous round."""
        t0 = time.perf_counter()
        live = np.flatnonzero(state.live)
        # Stage 1: the K1 live samples with the lowest score; the stable sort over
        # ascending positions sends ties to the lower input row.
        candidates = live[lowest(state.scores[live], self.k1)]
        # Stage 2: rescore against the selection so far (the lazy global update). Against
        # an empty selection that is each sample's own ratio, which its score still is.
        if not state.selected:
            stage2 = state.scores[candidates]
        elif self.rescore == "lazy":
            costs = state.costs[candidates]  # a copy: the state changes once the round is done
            stage2 = self._rescored_lazily(group, "selected", candidates, costs, self.k2)
        else:
            stage2 = group.ratios("selected", candidates)
        order = np.lexsort((candidates, stage2))[: self.k2]
        batch = candidates[order]
        t1 = time.perf_counter()
        # Stage 3: greedy within the batch from an empty anchor.
        group.reset("batch")
        remaining = sorted(int(i) for i in batch)
        batch_costs = np.full(len(remaining), np.inf)  # lazy: each one's last cost this round
        picked: list[tuple[int, float]] = []
        n_selected, n_tokens = len(state.selected), state.tokens
        while remaining and len(picked) < self.k3:
            if self.budget is not None and n_selected + len(picked) >= self.budget:
                break
            if self.budget_tokens is not None and n_tokens >= self.budget_tokens:
                break
            if self.rescore == "lazy":
                ratios = self._rescored_lazily(group, "batch", np.asarray(remaining), batch_costs, 1)
            else:
                ratios = group.ratios("batch", remaining)
            j = int(np.argmin(ratios))  # first minimum: the lowest position
            pick = remaining.pop(j)
            batch_costs = np.delete(batch_costs, j)
            picked.append((pick, float(ratios[j])))
            if tokens is not None:
                n_tokens += int(tokens[pick])
            if remaining and len(picked) < self.k3:
                group.extend("batch", [pick])
        t2 = time.perf_counter()

        state.scores[candidates] = stage2
        if self.rescore == "lazy" and state.selected:
            state.costs[candidates] = costs
        state.live[batch] = False
        state.round += 1
        stage2_of = dict(zip(candidates.tolist(), stage2.tolist()))
        for pick, r3 in picked:
            state.selected.append(pick)
            state.rounds.append(state.round)
            state.stage2.append(stage2_of[pick])
            state.stage3.append(r3)
        state.tokens = n_tokens
        group.extend("selected", [p for p, _ in picked])
        self.round_timings_.append(RoundTiming(state.round, t1 - t0, t2 - t1, len(picked)))
        if self._reach is not None:
            self._check_reach(state.selected, "the selection", "copies of earlier picks")
            self._check_reach([p for p, _ in picked], "a round's picks (stage 3)",
                              "repeats within a round")

    def _lengths(self, positions: Any, first: bool) -> np.ndarray:
        """``|x|`` of each sample as a ratio counts it: framed as the first of an anchor's
        items (``first``) or as one that follows others."""
        framing = self._framing
        extra = len(framing.open if first else framing.sep) + len(framing.close)
        return self._sizes[np.asarray(positions, dtype=np.int64)] + extra

    def _rescored_lazily(self, group: AnchoredGroup, anchor: str, candidates: np.ndarray,
                         costs: np.ndarray, wanted: int) -> np.ndarray:
        """The ratios of ``candidates`` against ``anchor``, rescoring only those that may
        be among the ``wanted`` lowest (``--rescore lazy``).

        A candidate's cost against an anchor can only fall as the anchor grows (it finds
        more to refer to), so its last known cost (``costs``, aligned with ``candidates``
        and updated here; ``inf`` when unknown) bounds its ratio from below with today's
        ``|A|`` and ``C(A)``. Candidates are rescored in the order of their bounds, in
        growing chunks, until the ``wanted``-th lowest fresh ratio is below every bound left. Unrescored candidates get their bound. It is
        approximate where the premise fails: zstd's fast match finder keeps one position
        per table slot and the anchor's window slides, so a cost can also rise a little."""
        length, cost, count = group.totals(anchor)
        sizes = self._lengths(candidates, first=(count == 0))  # an empty anchor: no separator
        ratios = (length + sizes) / (cost + costs)  # bounds: inf costs give 0, scored first
        order = np.lexsort((candidates, ratios))
        fresh = np.zeros(len(candidates), dtype=bool)
        # no cost known (a round's first stage-3 step): all of them, in one call
        done, step = 0, len(order) if np.isinf(costs).all() else max(2 * wanted, 16)
        while done < len(order):
            chunk = order[done:done + step]
            done, step = done + len(chunk), 2 * step
            costs[chunk] = group.costs(anchor, candidates[chunk])
            ratios[chunk] = (length + sizes[chunk]) / (cost + costs[chunk])
            fresh[chunk] = True
            if fresh.sum() >= wanted and done < len(order):
                if np.partition(ratios[fresh], wanted - 1)[wanted - 1] < ratios[order[done]]:
                    break
        return ratios

    def _memory_reach(self, pool: Pool) -> tuple[int, int, np.ndarray] | None:
        """zstd's reach, its level and the pool's item sizes, when ratios are conditional
        (long memory)."""
        compressor = Compressor(self.compressor, self.level)
        if resolve_strategy(compressor, self.strategy) != "conditional":
            return None
        return LongMemory(compressor.level).reach_bytes, compressor.level, pool.sizes

    def _check_reach(self, positions: list[int], what: str, lost: str) -> None:
        if any(what in note for note in self.notes_):
            return
        reach, level, sizes = self._reach
        held = int(sizes[positions].sum()) if positions else 0
        if held <= reach:
            return
        note = (f"long-memory ZIP: {what} holds {held / 2**20:.1f} MiB, past zstd's reach of "
                f"{reach / 2**20:.0f} MiB at level {level}: zstd no longer sees {lost} "
                "further back; the picks' index still prices exact copies of them (same text "
                "once case and spacing are set aside) as copies")
        self._note(note)

    def _note(self, note: str) -> None:
        """Say ``note`` once on stderr and keep it in ``notes_``."""
        self.notes_.append(note)
        print(f"entrosel: note: {note}", file=sys.stderr)


def lowest(values: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` lowest ``values``, lowest first, ties to the lower position:
    ``np.argsort(values, kind="stable")[:k]``, in O(n) plus a sort of ``k`` (a partition
    finds the k-th value)."""
    if k >= len(values):
        return np.argsort(values, kind="stable")
    kth = np.partition(values, k - 1)[k - 1]
    below = np.flatnonzero(values < kth)
    chosen = np.concatenate([below, np.flatnonzero(values == kth)[: k - len(below)]])
    if len(chosen) < k:  # NaN among them: the plain sort
        return np.argsort(values, kind="stable")[:k]
    return chosen[np.lexsort((chosen, values[chosen]))]


def select_zip(source: Source, budget: int | None = None, **options: Any) -> list[int]:
    """ZIP selection over ``source``; returns the selected input row indices in order.

    Takes the same options as ``entrosel select zip`` (see :class:`ZipSelector`).
    """
    return ZipSelector(budget=budget, **options).select(source)
