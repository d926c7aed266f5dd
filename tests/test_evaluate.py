"""``entrosel evaluate``: same model, same work, each subset; compared on held-out sets."""
from __future__ import annotations

import json
import math
import re
import subprocess

import pytest

pytest.importorskip("torch")
pytest.importorskip("matplotlib")

import torch  # noqa: E402

from entrosel.cli import main  # noqa: E402
from entrosel.commands.evaluate import evaluate  # noqa: E402
from entrosel.evaluate import runner, train  # noqa: E402
from entrosel.evaluate.data import read_eval_set, read_text_set  # noqa: E402
from entrosel.evaluate.measures import Measures  # noqa: E402
from entrosel.evaluate.train import IGNORE, pack_rows, scratch_gpt2, train_rows  # noqa: E402
from entrosel.formats.render import Turn  # noqa: E402
from entrosel.probe.train import ProbeSize, train_tokenizer  # noqa: E402
from tests.conftest import write_jsonl  # noqa: E402
from tests.lm_fixtures import tiny_lm  # noqa: E402
from tests.test_report import CHROMIUM_FLAGS, _chromium  # noqa: E402

TIMINGS = {"seconds", "train_seconds", "tokens_per_s"}


def _mc_records() -> list[dict]:
    return [{"question": f"What is {a} plus {b}?", "choices": [str(a + b), str(a + b + 3), "a blue whale"],
             "answer": 0} for a in range(3) for b in range(3)]


@pytest.fixture(scope="module")
def degenerate_run(tmp_path_factory, real_exchanges):
    """Real ShareGPT exchanges: a random subset of the pool against one record repeated
    1,500 times, the tiny model, equal tokens, two seeds."""
    import random

    d = tmp_path_factory.mktemp("degenerate")
    pool, held = real_exchanges[:500], real_exchanges[520:550]
    random_subset = write_jsonl(d / "random.jsonl", random.Random(0).sample(pool, 250))
    degenerate = write_jsonl(d / "degenerate.jsonl", [pool[7]] * 1500)
    heldout = write_jsonl(d / "heldout.jsonl", held)
    mc = write_jsonl(d / "mc.jsonl", _mc_records())
    torch.set_num_threads(1)
    results = evaluate([random_subset, degenerate], [heldout, mc], d / "out", tokens=16_384, seeds=[0, 1],
                       rank_prompts=10, device="cpu", progress=False)
    return d, results


def test_degenerate_subset_ranks_clearly_below_random(degenerate_run):
    _, results = degenerate_run
    rnd, deg = results["subsets"]
    assert results["baseline"] == "random" and deg["subset"] == "degenerate"
    # equal work: the 250-record subset is cut, the 1,500 copies cycled, to the same tokens
    assert rnd["trained_tokens"] == deg["trained_tokens"] == 16_384
    assert deg["records"] == 1500 and deg["R"] > 10 * rnd["R"]
    gap = deg["eval_loss"]["heldout"] - rnd["eval_loss"]["heldout"]
    assert gap > 0.1, gap
    assert deg["vs_baseline"]["eval_loss"] == pytest.approx(gap)
    assert deg["vs_baseline"]["eval_loss_beyond_2x_spread"] is True
    # the degenerate subset is easy to learn: a lower first-pass loss, a worse model
    assert deg["L"] < rnd["L"]


