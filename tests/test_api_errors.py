"""The Python API's mistakes: each raises entrosel.InputError (ParameterError is one) with a
message saying what to give, never a bare TypeError or ValueError (the command line's sweep
is tests/test_bad_options.py)."""
from __future__ import annotations

import pytest

import entrosel as e

POOL = [{"text": f"hello world {i} " * (i + 1)} for i in range(20)]

CASES = {
    "a budget given as text": (lambda tmp: e.ZipSelector(budget="3").select(POOL), "--budget must be an integer"),
    "a pool that is a number": (lambda tmp: e.ZipSelector(budget=3).select(42), "a pool is a path, a list of dicts"),
    "a pool that is None": (lambda tmp: e.RandomSelector(budget=3).select(None), "not NoneType"),
    "one record as the pool": (lambda tmp: e.ZipSelector(budget=3).select({"text": "a"}), "put it in a list"),
    "records that are not dicts": (lambda tmp: e.RandomSelector(budget=1).select([[1, 2]]), "record 0 is a list"),
    "a pool path that is not there": (lambda tmp: e.ZipSelector(budget=3).select(str(tmp / "no.jsonl")),
                                      "no such file"),
    "a filter's bound as text": (lambda tmp: e.LengthFilter(min_chars="a").fit(POOL), "--min-chars must be"),
    "a filter's pool that is a number": (lambda tmp: e.LengthFilter(min_chars=3).fit(5), "a pool is a path"),
    "a threshold out of range": (lambda tmp: e.Dedup(threshold=2).fit(POOL), "--threshold must be"),
    "a level as text": (lambda tmp: e.CompressionScorer(level="x").score_file(POOL, tmp / "s.jsonl"),
                        "--level must be an integer"),
    "an output that is a number": (lambda tmp: e.CompressionScorer().score_file(POOL, 5), "an output is a file name"),
    "a score selector without scores": (lambda tmp: e.PruneSelector(by="x", keep=0.5).select(POOL),
                                        "--scores must be"),
    "a fractional budget": (lambda tmp: e.RandomSelector(budget=2.5).select(POOL), "--budget must be"),
    "measure of a number": (lambda tmp: e.measure(5), "a pool is a path"),
    "read_records of a number": (lambda tmp: list(e.read_records(5)), "an input is a file or folder name"),
    "an unknown output format": (lambda tmp: e.write_records(POOL, tmp / "x.xyz"), "cannot tell the output format"),
    "a text that is a number": (lambda tmp: e.ZipSelector(budget=3).select([{"text": 5}] * 5),
                                "'text' must be a string"),
    "a recipe that is not there": (lambda tmp: e.run_recipe(tmp / "no.yaml"), "no such recipe file"),
}


@pytest.mark.parametrize("case", CASES)
def test_an_api_mistake_raises_input_error(case, tmp_path):
    call, message = CASES[case]
    with pytest.raises(e.InputError, match=message):
        call(tmp_path)
