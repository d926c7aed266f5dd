"""The bad-option sweep (issue #14): every option a user can get wrong, verb by verb, is
refused before any work starts: exit 2, a one-line message that names the option (as its
flag; a positional by its value, a recipe option by its YAML key) and says what is allowed,
no traceback, nothing written.

Each case runs the command line in-process. The functions that start real work (train a
tokenizer or a model, load a language model, start Ray) are replaced by ones that fail
loudly, so a check that comes too late shows up as a traceback naming them, not as minutes
of training.

A budget above the pool is an error, in every verb that takes one (select zip, target,
prune, topk and random, and prune), as is a budget of 0 and a ``--keep`` outside (0, 1]:
``--budget N`` promises N records, and a selection that silently comes back smaller (or
empty) would be mistaken for one that met it.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import re
import shlex
from pathlib import Path

import pytest

from entrosel.cli import main
from tests.conftest import write_jsonl

pytestmark = pytest.mark.unit

POOL_SIZE = 20
HAS_TORCH = importlib.util.find_spec("torch") is not None
# verbs that load or train a language model: without the [lm] extra they say so instead
_NEEDS_LM = ("score lm", "probe train", "prune", "evaluate")


def _records(n: int, tag: str) -> list[dict]:
    return [{"id": f"{tag}{i}", "conversations": [
        {"from": "human", "value": f"Question {i} about {tag}: how do {i} and {i + 1} add up?"},
        {"from": "gpt", "value": f"They add up to {2 * i + 1}; {tag} answer number {i}, "
                                 f"with a few words more to make it longer {i * 7}."}]}
            for i in range(n)]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """Valid inputs for every verb, in a folder no case may write to."""
    d = tmp_path_factory.mktemp("inputs")
    write_jsonl(d / "pool.jsonl", _records(POOL_SIZE, "pool"))
    write_jsonl(d / "target.jsonl", _records(5, "target"))
    write_jsonl(d / "eval.jsonl", _records(5, "held-out"))
    write_jsonl(d / "scores.jsonl", [{"index": i, "id": f"pool{i}", "compression_ratio": 1.0 + i / 10,
                                      "tokens": 30 + i} for i in range(POOL_SIZE)])
    (d / "history.json").write_text(json.dumps([
        {"name": f"v{i}", "time": "2026-01-01T00:00:00+00:00", "R": 2.0 + i / 100, "L": 3.0,
         "score": None, "records": 20, "sha256": f"{i:064x}"} for i in range(3)]))
    (d / "model").mkdir()  # a folder for --model: never loaded, the options fail first
    (d / "k3.yaml").write_text("steps:\n  - select zip:\n      budget: 5\n      k3: 0\n")
    (d / "min_chars.yaml").write_text("steps:\n  - filter length:\n      min_chars: -1\n")
    (d / "threshold.yaml").write_text("steps:\n  - filter dedup:\n      near: true\n"
                                      "      threshold: 1.5\n")
    (d / "ok.yaml").write_text("steps:\n  - filter length:\n      min_chars: 5\n")
    (d / "level.yaml").write_text("steps:\n  - score compression:\n      level: 10\n")
    return d


@pytest.fixture(autouse=True)
def no_work(monkeypatch) -> None:
    """Starting real work fails loudly (a traceback naming it, exit 1)."""
    def refuse(name: str):
        def started(*args, **kwargs):
            raise RuntimeError(f"work started before the options were checked: {name}")
        return started

    targets = ["entrosel.engines.ray.init_ray", "ray.init"]
    if HAS_TORCH:
        targets += ["entrosel.probe.train.train_probe", "entrosel.probe.train.train_tokenizer",
                    "entrosel.evaluate.train.train_rows", "entrosel.scoring.lm.load_causal_lm"]
    for target in targets:
        module_name, name = target.rsplit(".", 1)
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # no Ray: nothing to start
            continue
        if hasattr(module, name):  # a function renamed elsewhere leaves the others guarding
            monkeypatch.setattr(module, name, refuse(target))


_OUTPUT_FLAG = r"(?<![\w/-])-o\b|--output"  # not the "-o" of a path such as /tmp/pytest-of-me
_ZIP = "select zip {pool} -o {out}/sel.jsonl --k1 10 --k2 5 --k3 2 --workers 1"
_PRUNE = "select prune {pool} -o {out}/sel.jsonl --scores {scores} --by compression_ratio"
_TOPK = "select topk {pool} -o {out}/sel.jsonl --scores {scores} --by compression_ratio"
_BAND = "select band {pool} -o {out}/sel.jsonl --scores {scores} --by compression_ratio"
_RANDOM = "select random {pool} -o {out}/sel.jsonl"
_TARGET = "select target {pool} --target {target} -o {out}/sel.jsonl --workers 1"
_LM = "score lm {pool} -o {out}/s.jsonl --model {model}"
_PRUNE_VERB = "prune {pool} -o {out}/kept.jsonl --keep 0.5"
_EVAL = "evaluate {pool} --eval {eval} -o {out}/ev --no-progress"
_LAW = "law measure {pool}"
_TRACK = "law track {out}/history.json --add v9 {pool}"

# (command line with placeholders, a regular expression the message must match)
CASES = [
    # ---- score compression
    ("score compression {pool} -o {out}/s.jsonl --workers -1", "--workers"),
    ("score compression {pool} -o {out}/s.jsonl --level 10", "--level"),
    ("score compression {pool} -o {out}/s.jsonl --compressor zstd --level 23", "--level"),
    ("score compression {pool} -o {out}/s.jsonl --compressor lzma --level -1", "--level"),
    ("score compression {pool} -o {out}/s.jsonl --compressor bz2", "--compressor"),
    ("score compression {pool} -o {out}/s.jsonl --shard 3/2", "--shard"),
    ("score compression {pool} -o {out}/s.jsonl --shard 0/0", "--shard"),
    ("score compression {pool} -o {out}/s.jsonl --shard two", "--shard"),
    ("score compression {pool} -o {out}/s.jsonl --shards 2", "--shards"),
    ("score compression {pool} -o {out}/s.jsonl --ray-address auto", "--ray-address"),
    ("score compression {pool} -o {out}/s.jsonl --engine ray --shards 0", "--shards"),
    ("score compression {pool} -o {out}/s.jsonl --engine ray --shard 0/2", "--shard"),
    ("score compression {pool} -o {out}/s.jsonl --engine ray --actors 2", "--actors"),
    ("score compression {pool} -o {out}/s.jsonl --engine ray --workers 2", "--workers"),
    ("score compression {missing} -o {out}/s.jsonl", "{missing}"),
    ("score compression {pool} -o {out}/s.txt", _OUTPUT_FLAG),
    # ---- score lm
    (_LM + " --batch-size 0", "--batch-size"),
    (_LM + " --max-length 0", "--max-length"),
    (_LM + " --stride 0", "--stride"),
    (_LM + " --max-length 16 --stride 32", "--stride"),
    (_LM + " --device nosuch", "--device"),
    (_LM + " --actors 2", "--actors"),
    (_LM + " --gpus-per-actor 1", "--gpus-per-actor"),
    (_LM + " --engine ray --actors 0", "--actors"),
    (_LM + " --engine ray --gpus-per-actor -1", "--gpus-per-actor"),
    (_LM + " --shard 3/2", "--shard"),
    ("score lm {missing} -o {out}/s.jsonl --model {model}", "{missing}"),
    # ---- score words
    ("score words {pool} -o {out}/s.jsonl --shard 3/2", "--shard"),
    ("score words {pool} -o {out}/s.jsonl --shards 2", "--shards"),
    ("score words {missing} -o {out}/s.jsonl", "{missing}"),
    # ---- measure
    ("measure {pool} --level 10", "--level"),
    ("measure {pool} --compressor zstd --level 0", "--level"),
    ("measure {missing}", "{missing}"),
    # ---- select zip
    (_ZIP + " --budget 5 --workers -1", "--workers"),
    (_ZIP + " --budget 5 --k1 0", "--k1"),
    (_ZIP + " --budget 5 --k2 0", "--k2"),
    (_ZIP + " --budget 5 --k3 0", "--k3"),
    (_ZIP + " --budget 5 --k3 -2", "--k3"),
    (_ZIP + " --budget 5 --k2 5 --k3 6", "--k3"),
    (_ZIP + " --budget 5 --k1 4 --k2 5", "--k2"),
    (_ZIP + " --budget 0", "--budget"),
    (_ZIP + " --budget -3", "--budget"),
    (_ZIP + f" --budget {POOL_SIZE + 1}", "--budget"),
    (_ZIP + " --budget-tokens 0 --tokenizer {pool}", "--budget-tokens"),
    (_ZIP + " --budget-tokens 100", "--tokenizer"),
    (_ZIP + " --budget 5 --level 10", "--level"),
    (_ZIP + " --budget 5 --resume", "--checkpoint"),
    (_ZIP + " --budget 5 --ray-address auto", "--ray-address"),
    ("select zip {missing} -o {out}/sel.jsonl --budget 5", "{missing}"),
    # ---- select prune
    (_PRUNE + " --keep 1.5", "--keep"),
    (_PRUNE + " --keep 0", "--keep"),
    (_PRUNE + " --keep -0.1", "--keep"),
    (_PRUNE + " --keep nan", "--keep"),
    (_PRUNE + " --budget 0", "--budget"),
    (_PRUNE + f" --budget {POOL_SIZE + 1}", "--budget"),
    (_PRUNE + " --budget-tokens 0", "--budget-tokens"),
    (_PRUNE + " --drop middle --keep 0.5", "--drop"),
    ("select prune {pool} -o {out}/sel.jsonl --scores {scores} --by nosuch --keep 0.5", "--by"),
    ("select prune {pool} -o {out}/sel.jsonl --scores {missing} --by compression_ratio --keep 0.5",
     "--scores"),
    # ---- select topk
    (_TOPK + " --budget 0", "--budget"),
    (_TOPK + f" --budget {POOL_SIZE + 1}", "--budget"),
    (_TOPK + " --keep 2", "--keep"),
    ("select topk {pool} -o {out}/sel.jsonl --scores {scores} --by nosuch --budget 5", "--by"),
    # ---- select band
    (_BAND + " --low -1 --high 50", "--low"),
    (_BAND + " --low 0 --high 101", "--high"),
    (_BAND + " --low 60 --high 30", "--low"),
    ("select band {pool} -o {out}/sel.jsonl --scores {scores} --by nosuch --low 0 --high 50", "--by"),
    # ---- select random
    (_RANDOM + " --budget 0", "--budget"),
    (_RANDOM + f" --budget {POOL_SIZE + 1}", "--budget"),
    (_RANDOM + " --keep 1.5", "--keep"),
    (_RANDOM + " --budget 5 --seed -1", "--seed"),
    # ---- select target
    (_TARGET + " --budget 0", "--budget"),
    (_TARGET + f" --budget {POOL_SIZE + 1}", "--budget"),
    (_TARGET + " --keep 1.5", "--keep"),
    (_TARGET + " --budget 5 --workers -1", "--workers"),
    (_TARGET + " --budget 5 --level 30", "--level"),
    (_TARGET + " --budget 5 --diverse --candidates 0", "--candidates"),
    (_TARGET + " --budget 5 --method dsir --buckets 0", "--buckets"),
    (_TARGET + " --budget 5 --shard-bytes 0", "--shard-bytes"),
    (_TARGET + " --budget 5 --method dsir --seed -1", "--seed"),
    (_TARGET + " --budget-tokens 100", "--tokenizer"),
    ("select target {pool} --target {missing} -o {out}/sel.jsonl --budget 5", "--target"),
    # ---- probe train
    ("probe train {pool} -o {out}/probe --epochs 0", "--epochs"),
    ("probe train {pool} -o {out}/probe --train-batch-size 0", "--train-batch-size|--batch-size"),
    ("probe train {pool} -o {out}/probe --learning-rate 0", "--learning-rate"),
    ("probe train {pool} -o {out}/probe --learning-rate=-1e-3", "--learning-rate"),
    ("probe train {pool} -o {out}/probe --device nosuch", "--device"),
    ("probe train {pool} -o {out}/probe --size huge", "--size"),
    ("probe train {missing} -o {out}/probe", "{missing}"),
    # ---- prune
    (_PRUNE_VERB + " --epochs 0", "--epochs"),
    (_PRUNE_VERB + " --batch-size 0", "--batch-size"),
    (_PRUNE_VERB + " --max-length 0", "--max-length"),
    (_PRUNE_VERB + " --stride 0", "--stride"),
    (_PRUNE_VERB + " --device nosuch", "--device"),
    (_PRUNE_VERB + " --ray-address auto", "--ray-address"),
    ("prune {pool} -o {out}/kept.jsonl --keep 1.5", "--keep"),
    ("prune {pool} -o {out}/kept.jsonl --keep 0", "--keep"),
    ("prune {pool} -o {out}/kept.jsonl --budget 0", "--budget"),
    (f"prune {{pool}} -o {{out}}/kept.jsonl --budget {POOL_SIZE + 1}", "--budget"),
    ("prune {pool} -o {out}/kept.jsonl --budget-tokens 0", "--budget-tokens"),
    ("prune {missing} -o {out}/kept.jsonl --keep 0.5", "{missing}"),
    # ---- filter length
    ("filter length {pool} -o {out}/f.jsonl --min-chars -1", "--min-chars"),
    ("filter length {pool} -o {out}/f.jsonl --max-words -5", "--max-words"),
    ("filter length {pool} -o {out}/f.jsonl --min-chars 10 --max-chars 5", "--min-chars"),
    ("filter length {pool} -o {out}/f.jsonl --min-response-chars -1", "--min-response-chars"),
    ("filter length {pool} -o {out}/f.jsonl --min-tokens 5", "--tokenizer"),
    ("filter length {pool} -o {out}/f.jsonl", "--min-chars"),
    ("filter length {missing} -o {out}/f.jsonl --min-chars 5", "{missing}"),
    # ---- filter dedup
    ("filter dedup {pool} -o {out}/f.jsonl --near --threshold 0", "--threshold"),
    ("filter dedup {pool} -o {out}/f.jsonl --near --threshold 1.5", "--threshold"),
    ("filter dedup {pool} -o {out}/f.jsonl --near --ngram 0", "--ngram"),
    ("filter dedup {pool} -o {out}/f.jsonl --near --num-perm 1", "--num-perm"),
    ("filter dedup {pool} -o {out}/f.jsonl --near --bands 0", "--bands"),
    ("filter dedup {pool} -o {out}/f.jsonl --near --bands 500", "--bands"),
    ("filter dedup {pool} -o {out}/f.jsonl --near --seed -1", "--seed"),
    ("filter dedup {pool} -o {out}/f.jsonl --workers -1", "--workers"),
    ("filter dedup {pool} -o {out}/f.jsonl --threshold 0.5", "--threshold"),
    ("filter dedup {pool} -o {out}/f.jsonl --removed-out {out}/removed.txt", "--removed-out"),
    # ---- filter score
    ("filter score {pool} -o {out}/f.jsonl --scores {scores} --by compression_ratio --min 5 --max 1",
     "--min"),
    ("filter score {pool} -o {out}/f.jsonl --scores {scores} --by compression_ratio", "--min"),
    ("filter score {pool} -o {out}/f.jsonl --scores {scores} --by compression_ratio --min nan",
     "--min"),
    ("filter score {pool} -o {out}/f.jsonl --scores {scores} --by nosuch --min 1", "--by"),
    ("filter score {pool} -o {out}/f.jsonl --scores {missing} --by compression_ratio --min 1",
     "--scores"),
    # ---- run (a recipe names an option by its YAML key)
    ("run {inputs}/k3.yaml {pool} -o {out}/final.jsonl --work-dir {out}/steps", r"\bk3\b"),
    ("run {inputs}/min_chars.yaml {pool} -o {out}/final.jsonl --work-dir {out}/steps", "min_chars"),
    ("run {inputs}/threshold.yaml {pool} -o {out}/final.jsonl --work-dir {out}/steps", "threshold"),
    ("run {inputs}/level.yaml {pool} -o {out}/final.jsonl --work-dir {out}/steps", "level"),
    ("run {missing} {pool} -o {out}/final.jsonl --work-dir {out}/steps", "{missing}"),
    ("run {inputs}/ok.yaml {missing} -o {out}/final.jsonl --work-dir {out}/steps", "{missing}"),
    ("run {inputs}/ok.yaml {pool} -o {out}/final.jsonl --work-dir {out}/steps --trace {out}/t.txt",
     "--trace"),
    # ---- --trace and the id lists (filter, select, run), explain
    ("filter length {pool} -o {out}/f.jsonl --min-chars 10 --trace {out}/t.txt", "--trace"),
    ("select zip {pool} -o {out}/z.jsonl --budget 2 --write-kept-ids {out}/k.pdf", "--write-kept-ids"),
    ("select random {pool} -o {out}/z.jsonl --budget 2 --write-removed-ids {out}/r.pdf",
     "--write-removed-ids"),
    ("explain d1 --trace {missing}", "{missing}"),
    # ---- law measure
    (_LAW + " --level 10", "--level"),
    (_LAW + " --loss -1", "--loss"),
    (_LAW + " --loss nan", "--loss"),
    (_LAW + " --loss 2 --probe", "--loss"),
    (_LAW + " --trainer-state {missing}", "--trainer-state"),
    (_LAW + " --probe --seed -1", "--seed"),
    (_LAW + " --probe --device nosuch", "--device"),
    ("law measure {missing}", "{missing}"),
    # ---- law track
    (_TRACK + " --level 10", "--level"),
    (_TRACK + " --loss -1", "--loss"),
    (_TRACK + " --score nan", "--score"),
    (_TRACK + " --trainer-state {missing}", "--trainer-state"),
    ("law track {out}/history.json --add v9 {missing}", "{missing}"),
    ("law track {out}/history.txt --add v9 {pool}", r"{out}/history\.txt"),
    # ---- law check
    ("law check {history} --sigma 0", "--sigma"),
    ("law check {history} --sigma -1", "--sigma"),
    ("law check {history} --sigma nan", "--sigma"),
    ("law check {missing}", "{missing}"),
    ("law check {history} nosuch", "nosuch"),
    # ---- law report
    ("law report {history} -o {out}/law.html --sigma 0", "--sigma"),
    ("law report {history} -o {out}/law.pdf", _OUTPUT_FLAG),
    ("law report {missing} -o {out}/law.html", "{missing}"),
    # ---- evaluate
    (_EVAL + " --tokens 0", "--tokens"),
    (_EVAL + " --epochs 0", "--epochs"),
    (_EVAL + " --seeds x", "--seeds"),
    (_EVAL + " --seeds 1,1", "--seeds"),
    (_EVAL + " --rank-candidates 1", "--rank-candidates"),
    (_EVAL + " --rank-prompts -1", "--rank-prompts"),
    (_EVAL + " --batch-size 0", "--batch-size"),
    (_EVAL + " --learning-rate 0", "--learning-rate"),
    (_EVAL + " --context 0", "--context"),
    (_EVAL + " --device nosuch", "--device"),
    ("evaluate {pool} --eval {missing} -o {out}/ev --no-progress", "--eval"),
    ("evaluate {pool} -o {out}/ev --no-progress", "--eval"),
    ("evaluate {missing} --eval {eval} -o {out}/ev --no-progress", "{missing}"),
    # ---- report
    ("report {pool} -o {out}/r.html --pool {missing}", "--pool"),
    ("report {pool} -o {out}/r.html --scores {missing}", "--scores"),
    ("report {pool} -o {out}/r.pdf", _OUTPUT_FLAG),
    ("report {missing} -o {out}/r.html", "{missing}"),
    # ---- data sharegpt
    ("data sharegpt -o {out}/sg.jsonl --limit -1", "--limit"),
    ("data sharegpt -o {out}/sg.jsonl --limit 0", "--limit"),
    ("data sharegpt -o {out}/sg.txt --limit 5", _OUTPUT_FLAG),
    ("data sharegpt -o {out}/sg.jsonl --split halves", "--split"),
]

IDS = [re.sub(r"\{(\w+)\}", lambda m: m.group(1).upper(), argv) for argv, _ in CASES]


def _message_lines(err: str) -> list[str]:
    """stderr without argparse's usage block (``usage:`` and its indented continuation)."""
    lines, in_usage = [], False
    for line in err.splitlines():
        if line.startswith("usage:"):
            in_usage = True
            continue
        if in_usage and (line.startswith(" ") or not line.strip()):
            continue
        in_usage = False
        if line.strip():
            lines.append(line)
    return lines


