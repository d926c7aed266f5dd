"""The experiment script's own logic (benchmarks/entropy_law_experiment.py): the ShareGPT split,
budgets cut in supervised tokens, length-matched controls, the grid's verdicts on made-up runs
whose answer is known, a small grid end to end (a tiny model, resumed), and docs/RESULTS.md
against its JSON (benchmarks/results_page.py). Its full runs are documented in docs/RESULTS.md."""
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "entropy_law_experiment.py"


@pytest.fixture(scope="module")
def experiment():
    spec = importlib.util.spec_from_file_location("entropy_law_experiment", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_sharegpt_split_keeps_conversations_whole(experiment, tmp_path):
    """Exchanges go with their conversation, also when an empty conversation has the same id
    just before it (ShareGPT has such ids); held-out and pool share no conversation."""
    turn = [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]
    conversations = [{"id": "a", "conversations": turn}, {"id": "b", "conversations": []},
                     {"id": "b", "conversations": turn}] + [{"id": f"c{i}", "conversations": turn} for i in range(6)]
    exchanges = [{"id": "a_0"}, {"id": "a_1"}, {"id": "b_0"}] + [{"id": f"c{i}_0"} for i in range(6)]
    _jsonl(tmp_path / "sharegpt-conversations.jsonl", conversations)
    path = _jsonl(tmp_path / "pool.jsonl", exchanges)
    cfg = experiment.Config(pool=7, heldout=2)  # all nine exchanges are placed
    pool, heldout = experiment.split_sharegpt(cfg, path)
    assert len(pool) == 7 and len(heldout) == 2
    conversation = lambda rows: {r["id"].rsplit("_", 1)[0] for r in rows}
    assert not conversation(pool) & conversation(heldout)
    ids = [r["id"] for r in pool + heldout]
    assert len(ids) == len(set(ids))
    # a's two exchanges stay side by side, in the pool or the held-out split
    assert "a_0" in ids and "a_1" in ids
    assert abs(ids.index("a_0") - ids.index("a_1")) == 1


# ---------------------------------------------------------------- SmolLM2 setting: budgets, controls, verdicts

def test_cut_stops_once_the_budget_is_held(experiment):
    tokens = [5, 10, 20, 40, 80]
    assert experiment.cut([4, 0, 1], tokens, 80) == [4]
    assert experiment.cut([0, 1, 2, 3], tokens, 30) == [0, 1, 2]  # 35 >= 30: the last one taken whole
    assert experiment.cut([0, 1, 2, 3], tokens, 35) == [0, 1, 2]
    with pytest.raises(RuntimeError):
        experiment.cut([0, 1], tokens, 100)


def test_length_matched_draw_has_the_methods_histogram_and_budget(experiment):
    rng = np.random.default_rng(0)
    tokens = [int(t) for t in rng.integers(10, 1000, 2000)]
    short_first = sorted(range(2000), key=lambda i: tokens[i])
    chosen = experiment.cut(short_first, tokens, 8000)  # a method that picks short records
    matched = experiment.length_matched(chosen, tokens, 8000, seed=1)
    assert sum(tokens[i] for i in matched) >= 8000
    assert sum(tokens[i] for i in matched[:-1]) < 8000
    assert len(set(matched)) == len(matched)
    edges = np.quantile(tokens, np.linspace(0, 1, 11)[1:-1])
    decile = lambda idx: np.bincount(np.searchsorted(edges, [tokens[i] for i in idx], side="right"), minlength=10)
    assert decile(chosen)[0] == len(chosen)  # all in the shortest decile...
    assert decile(matched)[0] == len(matched)  # ...and so is the control
    assert matched != chosen[: len(matched)]  # a random draw, not the method's own picks


def _fake_run(budget, stem, kind, loss, acc, chit=6.0, n=40, offset=None):
    """A finished run whose per-example losses are ``loss`` (+ a fixed pattern) on every example."""
    pattern = np.linspace(-0.5, 0.5, n) if offset is None else offset
    per = loss + pattern
    return {"budget": budget, "stem": stem, "kind": kind, "label": stem, "records": 10,
            "mean_supervised_per_record": 100.0, "supervised_tokens": 1000, "trained_tokens": 1200,
            "R": 3.0 + loss / 10, "L": loss + 0.1, "steps": 3, "seconds": 1.0, "tokens_per_s": 100.0,
            "loss": {"heldout-sharegpt": float(np.mean(per)), "chitchat": chit}, "acc": {"mmlu": acc},
            "detail": {"heldout-sharegpt": {"per_record": {"nll": (per * 10).tolist(), "tokens": [10] * n}},
                       "chitchat": {"per_record": {"nll": [chit * 10] * n, "tokens": [10] * n}},
                       "mmlu": {"correct": [1] * int(acc * 20) + [0] * (20 - int(acc * 20))}}}


def test_analysis_tells_a_clear_winner_a_clear_loser_and_noise(experiment):
    cfg = experiment.SmolConfig(budgets=(1000,), draws=10)
    rng = np.random.default_rng(0)
    draws = [6.0 + 0.01 * z for z in rng.normal(size=10)]
    runs = [_fake_run(1000, f"random-{k}", "random", v, 0.25, chit=6.0 + 0.01 * k) for k, v in enumerate(draws)]
    runs += [_fake_run(1000, "default-recipe", "method", 5.8, 0.25),  # 20 draw-stds better
             _fake_run(1000, "zip-paper", "method", 6.2, 0.25),       # 20 worse
             _fake_run(1000, "dedup-random", "method", float(np.mean(draws)), 0.25)]  # the draws' mean
    block = experiment.analyse(runs, cfg)["1000"]
    rows = block["measures"]["heldout-sharegpt"]["rows"]
    assert rows["default-recipe"]["answer"] == "better"
    assert rows["default-recipe"]["rank"] == 1
    assert rows["default-recipe"]["rank_p"] == pytest.approx(2 / 11)
    assert rows["zip-paper"]["answer"] == "worse"
    assert rows["zip-paper"]["rank"] == 11
    assert rows["dedup-random"]["answer"] == "indistinguishable"
    assert rows["dedup-random"]["p"] == pytest.approx(1.0, abs=1e-6)
    # Holm over the three methods: the smallest p is multiplied by 3
    ps = sorted(rows[s]["p"] for s in ("default-recipe", "zip-paper", "dedup-random"))
    assert min(rows[s]["p_holm"] for s in rows) == pytest.approx(min(1.0, 3 * ps[0]))
    # every example moved by the same amount: the interval over examples is that amount
    ci = rows["default-recipe"]["ci"]
    assert ci["low"] == pytest.approx(ci["high"]) == pytest.approx(5.8 - np.mean(draws))
    # all models at the same MMLU accuracy: nothing to tell
    assert {r["answer"] for r in block["measures"]["mmlu"]["rows"].values()} == {"indistinguishable"}
    assert block["law"]["points"] == 13


def test_analysis_refuses_a_subset_far_past_the_budget(experiment):
    cfg = experiment.SmolConfig(budgets=(1000,), draws=10)
    runs = [_fake_run(1000, f"random-{k}", "random", 6.0 + 0.01 * k, 0.25) for k in range(10)]
    big = _fake_run(1000, "info-prune", "method", 5.0, 0.25)
    big["supervised_tokens"] = 1900  # one long last record: 1.9x the budget
    rows = experiment.analyse(runs + [big], cfg)["1000"]["measures"]["heldout-sharegpt"]["rows"]
    assert rows["info-prune"]["answer"] == "not comparable (1.90x the budget)"


def test_analysis_waits_for_three_draws(experiment):
    cfg = experiment.SmolConfig(budgets=(1000,), draws=10)
    runs = [_fake_run(1000, "random-0", "random", 6.0, 0.25), _fake_run(1000, "zip-paper", "method", 5.0, 0.25)]
    assert experiment.analyse(runs, cfg) == {}


# ---------------------------------------------------------------- the page and its JSON

PAGE_SCRIPT = SCRIPT.with_name("results_page.py")


@pytest.fixture(scope="module")
def page():
    spec = importlib.util.spec_from_file_location("results_page", PAGE_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_results_md_matches_its_json(page):
    """docs/RESULTS.md's generated section is what benchmarks/results_page.py makes of the JSON."""
    result, speed = page.load()
    text = page.PAGE.read_text()
    assert page.section_of(text) == page.render(result, speed)
    assert "quick smoke setting" in text  # the 0.9M-parameter sections say what they are


def test_page_says_when_the_grid_is_incomplete(experiment, page):
    cfg = experiment.SmolConfig(budgets=(1000,), draws=4)
    runs = [_fake_run(1000, f"random-{k}", "random", 6.0 + 0.01 * k, 0.25) for k in range(4)]
    runs.append(_fake_run(1000, "zip-paper", "method", 6.5, 0.25))
    runs.append(_fake_run(1000, "lm-zip-paper", "length-matched", 6.0, 0.25))
    result = {"config": {**experiment.asdict(cfg), "budgets": [1000]}, "runs": runs,
              "analysis": experiment.analyse(runs, cfg), "complete": False,
              "grid": [{}] * 9, "model": "m", "pool_records": 100, "pool_supervised_tokens": 10000,
              "evals": {"heldout-sharegpt": 40, "chitchat": 40, "mmlu": 20},
              "base": {"heldout-sharegpt": {"loss": 7.0}, "chitchat": {"loss": 7.0}, "mmlu": {"acc": 0.25}}}
    text = page.render(result, None)
    assert "incomplete: 6 of the 9 planned runs finished" in text
    assert "| zip-paper | 6.5000 | +0.4850 |" in text
    assert "- **zip-paper**: held-out ShareGPT loss at 1,000: **worse**" in text
    # the method against its length-matched control: every example 0.5 worse, Chit-Chat the same
    assert "| zip-paper | 100, 100 | +0.5000 | [+0.5000, +0.5000] | +0.0000 | [+0.0000, +0.0000] |" in text


def test_merged_grids_take_each_budget_from_the_complete_or_fuller_grid(page):
    a = {"config": {"budgets": [4096, 2048, 8192]}, "seconds": 10.0, "complete": False,
         "runs": [{"budget": 4096, "stem": f"random-{k}"} for k in range(20)] + [{"budget": 2048, "stem": "a"}] * 3,
         "grid": [{"budget": b, "stem": "x"} for b in (4096,) * 20 + (2048,) * 6 + (8192,) * 5]}
    b = {"config": {"budgets": [4096, 2048]}, "seconds": 5.0, "complete": True,
         "runs": [{"budget": b, "stem": "y"} for b in (4096,) * 3 + (2048,) * 5],
         "grid": [{"budget": b, "stem": "y"} for b in (4096,) * 3 + (2048,) * 5]}
    merged = page.merge([a, b])
    assert merged["config"]["budgets"] == [4096, 2048]  # 8192: no run finished anywhere
    # 4096: both plans complete, the fuller wins; 2048: b's complete plan against a's unfinished one
    assert [r["stem"] for r in merged["runs"]] == [f"random-{k}" for k in range(20)] + ["y"] * 5
    assert len(merged["grid"]) == 25 and merged["complete"]
    assert merged["seconds"] == 15.0


# ---------------------------------------------------------------- a small grid end to end

def test_small_grid_end_to_end_and_resumed(experiment, tmp_path, real_exchanges):
    """Every step of the SmolLM2 setting on a tiny GPT-2 and 600 real exchanges: data, every
    method's order, random draws and length-matched controls cut at the supervised budget, one
    run each with per-example measures, the statistics; a rerun reuses every run."""
    from tests.lm_fixtures import tiny_lm

    model = tiny_lm(tmp_path / "lm")
    exchanges = _jsonl(tmp_path / "exchanges.jsonl", real_exchanges)
    cfg = experiment.replace(experiment.SMOL_QUICK, model=str(model), pool=100, budgets=(300,), draws=3,
                             precision="float32", threads=1)
    lines = []
    result = experiment.smol_run(cfg, tmp_path / "out", lines.append, tmp_path / "copy.json", exchanges)
    assert result["complete"]
    planned = [(g["budget"], g["stem"]) for g in result["grid"]]
    assert [(r["budget"], r["stem"]) for r in result["runs"]] == planned
    assert len(planned) == 3 + len(experiment.METHODS) + len(experiment.MATCHED)
    for r in result["runs"]:
        assert r["supervised_tokens"] > 0
        assert r["supervised_tokens"] <= r["trained_tokens"]
        assert len(r["detail"]["heldout-sharegpt"]["per_record"]["nll"]) == cfg.heldout
        assert len(r["detail"]["mmlu"]["correct"]) == cfg.mmlu
    assert set(result["analysis"]) == {"300"}
    assert set(result["analysis"]["300"]["measures"]["heldout-sharegpt"]["rows"]) == (
        set(experiment.METHODS) | {f"lm-{s}" for s in experiment.MATCHED})
    assert json.loads((tmp_path / "copy.json").read_text())["runs"] == json.loads(json.dumps(result["runs"]))
    # resumed: nothing trains again, the same numbers come out
    first = len(lines)
    again = experiment.smol_run(cfg, tmp_path / "out", lines.append, None, exchanges)
    assert [r["loss"] for r in again["runs"]] == [r["loss"] for r in result["runs"]]
    assert sum("(reused)" in line for line in lines[first:]) == len(planned)
