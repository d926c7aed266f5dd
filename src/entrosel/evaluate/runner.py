"""``Evaluator``: train the same model the same way on each subset, measure it on held-out sets.

One tokenizer serves every subset, so that losses in nats per token compare: a pre-trained
model's own, or a byte-level BPE trained on the distinct records of all the subsets
together (or on ``tokenizer_data``, a pool independent of the held-out sets). Each
finished (subset, seed) run is kept under ``OUTPUT/runs/`` under a hash of the subset's
content, the held-out sets' content, the tokenizer and every option that changes the
numbers; a rerun skips it, so results survive a crash or Ctrl-C and come out the same.
The key holds content, not names: the sets' and the model files' SHA-256 and the hash of the
source of the code that trains and measures (:func:`code_version`), so a change to any of
them redoes the runs it touches and nothing else.
"""
from __future__ import annotations

import hashlib
import json
import numbers
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Sequence

from entrosel.errors import InputError
from entrosel.evaluate.data import TextSet, check_overlap, name_sets, read_eval_set, read_text_set
from entrosel.io.atomic import atomic_path
from entrosel.params import Param, check_params
from entrosel.pool import InputOptions
from entrosel.probe.train import DEFAULT_SIZE

# the modules whose code decides a run's numbers: their source is part of every run's key
CODE = ("evaluate/train.py", "evaluate/measures.py", "evaluate/data.py", "probe/train.py", "scoring/lm.py",
        "formats/render.py")


# the options a user can get wrong, by field (checked before any set is read)
_PARAMS: dict[str, Param] = {
    "tokens": Param(int, low=1), "epochs": Param(int, low=1),
    "learning_rate": Param(float, low=0, low_open=True), "batch_size": Param(int, low=1),
    "context": Param(int, low=1), "rank_prompts": Param(int, low=0),
    "rank_candidates": Param(int, low=2), "threads": Param(int, low=1)}


