"""The README's promise on bad input, verb by verb: a malformed line and a record without
text stop the run with ``file:line: reason`` (exit 2, no traceback, no output), and
``--on-error skip`` goes on (exit 0), writes them with their reasons and says how many."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from entrosel.cli import main
from tests.conftest import write_jsonl


@pytest.fixture(scope="module")
def bad_pool(tmp_path_factory, real_exchanges) -> Path:
    folder = tmp_path_factory.mktemp("bad")
    path = write_jsonl(folder / "pool.jsonl", real_exchanges[:40])
    lines = path.read_text().splitlines()
    lines[5] = '{"id": "broken", "conversations": ['   # line 6: malformed JSON
    lines[9] = '{"id": "textless", "meta": 1}'          # line 10: no text to render
    path.write_text("\n".join(lines) + "\n")
    write_jsonl(folder / "good.jsonl", real_exchanges[40:80])  # a target without bad records
    return path


@pytest.fixture(scope="module")
def scores(tmp_path_factory, bad_pool) -> Path:
    out = tmp_path_factory.mktemp("scores") / "scores.jsonl"
    assert main(["score", "compression", str(bad_pool), "-o", str(out), "--workers", "1",
                 "--on-error", "skip"]) == 0
    return out


@pytest.fixture(scope="module")
def probe(tmp_path_factory, real_exchanges) -> Path:
    pytest.importorskip("torch")
    folder = tmp_path_factory.mktemp("probe")
    pool = write_jsonl(folder / "train.jsonl", real_exchanges[:60])
    assert main(["probe", "train", str(pool), "-o", str(folder / "probe"), "--no-progress"]) == 0
    return folder / "probe"


# (verb arguments with INPUT and OUT placeholders, where the rejects go, what the summary says)
VERBS = {
    "score compression": (["score", "compression", "INPUT", "-o", "OUT.jsonl", "--workers", "1"], "OUT.jsonl"),
    "score words": (["score", "words", "INPUT", "-o", "OUT.jsonl"], "OUT.jsonl"),
    "score lm": (["score", "lm", "INPUT", "-o", "OUT.jsonl", "--model", "PROBE"], "OUT.jsonl"),
    "measure": (["measure", "INPUT"], "INPUT"),
    "select zip": (["select", "zip", "INPUT", "-o", "OUT.jsonl", "--budget", "5", "--k1", "10",
                    "--k2", "5", "--k3", "2", "--workers", "1"], "OUT.jsonl"),
    "select zip zstd": (["select", "zip", "INPUT", "-o", "OUT.jsonl", "--budget", "5", "--k1", "10",
                         "--k2", "5", "--k3", "2", "--workers", "1", "--compressor", "zstd"], "OUT.jsonl"),
    "select random": (["select", "random", "INPUT", "-o", "OUT.jsonl", "--budget", "5"], "OUT.jsonl"),
    "select prune": (["select", "prune", "INPUT", "-o", "OUT.jsonl", "--scores", "SCORES", "--by",
                      "compression_ratio", "--keep", "0.5"], "OUT.jsonl"),
    "select topk": (["select", "topk", "INPUT", "-o", "OUT.jsonl", "--scores", "SCORES", "--by",
                     "compression_ratio", "--budget", "5"], "OUT.jsonl"),
    "select band": (["select", "band", "INPUT", "-o", "OUT.jsonl", "--scores", "SCORES", "--by",
                     "compression_ratio", "--low", "10", "--high", "90"], "OUT.jsonl"),
    "probe train": (["probe", "train", "INPUT", "-o", "OUT", "--no-progress"], "OUT"),
    "law measure": (["law", "measure", "INPUT"], "INPUT"),
    "law track": (["law", "track", "OUT.json", "--add", "v1", "INPUT"], "INPUT"),
    "filter length": (["filter", "length", "INPUT", "-o", "OUT.jsonl", "--min-chars", "20"], "OUT.jsonl"),
    "filter dedup": (["filter", "dedup", "INPUT", "-o", "OUT.jsonl", "--near"], "OUT.jsonl"),
    "filter score": (["filter", "score", "INPUT", "-o", "OUT.jsonl", "--scores", "SCORES", "--by",
                      "compression_ratio", "--min", "1.5"], "OUT.jsonl"),
    "select target": (["select", "target", "INPUT", "--target", "GOOD", "-o", "OUT.jsonl",
                       "--budget", "5", "--workers", "1"], "OUT.jsonl"),
}


def _args(template: list[str], tmp_path: Path, bad_pool: Path, scores: Path | None,
          probe: Path | None) -> list[str]:
    out = tmp_path / "out"
    swap = {"INPUT": str(bad_pool), "SCORES": str(scores), "PROBE": str(probe),
            "GOOD": str(bad_pool.with_name("good.jsonl"))}
    return [swap.get(a, a.replace("OUT", str(out))) for a in template]


@pytest.mark.parametrize("verb", list(VERBS))
def test_bad_records_stop_the_run_or_are_skipped_with_reasons(verb, tmp_path, bad_pool, request,
                                                               capsys):
    template, rejects_of = VERBS[verb]
    scores = request.getfixturevalue("scores") if "SCORES" in template else None
    probe = request.getfixturevalue("probe") if "PROBE" in template else None
    args = _args(template, tmp_path, bad_pool, scores, probe)

    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{bad_pool}:6: record 5: malformed JSON" in err
    assert "Traceback" not in err
    assert not list(tmp_path.iterdir())  # nothing written

    assert main(args + ["--on-error", "skip"]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "2 records rejected" in err or "2 rejected" in err
    target = bad_pool if rejects_of == "INPUT" else tmp_path / rejects_of.replace("OUT", "out")
    rejects_file = Path(f"{target}.rejects.jsonl")
    rejected = [json.loads(line) for line in rejects_file.read_text().splitlines()]
    rejects_file.unlink()  # the pool is shared by the verbs
    assert [(r["index"], r["line"]) for r in rejected] == [(5, 6), (9, 10)]
    assert "malformed JSON" in rejected[0]["reason"] and "no text found" in rejected[1]["reason"]
