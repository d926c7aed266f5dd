"""What ``evaluate`` reads: training subsets and held-out sets, checked before any work.

A subset is any record set entrosel renders (ShareGPT, messages, Alpaca, text). A held-out
set is one of two kinds, told by its first record:

- ``text``: rendered records, measured by loss; the records that end in an assistant turn
  also give response ranking (their true response against other records' responses).
- ``choice``: multiple-choice questions, ``{"question", "choices": [...], "answer": i}``
  (``answer`` an index or a letter), or MMLU's layout ``answer_a``..``answer_d`` with
  ``correct_answer`` a letter.
"""
from __future__ import annotations

import hashlib
import json
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from entrosel.errors import InputError
from entrosel.formats.render import Turn, turns_text
from entrosel.io.readers import read_records
from entrosel.io.records import Record, Rejects
from entrosel.pool import InputOptions, rendered_records

KINDS = ("text", "choice")
_LETTERS = string.ascii_uppercase


@dataclass(frozen=True)
class TextSet:
    """Rendered records of one file: a training subset or a ``text`` held-out set."""

    name: str
    path: str
    samples: list[list[Turn]]
    sha256: str

    @property
    def texts(self) -> list[str]:
        return [turns_text(t) for t in self.samples]

    def __len__(self) -> int:
        return len(self.samples)


@dataclass(frozen=True)
class Choice:
    """One multiple-choice question: the context, the choices and the right one's index."""

    context: str
    choices: tuple[str, ...]
    answer: int


@dataclass(frozen=True)
class ChoiceSet:
    name: str
    path: str
    items: list[Choice]
    sha256: str

    def __len__(self) -> int:
        return len(self.items)


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode()).hexdigest()


def _name(path: str | Path, taken: set[str]) -> str:
    """The file's stem, made unique among the names already given."""
    stem = Path(path).name.split(".")[0] or str(path)
    name, k = stem, 2
    while name in taken:
        name, k = f"{stem}-{k}", k + 1
    taken.add(name)
    return name


def read_text_set(path: str | Path, options: InputOptions = InputOptions(), name: str | None = None) -> TextSet:
    """The rendered records of ``path``; a missing file, an empty one or a record without
    text is an :class:`InputError` naming the file (and line)."""
    samples = [turns for _, turns in rendered_records(path, options, Rejects("raise"))]
    if not samples:
        raise InputError("holds no records", path)
    # roles are part of the content: they decide which tokens --target response trains on
    digest = _digest([[(t.role, t.text) for t in s] for s in samples])
    return TextSet(name or Path(path).name, str(path), samples, digest)


def _choice(record: Record) -> Choice:
    data = record.data
    question = data.get("question")
    if not isinstance(question, str):
        raise record.error("a multiple-choice record needs a 'question' string")
    if "choices" in data:
        choices, answer = data["choices"], data.get("answer")
    else:  # MMLU's layout: answer_a, answer_b, ... and correct_answer as a letter
        keys = [f"answer_{c}" for c in _LETTERS.lower() if f"answer_{c}" in data]
        choices, answer = [data[k] for k in keys], data.get("correct_answer")
    if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
        raise record.error("'choices' must be a list of at least two strings")
    if isinstance(answer, str) and len(answer.strip()) == 1 and answer.strip().upper() in _LETTERS:
        answer = _LETTERS.index(answer.strip().upper())
    if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(choices):
        raise record.error(f"'answer' must be the index (0..{len(choices) - 1}) or letter of the "
                           f"right choice, not {answer!r}")
    # lm-evaluation-harness's MMLU prompt; each choice is scored as the answer that follows it
    return Choice(f"Question: {question.strip()}\nAnswer:", tuple(c.strip() for c in choices), answer)


def is_choice_record(data: dict[str, Any]) -> bool:
    return "question" in data and ("choices" in data or "answer_a" in data)


def read_eval_set(path: str | Path, options: InputOptions = InputOptions()) -> TextSet | ChoiceSet:
    """A held-out set; its kind comes from its first record."""
    records = read_records(path, options.input_format, Rejects("raise"))
    first = next(records, None)
    if first is None:
        raise InputError("holds no records", path)
    if not is_choice_record(first.data):
        return read_text_set(path, options)
    items = [_choice(first)] + [_choice(r) for r in records]
    digest = _digest([(c.context, c.choices, c.answer) for c in items])
    return ChoiceSet(Path(path).name, str(path), items, digest)


def name_sets(sets: list[TextSet | ChoiceSet]) -> list[str]:
    """Short unique names (file stems) for the tables and plots."""
    taken: set[str] = {"mean"}  # the mean over sets is reported under "mean"
    return [_name(s.path, taken) for s in sets]


def check_overlap(subsets: list[TextSet], evals: list[TextSet | ChoiceSet], what: str = "the subset") -> None:
    """Refuse a held-out set that shares records (same rendered text) with a subset (or
    with ``what`` else is trained on): its loss would reward memorising them."""
    for ev in evals:
        if not isinstance(ev, TextSet):
            continue
        held = set(ev.texts)
        for sub in subsets:
            shared = held.intersection(sub.texts)
            if shared:
                raise InputError(f"{len(shared):,} of its {len(held):,} distinct records are also in "
                                 f"{what} {sub.path}; held-out records must not be trained on", ev.path)