def test_results_have_every_key_and_the_files(degenerate_run):
    d, results = degenerate_run
    on_disk = json.loads((d / "out" / "results.json").read_text())
    assert on_disk["subsets"][0]["eval_loss"] == results["subsets"][0]["eval_loss"]
    row = on_disk["subsets"][1]
    for key in ("subset", "records", "tokens", "R", "L", "eval_loss", "eval_loss_std", "eval_acc",
                "eval_acc_std", "eval_acc_norm", "eval_rank_acc", "seconds", "seeds", "vs_baseline"):
        assert key in row, key
    assert set(row["eval_loss"]) == {"heldout", "mc", "mean"}
    assert row["eval_loss"]["mean"] == row["eval_loss"]["heldout"]  # the mean is over loss sets
    assert set(row["eval_acc"]) == {"mc", "mean"} and 0 <= row["eval_acc"]["mc"] <= 1
    assert [s["seed"] for s in row["seeds"]] == [0, 1]
    assert row["eval_loss_std"]["mean"] == pytest.approx(
        abs(row["seeds"][0]["eval_loss"]["mean"] - row["seeds"][1]["eval_loss"]["mean"]) / math.sqrt(2))
    assert 0 <= row["eval_rank_acc"]["heldout"] <= 1
    assert "subsets" not in on_disk["tokenizer"] or "distinct records" in on_disk["tokenizer"]
    csv_text = (d / "out" / "results.csv").read_text()
    assert csv_text.splitlines()[0].startswith("subset,path,records,tokens")
    assert len(csv_text.splitlines()) == 3
    assert len(list((d / "out" / "runs").glob("*.json"))) == 4 + 1  # 2 subsets x 2 seeds, the tokenizer


def test_report_page_shows_its_plots_in_chromium(degenerate_run, tmp_path):
    d, _ = degenerate_run
    page = d / "out" / "report.html"
    assert len(re.findall(r"data:image/png;base64,", page.read_text())) == 4
    browser = _chromium()
    profile = tmp_path / "profile"
    dom = subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert 'data-images="rendered"' in dom.stdout, dom.stderr[-2000:]
    assert "degenerate" in dom.stdout


def _strip_timings(value):
    if isinstance(value, dict):
        return {k: _strip_timings(v) for k, v in value.items() if k not in TIMINGS}
    if isinstance(value, list):
        return [_strip_timings(v) for v in value]
    return value


def test_a_rerun_after_an_interrupt_skips_finished_runs_and_gives_the_same_results(tmp_path, real_exchanges,
                                                                                 monkeypatch):
    a = write_jsonl(tmp_path / "a.jsonl", real_exchanges[:40])
    b = write_jsonl(tmp_path / "b.jsonl", real_exchanges[40:60])
    held = write_jsonl(tmp_path / "held.jsonl", real_exchanges[80:85])
    options = dict(tokens=2048, seeds=[0, 3], rank_prompts=3, rank_candidates=3, device="cpu", progress=False)
    torch.set_num_threads(1)
    clean = evaluate([a, b], [held], tmp_path / "clean", **options)

    calls, interrupt = [], True
    real_train = train.train_rows

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3 and interrupt:
            raise KeyboardInterrupt
        return real_train(*args, **kwargs)

    monkeypatch.setattr(train, "train_rows", interrupted)
    with pytest.raises(KeyboardInterrupt):
        evaluate([a, b], [held], tmp_path / "resumed", **options)
    assert not (tmp_path / "resumed" / "results.json").exists()
    assert len(list((tmp_path / "resumed" / "runs").glob("*.json"))) == 2 + 1
    calls.clear()
    interrupt = False
    resumed = runner.Evaluator(**options)
    again = resumed.run([a, b], [held], tmp_path / "resumed")
    assert len(calls) == 2 and resumed.reused_runs == 2
    assert _strip_timings(again) == _strip_timings(clean)
    on_disk = json.loads((tmp_path / "resumed" / "results.json").read_text())
    assert _strip_timings(on_disk) == _strip_timings(json.loads((tmp_path / "clean" / "results.json").read_text()))
    # another option is another run: nothing is reused
    other = runner.Evaluator(**{**options, "seeds": [1]})
    other.run([a], [held], tmp_path / "resumed")
    assert other.reused_runs == 0


def test_epochs_and_a_tokenizer_of_its_own_data(tmp_path, real_exchanges, capsys):
    sub = write_jsonl(tmp_path / "sub.jsonl", real_exchanges[:12])
    pool = write_jsonl(tmp_path / "pool.jsonl", real_exchanges[100:160])
    held = write_jsonl(tmp_path / "held.jsonl", real_exchanges[60:63])
    torch.set_num_threads(1)
    results = evaluate(sub, held, tmp_path / "o", epochs=2, tokenizer_data=pool, rank_prompts=0,
                       device="cpu", progress=False)
    row = results["subsets"][0]
    rows = pack_rows(read_text_set(sub).samples, _pool_tokenizer(tmp_path / "o" / "runs"), 128)
    assert row["trained_tokens"] == 2 * len(rows) * 128
    assert results["tokenizer"].endswith(f"trained on {pool}")
    assert main(["evaluate", str(sub), "--eval", str(pool), "--tokenizer-data", str(pool), "-o",
                 str(tmp_path / "o2"), "--no-progress"]) == 2
    assert re.search(r"pool\.jsonl: 60 of its 60 distinct records are also in the tokenizer's data",
                     capsys.readouterr().err)
    assert not (tmp_path / "o2").exists()


