"""The expression editor widget's model: proposals from the browser are validated in Python.

The front end is simulated at the comm level (see notes/jupyter.md): browser -> Python by feeding
the widget's comm an "update" message, Python -> browser by reading what a mock comm was sent.
"""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from deap import gp

from gm_lab.expressions import (
    ExpressionError,
    parse,
    proxy_names,
    stat_names,
    to_json,
    to_text,
)
from gm_lab.widgets.tree_editor import ExpressionEditor, build_palette

START = "mean(snip_l) + 0.5 * naswot"


def stat(name: str) -> dict[str, Any]:
    return {"kind": "stat", "name": name, "type": "L"}


def from_browser(widget: ExpressionEditor, state: dict[str, Any]) -> None:
    """What ipywidgets does when the browser calls model.save_changes()."""
    msg = {"content": {"data": {"method": "update", "state": state, "buffer_paths": []}}}
    widget.comm.handle_msg({**msg, "buffers": []})


@pytest.fixture
def editor() -> ExpressionEditor:
    return ExpressionEditor(START)


@pytest.fixture
def calls(editor: ExpressionEditor) -> list[gp.PrimitiveTree]:
    seen: list[gp.PrimitiveTree] = []
    editor.on_change(seen.append)
    return seen


def test_initial_state_is_canonical(editor: ExpressionEditor) -> None:
    assert editor.text == to_text(parse(START))
    assert editor.tree == to_json(parse(START))
    assert editor.error == ""
    assert editor.expression == parse(START)
    assert ExpressionEditor().text == "mean(snip_l)"
    assert ExpressionEditor(parse("log(naswot)")).text == "log(naswot)"


def test_valid_tree_proposal_through_the_comm(
    editor: ExpressionEditor, calls: list[gp.PrimitiveTree]
) -> None:
    tree = to_json(parse(START))
    tree["args"][0]["args"][0] = stat("grad_norm_l")
    from_browser(editor, {"proposal": {"tree": tree, "seq": 1}})
    assert editor.text == "mean(grad_norm_l) + 0.5 * naswot"
    assert editor.tree == tree
    assert editor.error == ""
    assert editor.seq == 1
    assert calls == [parse("mean(grad_norm_l) + 0.5 * naswot")]
    assert editor.expression == calls[0]


def test_answers_reach_the_browser_in_one_update_each(editor: ExpressionEditor) -> None:
    comm = mock.MagicMock(comm_id="fake")
    editor.comm = comm
    handler = comm.on_msg.call_args.args[0]  # what ipywidgets registered for browser messages

    def send(proposal: dict[str, Any]) -> dict[str, Any]:
        comm.send.reset_mock()
        msg = {"method": "update", "state": {"proposal": proposal}, "buffer_paths": []}
        handler({"content": {"data": msg}, "buffers": []})
        updates = [c.kwargs["data"] for c in comm.send.call_args_list]
        updates = [u for u in updates if u["method"] == "update"]
        assert len(updates) == 1, updates
        return updates[0]["state"]

    refused = send({"text": "log(", "seq": 2})
    assert refused["seq"] == 2 and "column" in refused["error"]
    assert "tree" not in refused and "text" not in refused
    state = send({"text": "log(naswot)", "seq": 3})
    assert state["text"] == "log(naswot)"
    assert state["tree"] == to_json(parse("log(naswot)"))
    assert state["error"] == ""
    assert state["seq"] == 3


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"name": "naswot", "kind": "proxy", "type": "S"}, ["args[0]"]),  # S where mean needs L
        ({"kind": "stat", "name": "snp_l", "type": "L"}, ["snp_l", "snip_l", "args[0]"]),
        ({"kind": "stat", "name": "snip_l", "type": "S"}, ["declared", "args[0]"]),
        ({"kind": "const", "value": "x"}, ["'value' must be a number"]),
        ({"kind": "stat", "name": "snip_l", "colour": "red"}, ["colour"]),
    ],
)
def test_invalid_tree_is_refused_and_changes_nothing(
    editor: ExpressionEditor, calls: list[gp.PrimitiveTree], change: dict, words: list[str]
) -> None:
    before = (editor.tree, editor.text, editor.expression)
    tree = to_json(parse(START))
    tree["args"][0]["args"][0] = change
    from_browser(editor, {"proposal": {"tree": tree, "seq": 7}})
    assert all(word in editor.error for word in words), editor.error
    assert "$.args[0]" in editor.error
    assert (editor.tree, editor.text, editor.expression) == before
    assert editor.seq == 7
    assert calls == []


def test_per_layer_root_is_refused(editor: ExpressionEditor) -> None:
    editor.proposal = {"tree": stat("snip_l"), "seq": 1}
    assert "per-layer" in editor.error
    assert editor.text == to_text(parse(START))


def test_invalid_text_is_refused_with_its_position(
    editor: ExpressionEditor, calls: list[gp.PrimitiveTree]
) -> None:
    from_browser(editor, {"proposal": {"text": "mean(snip_l", "seq": 1}})
    assert "column 12" in editor.error
    assert "^" in editor.error.splitlines()[-1]
    assert editor.text == to_text(parse(START))
    assert calls == []
    editor.proposal = {"text": "mean(snip_l) * 2", "seq": 2}
    assert editor.error == ""
    assert editor.text == "mean(snip_l) * 2"
    assert len(calls) == 1