def _sha(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def code_version() -> str:
    """SHA-256 of the source of the modules that train and measure (:data:`CODE`)."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for name in CODE:
        digest.update(name.encode() + b"\0" + (root / name).read_bytes())
    return digest.hexdigest()


_FILE_SHA: dict[tuple[str, int, int], str] = {}


def _file_sha(f: Path) -> str:
    """A file's SHA-256, remembered for this process while its size and time stay the same."""
    st = f.stat()
    key = (str(f.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _FILE_SHA:
        digest = hashlib.sha256()
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        _FILE_SHA[key] = digest.hexdigest()
    return _FILE_SHA[key]


def _model_identity(path: str) -> dict[str, Any]:
    """The content of a model: each file's name and SHA-256 (a hub name: the name itself)."""
    p = Path(path)
    if not p.exists():
        return {"model": path}
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
    return {"files": [[str(f.relative_to(p) if p.is_dir() else f.name), _file_sha(f)] for f in files]}


@dataclass
class Evaluator:
    """Options of a comparison; :meth:`run` does it. Defaults are the CLI's.

    ``model``: a pre-trained causal LM to fine-tune (Hugging Face folder, hub name or
    ``.gguf``); without it the data probe's GPT-2 of ``size`` trains from scratch.
    ``tokens``: every run trains on exactly this many tokens; else ``epochs`` passes.
    """

    size: str = DEFAULT_SIZE
    model: str | None = None
    gguf_file: str | None = None
    tokens: int | None = None
    epochs: int | None = None
    target: str = "all"
    seeds: Sequence[int] = (0,)
    device: str = "auto"
    learning_rate: float | None = None
    batch_size: int | None = None
    context: int | None = None
    tokenizer_data: str | None = None
    rank_prompts: int = 100
    rank_candidates: int = 4
    threads: int | None = None
    precision: str = "auto"
    input_format: str | None = None
    text_field: str | None = None
    template: str | None = None
    progress: bool | None = None
    _lm: Any = field(default=None, init=False, repr=False)
    reused_runs: int = field(default=0, init=False)

    # -- checks before any work ---------------------------------------------------------
    def _check_options(self) -> None:
        from entrosel.probe.train import probe_size
        from entrosel.scoring.lm import TARGETS, resolve_device

        if self.tokens is not None and self.epochs is not None:
            raise InputError("give --tokens or --epochs, not both")
        params = {**_PARAMS, "target": Param(str, choices=tuple(TARGETS))}
        check_params({name: getattr(self, name) for name in params}, params)
        if isinstance(self.seeds, (str, bytes)) or not all(
                isinstance(s, numbers.Integral) and not isinstance(s, bool) and 0 <= s < 2**32
                for s in self.seeds):
            raise InputError(f"--seeds must be integers in [0, 2^32), e.g. 0,1,2, not {self.seeds!r}")
        self.seeds = [int(s) for s in self.seeds]
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise InputError("--seeds must be distinct integers, e.g. 0,1,2")
        if self.model is None:
            probe_size(self.size)
        else:
            self.model = str(self.model)  # a Path is welcome; the loader takes a string
        self.device = resolve_device(self.device)
        from entrosel.probe.train import resolve_precision

        self.precision_ = resolve_precision(self.precision, self.device)

    @property
    def _options(self) -> InputOptions:
        return InputOptions(self.input_format, "text", self.text_field, self.template)

    def _load_model(self) -> tuple[Any, Any]:
        from entrosel.scoring.lm import load_causal_lm

        lm, tokenizer = load_causal_lm(self.model, self.gguf_file, device="cpu", dtype="float32")
        if tokenizer.eos_token_id is None:
            raise InputError("the model's tokenizer has no end-of-text token to separate records", self.model)
        return lm, tokenizer

    # -- the settings each run uses -------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        """Context, learning rate and batch size, with the defaults filled in."""
        if self.model is None:
            from entrosel.probe.train import probe_size

            spec = probe_size(self.size)
            context, lr, bs = spec.context, spec.learning_rate, spec.batch_size
            if self.context is not None and self.context != spec.context:
                raise InputError(f"--context is fixed by --size {self.size} ({spec.context}); "
                                 "choose another size")
        else:
            config = getattr(self._lm, "config", None)
            limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None) or 512
            context, lr, bs = min(self.context or 512, int(limit)), 5e-5, 8
        return {"context": self.context or context, "learning_rate": self.learning_rate or lr,
                "batch_size": self.batch_size or bs}

    def _tokenizer(self, subsets: list[TextSet], runs: Path) -> tuple[Any, str]:
        """The shared tokenizer and a sentence saying where it comes from."""
        if self.model is not None:
            return self._lm_tokenizer, f"the model's own ({self.model})"
        from tokenizers import Tokenizer
        from transformers import PreTrainedTokenizerFast

        from entrosel.probe.train import EOT, PAD, probe_size, train_tokenizer

        vocab = probe_size(self.size).vocab_size
        if self.tokenizer_data is not None:
            texts = read_text_set(self.tokenizer_data, self._options).texts
            where = f"byte-level BPE ({vocab:,}) trained on {self.tokenizer_data}"
        else:
            # distinct records only: a subset of one record repeated must not shape the vocabulary
            texts = list(dict.fromkeys(t for s in subsets for t in s.texts))
            where = f"byte-level BPE ({vocab:,}) trained on the {len(texts):,} distinct records of all the subsets"
        cached = runs / f"tokenizer-{_sha([vocab, hashlib.sha256(json.dumps(texts).encode()).hexdigest()])[:16]}.json"
        if cached.exists():
            tok = Tokenizer.from_str(cached.read_text(encoding="utf-8"))
            tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOT, eos_token=EOT, pad_token=PAD)
        else:
            tokenizer = train_tokenizer(texts, vocab)
            with atomic_path(cached) as tmp:
                tmp.write_text(tokenizer.backend_tokenizer.to_str(), encoding="utf-8")
        return tokenizer, where

    # -- the comparison ---------------------------------------------------------------------
    def run(self, subsets: Sequence[str | Path], evals: Sequence[str | Path], output: str | Path,
            log: Any = None) -> dict[str, Any]:
        """Train on each subset for each seed, measure on ``evals``, write ``output``/
        ``results.json``, ``results.csv``, ``report.html``; return the results."""
        from entrosel.scoring.measure import measure_one
        from entrosel.evaluate.measures import Measures
        from entrosel.evaluate.report import write_outputs
        from entrosel.evaluate.results import summarise
        from entrosel.evaluate.train import fresh_copy, pack_rows, scratch_gpt2, train_rows

        t0 = time.perf_counter()
        if not subsets:
            raise InputError("give at least one subset to train on")
        if not evals:
            raise InputError("give at least one held-out set with --eval")
        self._check_options()
        tokenizer_data = [] if self.tokenizer_data is None else [self.tokenizer_data]
        for shown_as, paths in (("SUBSET", subsets), ("--eval", evals), ("--tokenizer-data", tokenizer_data)):
            for p in paths:
                if not Path(p).exists():
                    raise InputError(f"no such file or folder ({shown_as})", p)
        sub_sets = [read_text_set(p, self._options) for p in subsets]
        eval_sets = [read_eval_set(p, self._options) for p in evals]
        check_overlap(sub_sets, eval_sets)
        if self.tokenizer_data is not None:
            if self.model is not None:
                raise InputError("--tokenizer-data trains a tokenizer for the from-scratch model; "
                                 "--model brings its own")
            check_overlap([read_text_set(self.tokenizer_data, self._options)], eval_sets,
                          "the tokenizer's data")
        from entrosel.scoring.lm import set_threads

        set_threads(self.threads)
        if self.model is not None and self._lm is None:  # loaded once for every run() of this Evaluator
            self._lm, self._lm_tokenizer = self._load_model()
        settings = self.settings()
        sub_names, eval_names = name_sets(sub_sets), name_sets(eval_sets)

        # nothing has been written up to here: bad input leaves no trace
        out = Path(output)
        runs = out / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        tokenizer, tokenizer_note = self._tokenizer(sub_sets, runs)
        tokenizer_sha = hashlib.sha256(
            (tokenizer.backend_tokenizer.to_str() if self.model is None else json.dumps(_model_identity(self.model)))
            .encode()).hexdigest()
        context = settings["context"]
        measures = Measures(eval_sets, eval_names, tokenizer, target=self.target, context=context,
                            rank_prompts=self.rank_prompts, rank_candidates=self.rank_candidates,
                            device=self.device, precision=self.precision_)
        common = {"code": code_version(), "precision": self.precision_, "tokenizer": tokenizer_sha, "evals": [e.sha256 for e in eval_sets],
                  "size": None if self.model else self.size,
                  "model": _model_identity(self.model) if self.model else None, "gguf_file": self.gguf_file,
                  "tokens": self.tokens, "epochs": self.epochs, "target": self.target, "device": self.device,
                  "rank_prompts": self.rank_prompts, "rank_candidates": self.rank_candidates, **settings}
        rows, reused = [], 0
        for sub, name in zip(sub_sets, sub_names):
            packed = pack_rows(sub.samples, tokenizer, context, self.target)
            total_rows = (max(1, self.tokens // context) if self.tokens is not None
                          else len(packed) * (self.epochs or 1))
            r = measure_one(sub.path, input_format=self.input_format, text_field=self.text_field,
                            template=self.template)["compression_ratio"]
            per_seed = []
            for seed in self.seeds:
                key = _sha({**common, "subset": sub.sha256, "seed": seed})
                path = runs / f"{key[:24]}.json"
                if path.exists():
                    stored = json.loads(path.read_text(encoding="utf-8"))
                    if stored.get("key") == key:
                        per_seed.append(stored)
                        reused += 1
                        continue
                t_run = time.perf_counter()
                model = (fresh_copy(self._lm, seed) if self.model is not None
                         else scratch_gpt2(tokenizer, _spec(self.size), seed))
                trained = train_rows(model, packed, total_rows, learning_rate=settings["learning_rate"],
                                     batch_size=settings["batch_size"], seed=seed, device=self.device,
                                     precision=self.precision_, progress=self.progress, description=f"{name} seed {seed}")
                result = {"key": key, "subset": sub.path, "seed": seed, **trained,
                          "eval": measures.measure(model), "seconds": time.perf_counter() - t_run}
                with atomic_path(path) as tmp:
                    tmp.write_text(json.dumps(result) + "\n", encoding="utf-8")
                per_seed.append(result)
                del model
                if log:
                    log(f"{name} seed {seed}: L {result['L']:.4f}, "
                        + ", ".join(f"{k} {v['loss']:.4f}" for k, v in result["eval"].items())
                        + f" ({result['seconds']:.0f} s, {trained['tokens_per_s']:,.0f} tokens/s)")
            rows.append({"subset": name, "path": sub.path, "records": len(sub), "tokens": packed.tokens,
                         "R": r, "runs": per_seed})
        results = summarise(rows, eval_sets, eval_names, options={
            **{f.name: _plain(getattr(self, f.name)) for f in fields(self)
               if f.init and f.name not in ("progress", "threads")},
            **settings, "seeds": list(self.seeds)}, tokenizer=tokenizer_note)
        results["seconds"] = time.perf_counter() - t0
        self.reused_runs = reused  # not in the results: a rerun must write the same file
        write_outputs(results, out)
        return results


def _plain(value: Any) -> Any:
    """A value as JSON holds it (paths as strings)."""
    return str(value) if isinstance(value, Path) else value


def _spec(size: str):
    from entrosel.probe.train import probe_size

    return probe_size(size)
