"""Tree <-> JSON, the form a JavaScript tree editor reads and writes.

Nodes (every node carries its type, "L" per-layer or "S" scalar):

    {"kind": "op", "name": "mean", "type": "S", "args": [<node>, ...]}
    {"kind": "stat", "name": "snip_l", "type": "L"}
    {"kind": "proxy", "name": "naswot", "type": "S"}
    {"kind": "const", "value": 0.5, "type": "S"}

Operator names are the text form's (``add sub mul div neg`` for ``+ - * /`` and unary minus;
``max``/``min`` with one argument reduce across layers, with two are element-wise). Reading
checks everything an editor could get wrong and reports where, as a path like ``$.args[1]``:
unknown keys or kinds, unknown names, arity, types (a "type" that is given must be the inferred
one; it may be left out), non-finite constants, and the same size limits as text.
`from_json(to_json(t)) == t` for every valid tree.
"""

from __future__ import annotations

import json
import math
from typing import Any

from deap import gp

from gm_lab.expressions.errors import ExpressionError
from gm_lab.expressions.nodes import (
    MAX_DEPTH,
    MAX_NODES,
    MAX_TEXT_LENGTH,
    Node,
    TypingProblem,
    const,
    from_tree,
    limit_reason,
    make_op,
    scalar_root_reason,
    terminal,
    to_tree,
)

_KEYS = {
    "op": {"kind", "name", "type", "args"},
    "stat": {"kind", "name", "type"},
    "proxy": {"kind", "name", "type"},
    "const": {"kind", "value", "type"},
}
_JSON_TEXT_LIMIT = 20 * MAX_TEXT_LENGTH  # JSON is wordier than text


def to_json(tree: gp.PrimitiveTree | Node) -> dict[str, Any]:
    """The JSON-ready dict of a DEAP tree over PSET (checked first) or of a Node."""
    return node_to_json(tree if isinstance(tree, Node) else from_tree(tree))


def node_to_json(node: Node) -> dict[str, Any]:
    if node.kind == "op":
        return {
            "kind": "op",
            "name": node.name,
            "type": node.type,
            "args": [node_to_json(a) for a in node.args],
        }
    if node.kind == "const":
        return {"kind": "const", "value": node.value, "type": "S"}
    return {"kind": node.kind, "name": node.name, "type": node.type}


def from_json(data: dict[str, Any] | str) -> gp.PrimitiveTree:
    """The DEAP tree of a JSON node (a dict, or JSON text); ExpressionError naming the path of
    the first problem."""
    return to_tree(json_to_node(data))


def json_to_node(data: dict[str, Any] | str) -> Node:
    """Like `from_json`, returning the nested `Node` view."""
    if isinstance(data, str):
        if len(data) > _JSON_TEXT_LIMIT:
            raise ExpressionError(f"JSON text too long: more than {_JSON_TEXT_LIMIT} characters")
        try:
            data = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise ExpressionError(f"not valid JSON: {exc}") from None
    counter = [0]
    root = _read(data, "$", 0, counter)
    reason = scalar_root_reason(root)
    if reason:
        raise ExpressionError(reason, path="$")
    return root


def _read(data: object, path: str, depth: int, counter: list[int]) -> Node:
    """One node, its arguments first; `counter` counts nodes so far across the whole tree."""
    counter[0] += 1
    if counter[0] > MAX_NODES or depth > MAX_DEPTH:
        raise ExpressionError(limit_reason(counter[0], depth) or "expression too large", path=path)
    if not isinstance(data, dict):
        raise ExpressionError(f"a node must be a JSON object, got {_json_type(data)}", path=path)
    kind = data.get("kind")
    if not isinstance(kind, str) or kind not in _KEYS:
        raise ExpressionError(
            f"'kind' must be one of {sorted(_KEYS)}, got {_short(kind)}", path=path
        )
    extra = set(data) - _KEYS[kind]
    if extra:
        raise ExpressionError(f"unexpected key(s) {sorted(extra)} in a {kind} node", path=path)
    if kind == "const":
        node = const(_constant_value(data, path))
    else:
        name = data.get("name")
        if not isinstance(name, str):
            raise ExpressionError(f"'name' must be a string, got {_short(name)}", path=path)
        node = (
            _read_op(data, name, path, depth, counter)
            if kind == "op"
            else _read_leaf(kind, name, path)
        )
    given = data.get("type")
    if given is not None and given != node.type:
        raise ExpressionError(
            f"node is declared {_short(given)} but is {node.type} "
            f"({'per-layer' if node.type == 'L' else 'scalar'})",
            path=path,
        )
    return node


def _read_op(data: dict[str, Any], name: str, path: str, depth: int, counter: list[int]) -> Node:
    args = data.get("args")
    if not isinstance(args, list):
        raise ExpressionError(f"'args' must be a list, got {_short(args)}", path=path)
    if len(args) > 2:
        reason = f"{name} given {len(args)} arguments; no operator takes more than 2"
        raise ExpressionError(reason, path=path)
    children = tuple(
        _read(arg, f"{path}.args[{i}]", depth + 1, counter) for i, arg in enumerate(args)
    )
    try:
        return make_op(name, children)
    except TypingProblem as exc:
        where = path if exc.argument is None else f"{path}.args[{exc.argument}]"
        raise ExpressionError(exc.reason, path=where) from None


def _read_leaf(kind: str, name: str, path: str) -> Node:
    try:
        node = terminal(name)
    except TypingProblem as exc:
        raise ExpressionError(exc.reason, path=path) from None
    if node.kind != kind:
        raise ExpressionError(f"{name} is a {node.kind}, not a {kind}", path=path)
    return node


def _constant_value(data: dict[str, Any], path: str) -> float:
    value = data.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ExpressionError(f"'value' must be a number, got {_short(value)}", path=path)
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        number = math.inf
    if not math.isfinite(number):
        raise ExpressionError(f"constant {_short(value)} is not a finite number", path=path)
    return number


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, int | float) else "a value")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."