def _pool_tokenizer(runs):
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    (path,) = runs.glob("tokenizer-*.json")
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(path.read_text()),
                                   bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<pad>")


def test_response_target_trains_only_on_assistant_tokens():
    samples = [[Turn("user", "Name a colour please."), Turn("assistant", "Blue like the sky.")],
               [Turn("user", "Add two and three."), Turn("assistant", "Five.")]] * 30
    tok = train_tokenizer(["Name a colour please. Blue like the sky. Add two and three. Five."] * 5, 300)
    rows = pack_rows(samples, tok, 32, "response")
    trained = rows.ids[rows.labels != IGNORE].tolist()
    text = tok.decode(trained)
    assert "Blue like the sky." in text and "Five." in text
    assert "colour" not in text and "Add" not in text
    all_rows = pack_rows(samples, tok, 32, "all")
    assert (all_rows.labels[:, 1:] != IGNORE).all()  # every token but a row's first
    assert rows.tokens == all_rows.tokens


def test_equal_work_cycles_a_small_subset_and_cuts_a_large_one():
    small = train.plan(3, 8, seed=0)
    assert len(small) == 8 and sorted(small[:3]) == [0, 1, 2] and sorted(small[3:6]) == [0, 1, 2]
    large = train.plan(100, 10, seed=0)
    assert len(large) == 10 and max(large) < 10  # the first 10 rows, shuffled
    assert train.plan(100, 10, seed=0) == large != train.plan(100, 10, seed=1)


COLOURS = [("a ripe banana", "yellow"), ("grass", "green"), ("snow", "white"), ("coal", "black"),
           ("the sky", "blue"), ("blood", "red")]


def test_multiple_choice_scores_each_choice_by_its_log_likelihood(tmp_path):
    """A tiny set built here: its scores equal a direct forward pass, and a model trained on
    the right answers (always "yes", at a different index in each question) picks them."""
    options = ["yes", "no", "not sure"]
    records = [{"question": f"Is {thing} {colour}?", "choices": options[i % 3:] + options[:i % 3],
                "answer": (3 - i % 3) % 3} for i, (thing, colour) in enumerate(COLOURS)]
    mc = read_eval_set(write_jsonl(tmp_path / "mc.jsonl", records))
    spec = ProbeSize(vocab_size=400, context=32, n_embd=64, n_layer=2, n_head=2, batch_size=16,
                     learning_rate=3e-3)
    assert [item.choices[item.answer] for item in mc.items] == ["yes"] * 6
    assert {item.answer for item in mc.items} == {0, 1, 2}
    tok = train_tokenizer([f"{item.context}\n\n{c}" for item in mc.items for c in item.choices], 400)
    torch.set_num_threads(1)
    model = scratch_gpt2(tok, spec, seed=0)
    measures = Measures([mc], ["mc"], tok, context=spec.context)
    scores = measures.choice_scores(model, mc)
    item, (nll, _) = mc.items[4], scores[4]
    for c, choice in enumerate(item.choices):
        context = [tok.bos_token_id] + tok(item.context + "\n\n", add_special_tokens=False)["input_ids"]
        cont = tok(item.context + "\n\n" + choice, add_special_tokens=False)["input_ids"][len(context) - 1:]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([context + cont])).logits[0, :-1]
        logp = torch.log_softmax(logits.float(), dim=-1)
        direct = -sum(logp[len(context) - 1 + j, t].item() for j, t in enumerate(cont))
        assert nll[c] == pytest.approx(direct, rel=1e-4)
    before = measures.choice(model, mc)
    rows = pack_rows([[Turn("user", item.context), Turn("assistant", item.choices[item.answer])]
                      for item in mc.items] * 10, tok, spec.context, "response")
    train_rows(model, rows, 30 * 16, learning_rate=3e-3, batch_size=16, seed=0)
    result = measures.choice(model, mc)
    assert result["acc"] == 1.0 and result["acc_norm"] == 1.0 and result["questions"] == 6
    assert result["loss"] < before["loss"] - 1


