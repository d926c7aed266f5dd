"""The entropy law toolkit: L from logs, the version history, the risk rule and the fit."""
from __future__ import annotations

import json

import pytest

from entrosel.commands.law import law_check, law_measure, law_track
from entrosel.errors import InputError
from entrosel.law.check import check_version, spread
from entrosel.law.history import Version, load_history, save_history
from entrosel.law.trainer_state import first_epoch_loss
from tests.conftest import write_jsonl
from tests.test_cli import entrosel


def _v(name, R, L=None, score=None):
    return Version(name, "t", R, L, score, 10, name)


def test_first_epoch_loss_from_trainer_state(tmp_path):
    path = tmp_path / "trainer_state.json"
    path.write_text(json.dumps({"log_history": [
        {"epoch": 0.5, "loss": 3.0, "step": 10}, {"epoch": 1.0, "loss": 2.0, "step": 20},
        {"epoch": 1.0, "eval_loss": 9.0}, {"epoch": 1.5, "loss": 1.0, "step": 30}]}))
    assert first_epoch_loss(path) == 2.5
    path.write_text(json.dumps({"log_history": [{"epoch": 2.0, "loss": 1.0}]}))
    with pytest.raises(InputError, match="first epoch"):
        first_epoch_loss(path)
    path.write_text("{}")
    with pytest.raises(InputError, match="log_history"):
        first_epoch_loss(path)


def test_rule_flags_a_rise_of_R_and_a_fall_of_L():
    history = [_v("a", 2.00, 3.0), _v("b", 2.02, 3.1), _v("c", 1.98, 3.0)]
    assert check_version(history + [_v("d", 2.15, 2.8)]).flags == []
    flags = check_version(history + [_v("d", 2.5, 2.0)]).flags
    assert len(flags) == 2 and flags[0].startswith("R rose") and flags[1].startswith("L fell")
    assert check_version(history).flags == []  # c judged against a and b
    assert check_version(history, "a").earlier == 0
    assert spread([2.0, 2.0]) == pytest.approx(0.1)  # the 5% floor
    with pytest.raises(InputError, match="no version named"):
        check_version(history, "zzz")


def test_fit_predicts_the_score():
    def z(r, l):
        return 1.0 + 2.0 * r - 0.5 * l

    history = [_v(f"v{i}", r, l, z(r, l)) for i, (r, l) in enumerate([(2.0, 3.0), (2.2, 2.5), (1.9, 3.3), (2.4, 2.8)])]
    verdict = check_version(history + [_v("new", 2.1, 3.1, z(2.1, 3.1) + 0.25)])
    f = verdict.fit
    assert (f.a, f.b, f.c) == pytest.approx((1.0, 2.0, -0.5))
    assert f.predicted == pytest.approx(z(2.1, 3.1))
    assert f.error == pytest.approx(0.25)
    assert f.rmse == pytest.approx(0.0, abs=1e-9)
    assert check_version(history[:3] + [_v("new", 2.1, 3.1)]).fit is not None  # 3 are enough
    assert check_version(history[:2] + [_v("new", 2.1, 3.1)]).fit is None


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_history_roundtrip(tmp_path, suffix):
    path = tmp_path / f"h{suffix}"
    versions = [_v("a", 2.0, 3.0, 0.5), _v("b", 2.1)]
    save_history(path, versions)
    assert load_history(path) == versions


def test_track_and_check_on_real_data(tmp_path, real_exchanges):
    base = real_exchanges[:300]
    v1 = write_jsonl(tmp_path / "v1.jsonl", base)
    v2 = write_jsonl(tmp_path / "v2.jsonl", real_exchanges[300:600])
    # every sample twice in a row: zlib's 32 KiB window sees a duplicate only when it is near
    v3 = write_jsonl(tmp_path / "v3.jsonl", [r for r in base[:150] for _ in (0, 1)])
    history = tmp_path / "history.json"
    assert law_track(history, "v1", v1, loss=2.0)[1] == "added"
    law_track(history, "v2", v2, loss=2.05)
    assert law_track(history, "v2-again", v2)[1].startswith("unchanged")
    assert len(load_history(history)) == 2
    assert law_check(history).flags == []
    r = entrosel("law", "track", history, "--add", "v3", v3, "--loss", "1.98", check=True)
    assert "added" in r.stderr
    r = entrosel("law", "check", history)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "RISK: R rose" in r.stdout
    r = entrosel("law", "check", history, "v2")
    assert r.returncode == 0 and "no risk flagged" in r.stdout
    m = law_measure(v3)
    assert m["records"] == 300 and m["R"] == load_history(history)[-1].R


def test_measure_with_probe_gives_L(tmp_path, real_exchanges):
    pytest.importorskip("torch")
    path = write_jsonl(tmp_path / "v.jsonl", real_exchanges[:40])
    a = law_measure(path, probe=True, seed=1)
    assert a["L"] > 0 and a["L_from"] == "probe tiny seed 1"
    assert law_measure(path, probe=True, seed=1)["L"] == a["L"]
    with pytest.raises(InputError, match="one way"):
        law_measure(path, probe=True, loss=1.0)