def test_malformed_proposals_are_refused(editor: ExpressionEditor) -> None:
    editor.proposal = {"seq": 1}
    assert "'tree' or a 'text'" in editor.error
    editor.proposal = {"text": 5, "seq": 2}
    assert "string" in editor.error
    editor.proposal = {}  # the empty default: nothing to do
    assert editor.seq == 2


def test_palette_lists_what_the_language_accepts() -> None:
    palette = build_palette()
    ops = {t: {(o["name"], o["arity"]): o for o in palette[t]["ops"]} for t in "LS"}
    assert ops["L"][("log", 1)]["args"] == ["L"]
    assert ops["S"][("log", 1)]["args"] == ["S"]
    assert ops["S"][("mean", 1)] == {
        **ops["S"][("mean", 1)],
        "args": ["L"],
        "returns": "S",
        "signatures": [["L"]],
    }
    assert ("mean", 1) not in ops["L"]
    assert ("standardise", 1) in ops["L"] and ("standardise", 1) not in ops["S"]
    assert ops["L"][("add", 2)]["signatures"] == [["L", "L"], ["L", "S"], ["S", "L"]]
    assert ops["S"][("add", 2)]["signatures"] == [["S", "S"]]
    assert ops["S"][("add", 2)]["symbol"] == "+"
    assert {("max", 1), ("max", 2)} <= set(ops["S"])
    assert all(o["returns"] == t for t in "LS" for o in palette[t]["ops"])
    assert [x["name"] for x in palette["L"]["terminals"]] == list(stat_names())
    assert [x["name"] for x in palette["S"]["terminals"]] == list(proxy_names())
    assert {x["kind"] for x in palette["S"]["terminals"]} == {"proxy"}
    assert (palette["L"]["constant"], palette["S"]["constant"]) == (False, True)
    assert ExpressionEditor().palette == palette


def test_readonly_refuses_browser_edits_but_not_python(
    calls: list[gp.PrimitiveTree], editor: ExpressionEditor
) -> None:
    editor.readonly = True
    from_browser(editor, {"proposal": {"text": "naswot", "seq": 1}})
    assert "read-only" in editor.error
    assert editor.text == to_text(parse(START))
    editor.set_expression("naswot")
    assert editor.text == "naswot"
    assert editor.error == ""
    assert ExpressionEditor("naswot", readonly=True).readonly


def test_set_expression_from_python(
    editor: ExpressionEditor, calls: list[gp.PrimitiveTree]
) -> None:
    editor.set_expression("log(naswot)")
    editor.set_expression(parse("sum(snip_l)"))
    editor.set_expression(to_json(parse("max(snip_l)")))
    assert [to_text(t) for t in calls] == ["log(naswot)", "sum(snip_l)", "max(snip_l)"]
    editor.set_expression("max(snip_l)")  # no change, no callback
    assert len(calls) == 3
    with pytest.raises(ExpressionError, match="column"):
        editor.set_expression("max(snip_l")
    with pytest.raises(TypeError):
        editor.set_expression(42)  # type: ignore[arg-type]
    with pytest.raises(ExpressionError):
        ExpressionEditor("mean(naswot)")
    assert editor.text == "max(snip_l)"


def test_unsubscribe_and_expression_is_a_copy(
    editor: ExpressionEditor, calls: list[gp.PrimitiveTree]
) -> None:
    other: list[gp.PrimitiveTree] = []
    unsubscribe = editor.on_change(other.append)
    editor.set_expression("naswot")
    unsubscribe()
    unsubscribe()  # twice is harmless
    editor.set_expression("snip")
    assert len(calls) == 2 and len(other) == 1
    editor.expression.clear()
    assert editor.text == "snip" and len(editor.expression) == 1


@pytest.mark.parametrize(
    "text",
    ["mean(snip_l)", "mean(log(snip_l) / l2(grad_norm_l)) + 0.5 * log(naswot)", "-max(a_std_l)"],
)
def test_round_trip_text_tree_text(text: str) -> None:
    editor = ExpressionEditor(text)
    canonical = editor.text
    echo = ExpressionEditor("naswot")
    echo.proposal = {"tree": editor.tree, "seq": 1}
    assert echo.text == canonical
    echo.proposal = {"text": canonical, "seq": 2}
    assert echo.tree == editor.tree
    assert echo.expression == editor.expression == parse(text)


def test_an_over_deep_proposal_is_refused_in_the_widget_not_raised(editor, calls) -> None:
    """ipywidgets walks browser state recursively: 700 nested nodes would raise RecursionError
    inside the comm handler, unseen, and leave the browser waiting for an answer."""
    node: dict[str, Any] = {"kind": "proxy", "name": "naswot", "type": "S"}
    for _ in range(700):
        node = {"kind": "op", "name": "neg", "type": "S", "args": [node]}
    from_browser(editor, {"proposal": {"tree": node, "seq": 7}})
    assert editor.seq == 7  # answered
    assert "nested more than 200 levels deep" in editor.error
    assert editor.text == to_text(parse(START)) and calls == []  # the last good expression kept
    from_browser(editor, {"proposal": {"text": "naswot + zen", "seq": 8}})
    assert editor.error == "" and editor.text == "naswot + zen"