def test_mmlu_layout_and_bad_choice_records(tmp_path, capsys):
    mmlu = write_jsonl(tmp_path / "mmlu.jsonl", [{"question": "2+2?", "answer_a": "3", "answer_b": "4",
                                                  "answer_c": "5", "answer_d": "22", "correct_answer": "B"}])
    (item,) = read_eval_set(mmlu).items
    assert item.choices == ("3", "4", "5", "22") and item.answer == 1
    bad = write_jsonl(tmp_path / "bad.jsonl", _mc_records()[:2] + [{"question": "q", "choices": ["x", "y"],
                                                                     "answer": 5}])
    sub = write_jsonl(tmp_path / "sub.jsonl", [{"text": "some training text"}])
    assert main(["evaluate", str(sub), "--eval", str(bad), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert re.search(r"bad\.jsonl:3: record 2: 'answer' must be the index", err), err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("case", ["missing", "empty", "overlap", "model", "both-budgets", "cuda"])
def test_bad_input_exits_2_naming_the_file_and_writes_nothing(tmp_path, capsys, real_exchanges, case):
    sub = write_jsonl(tmp_path / "sub.jsonl", real_exchanges[:30])
    held = write_jsonl(tmp_path / "held.jsonl", real_exchanges[30:40])
    args = [str(sub), "--eval", str(held)]
    if case == "missing":
        args[0] = str(tmp_path / "nope.jsonl")
        expected = r"nope\.jsonl: no such file"
    elif case == "empty":
        (tmp_path / "empty.jsonl").write_text("")
        args[0] = str(tmp_path / "empty.jsonl")
        expected = r"empty\.jsonl: .*no records"
    elif case == "overlap":
        write_jsonl(held, real_exchanges[25:40])
        expected = r"held\.jsonl: 5 of its 15 distinct records are also in the subset .*sub\.jsonl"
    elif case == "model":
        args += ["--model", str(tmp_path / "no-such-model")]
        expected = r"no-such-model: no such model"
    elif case == "both-budgets":
        args += ["--tokens", "100", "--epochs", "1"]
        expected = r"not allowed with argument"
    else:
        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU")
        args += ["--device", "cuda"]
        expected = r"--device cuda asked for, but PyTorch sees no CUDA device"
    out = tmp_path / "out"
    try:
        code = main(["evaluate", *args, "-o", str(out), "--no-progress"])
    except SystemExit as e:  # argparse refuses the two budgets itself
        code = e.code
    assert code == 2
    assert re.search(expected, capsys.readouterr().err)
    assert not out.exists()


def test_fine_tuning_a_pretrained_model_with_its_own_tokenizer(tmp_path, capsys, real_exchanges):
    model = tiny_lm(tmp_path / "lm", bos=False)
    sub = write_jsonl(tmp_path / "sub.jsonl", real_exchanges[:10])
    held = write_jsonl(tmp_path / "held.jsonl", real_exchanges[60:66])
    torch.set_num_threads(1)
    code = main(["evaluate", str(sub), "--eval", str(held), "--model", str(model), "--tokens", "1024",
                 "--context", "64", "--target", "response", "--rank-prompts", "3", "-o", str(tmp_path / "o"),
                 "--no-progress", "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert re.search(r"^sub\s+10\s", captured.out, re.M)
    results = json.loads((tmp_path / "o" / "results.json").read_text())
    assert results["tokenizer"].startswith("the model's own")
    assert results["options"]["context"] == 64 and results["options"]["learning_rate"] == 5e-5
    assert results["subsets"][0]["trained_tokens"] == 1024
    assert math.isfinite(results["subsets"][0]["eval_loss"]["held"])