def test_measure_counts_tokens_and_reads_trainer_state(tmp_path, real_exchanges):
    from entrosel.formats import render_text
    from tests.lm_fixtures import bpe_tokenizer_file

    records = real_exchanges[:30]
    texts = [render_text(r) for r in records]
    tok = bpe_tokenizer_file(texts, tmp_path / "tokenizer.json", vocab_size=300)
    state = tmp_path / "trainer_state.json"
    state.write_text(json.dumps({"log_history": [{"epoch": 0.5, "loss": 1.5}, {"epoch": 1.0, "loss": 1.25}]}))
    path = write_jsonl(tmp_path / "v.jsonl", records)
    m = law_measure(path, tokenizer=str(tmp_path / "tokenizer.json"), trainer_state=state)
    assert m["tokens"] == sum(len(tok.encode(t).ids) for t in texts)
    assert m["L"] == 1.375 and m["L_from"] == str(state)


# The rule's standard-deviation branch and --sigma (issue 15). The histories below spread
# far more than 5% of their mean, so the sample standard deviation decides; the new values
# sit between the limits that other spreads (the floor, the population std) would give.
WIDE_R = [2.0, 2.4, 1.6]  # mean 2.0; sample std 0.4; population std 0.327; floor 0.1
WIDE_L = [3.0, 3.6, 2.4]  # mean 3.0; sample std 0.6; population std 0.490; floor 0.15


def _wide(new_R: float, new_L: float | None = None) -> list[Version]:
    return [_v(f"v{i}", r, l) for i, (r, l) in enumerate(zip(WIDE_R, WIDE_L))] + [_v("new", new_R, new_L)]


def test_spread_is_the_sample_std_when_it_exceeds_the_floor():
    assert spread([2.0, 2.4, 1.6]) == pytest.approx(0.4)  # ddof 1: sqrt(0.32 / 2)
    assert spread([3.0, 3.6, 2.4]) == pytest.approx(0.6)
    assert spread([2.0, 2.2]) == pytest.approx(0.1414213562)  # sample std of two values
    assert spread([2.0, 2.1]) == pytest.approx(0.1025)  # their std 0.0707 is below the floor
    assert spread([4.0]) == pytest.approx(0.2)  # one value: the floor alone
    assert spread([-2.0, -2.0]) == pytest.approx(0.1)  # 5% of |mean|


def test_rule_with_a_wide_history_uses_its_sample_std():
    # R limit 2.0 + 2 * 0.4 = 2.8 (the floor would give 2.2, the population std 2.653);
    # L floor 3.0 - 2 * 0.6 = 1.8 (with 0.15: 2.7, with the population std 2.020)
    assert check_version(_wide(2.75, 1.9)).flags == []
    flags = check_version(_wide(2.85, 1.7)).flags
    assert len(flags) == 2
    assert flags[0].startswith("R rose to 2.8500, above 2.8000 (mean 2.0000 + 2 x spread 0.4000)")
    assert flags[1].startswith("L fell to 1.7000, below 1.8000 (mean 3.0000 - 2 x spread 0.6000)")


@pytest.mark.parametrize("sigma,new_R,new_L,flagged", [
    (2.0, 3.0, None, ["R"]), (3.0, 3.0, None, []),       # R limit 2.8 at sigma 2, 3.2 at 3
    (1.0, 2.5, None, ["R"]), (2.0, 2.5, None, []),       # 2.4 at sigma 1
    (1.5, 2.5, None, []), (1.2, 2.5, None, ["R"]),       # 2.6 at 1.5, 2.48 at 1.2
    (2.0, 2.0, 1.7, ["L"]), (3.0, 2.0, 1.7, []),         # L floor 1.8 at sigma 2, 1.2 at 3
    (0.5, 2.21, 2.65, ["R", "L"]), (2.0, 2.21, 2.65, []),  # 2.2 and 2.7 at sigma 0.5
])
def test_sigma_moves_the_limits(sigma, new_R, new_L, flagged):
    verdict = check_version(_wide(new_R, new_L), sigma=sigma)
    assert [f[0] for f in verdict.flags] == flagged
    for f in verdict.flags:
        assert f" {sigma:g} x spread " in f


def test_sigma_applies_to_the_floor_too():
    history = [_v("a", 2.0, 3.0), _v("b", 2.0, 3.0)]  # no spread at all: the 5% floor
    assert check_version(history + [_v("c", 2.25, 3.0)]).flags[0].startswith("R rose")
    assert check_version(history + [_v("c", 2.25, 3.0)], sigma=3).flags == []  # limit 2.3
    assert check_version(history + [_v("c", 2.0, 2.6)]).flags[0].startswith("L fell")
    assert check_version(history + [_v("c", 2.0, 2.6)], sigma=3).flags == []  # floor 2.55


def test_law_check_cli_passes_sigma(tmp_path):
    history = tmp_path / "history.json"
    save_history(history, _wide(3.0, 3.0))
    r = entrosel("law", "check", history)
    assert r.returncode == 3 and "RISK: R rose to 3.0000, above 2.8000" in r.stdout, r.stdout + r.stderr
    r = entrosel("law", "check", history, "--sigma", "3")
    assert r.returncode == 0 and "no risk flagged" in r.stdout, r.stdout + r.stderr
    assert law_check(history, sigma=3).flags == [] and law_check(history).flags