def _exception(err: str) -> str:
    """A traceback's last frame and exception, for the failure message."""
    lines = [line for line in err.splitlines() if "internal error" not in line]
    frames = [line.strip() for line in lines if line.lstrip().startswith("File ")]
    return f"traceback: {frames[-1] if frames else ''}: {lines[-1] if lines else ''}"


def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_cases_cover_every_verb() -> None:
    """The sweep reaches every verb of the parser: a new verb must add its bad options here."""
    from entrosel.cli import build_parser

    def leaves(parser, prefix=()):
        subs = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
        if not subs:
            yield " ".join(prefix)
            return
        for name, sub in subs[0].choices.items():
            yield from leaves(sub, prefix + (name,))

    verbs = set(leaves(build_parser()))
    swept = {v for v in verbs for argv, _ in CASES if (argv + " ").startswith(v + " ")}
    assert verbs - swept == set()


@pytest.mark.parametrize("argv, expected", CASES, ids=IDS)
def test_bad_option_exits_2_naming_it(argv, expected, inputs, tmp_path, capsys) -> None:
    if not HAS_TORCH and (argv.startswith(_NEEDS_LM) or "--probe" in argv.split()):
        pytest.skip("needs the [lm] extra")
    out = tmp_path / "out"
    out.mkdir()
    places = {"pool": inputs / "pool.jsonl", "target": inputs / "target.jsonl",
              "eval": inputs / "eval.jsonl", "scores": inputs / "scores.jsonl",
              "history": inputs / "history.json", "model": inputs / "model",
              "missing": inputs / "missing.jsonl", "inputs": inputs, "out": out}
    args = [a.format(**places) for a in shlex.split(argv)]
    before = _tree(inputs)

    try:
        code = main(args)
    except SystemExit as e:  # argparse refuses a value of the wrong type or choice
        code = e.code
    err = capsys.readouterr().err

    assert "Traceback" not in err, _exception(err)
    assert code == 2, f"exit {code}: {err}"
    lines = _message_lines(err)
    assert len(lines) == 1, f"not one line: {err}"
    pattern = expected.format(**{k: re.escape(str(v)) for k, v in places.items()})
    assert re.search(pattern, lines[0]), f"{expected!r} not named in: {lines[0]}"
    assert _tree(out) == set(), f"written: {_tree(out)}"
    assert _tree(inputs) == before, f"written beside the inputs: {_tree(inputs) - before}"
