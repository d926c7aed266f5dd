"""Format detection and rendering."""
from __future__ import annotations

import pytest

from entrosel.formats import Renderer, RenderError, Serialization, detect_record_format, render_text, serialize


def test_detects_each_format():
    assert detect_record_format({"conversations": []}) == "sharegpt"
    assert detect_record_format({"messages": []}) == "messages"
    assert detect_record_format({"instruction": "a", "output": "b"}) == "alpaca"
    assert detect_record_format({"text": "a"}) == "text"
    assert detect_record_format({"body": "a"}) is None


def test_renders_each_format_without_ids_keys_or_roles():
    sharegpt = {"id": "x", "conversations": [{"from": "human", "value": "Q?"}, {"from": "gpt", "value": "A."}]}
    messages = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q?"},
                             {"role": "assistant", "content": "A."}]}
    assert render_text(sharegpt) == "Q?\n\nA."
    assert render_text(messages) == "Be brief.\n\nQ?\n\nA."
    assert render_text({"instruction": "Add", "input": "2 3", "output": "5"}) == "Add\n\n2 3\n\n5"
    assert render_text({"instruction": "Add", "input": "", "output": "5"}) == "Add\n\n5"
    assert render_text({"text": "doc", "id": 3}) == "doc"


def test_turn_roles_are_normalised():
    turns = Renderer().turns({"conversations": [{"from": "human", "value": "q"}, {"from": "chatgpt", "value": "a"}]})
    assert [t.role for t in turns] == ["user", "assistant"]
    turns = Renderer().turns({"instruction": "i", "output": "o"})
    assert [(t.role, t.text) for t in turns] == [("user", "i"), ("assistant", "o")]


def test_text_field_and_template_override_detection():
    rec = {"text": "ignored", "body": "the body", "title": "T"}
    assert render_text(rec, text_field="body") == "the body"
    assert render_text(rec, template="{title}\n{body}") == "T\nthe body"
    with pytest.raises(RenderError, match="no field 'nope'"):
        render_text(rec, text_field="nope")
    with pytest.raises(RenderError, match="template field 'missing'"):
        render_text(rec, template="{missing}")
    with pytest.raises(RenderError, match="bad template"):
        Renderer(template="{unclosed")


@pytest.mark.parametrize("record,reason", [
    ({"conversations": []}, "empty"),
    ({"conversations": "hi"}, "must be a list"),
    ({"conversations": [{"from": "human"}]}, "has no 'value'"),
    ({"messages": [{"role": "user", "content": None}]}, "must be a string"),
    ({"text": 5}, "must be a string"),
    ({"instruction": "a", "output": ["b"]}, "must be a string"),
    ({"body": "x"}, "--text-field"),
])
def test_records_without_text_are_explained(record, reason):
    with pytest.raises(RenderError, match=reason):
        render_text(record)


def test_serializations():
    recs = [{"id": 1, "text": "a"}, {"text": "b", "id": 2}]
    assert serialize(recs, "repr") == str(recs).encode()
    assert serialize(recs, "text") == b"a\n\nb"
    assert Serialization("repr").framing.join([b"x"]) == b"[x]"
    with pytest.raises(ValueError, match="serialize"):
        Serialization("pickle")
