"""A canonical form, so that one proxy written or evolved in different ways is scored once.

Rewrites, applied bottom-up until none applies:
- constant folding: an operator whose arguments are all constants becomes a constant, computed
  by the very numpy function evaluation uses (same value, bit for bit);
- double negation ``-(-x) -> x``; ``abs`` of a non-negative operator (abs, sqrt, square, exp,
  sigmoid, relu) is dropped; ``log sqrt square abs`` ignore a ``neg`` or ``abs`` argument
  (``log(-x) -> log(x)``: log is log|x|); ``relu(relu(x)) -> relu(x)``;
- neutral and absorbing constants: ``x + 0, x - 0, x * 1, x / 1 -> x``;
  ``x * -1, x / -1, 0 - x -> -x``;
- ``a - (-b) -> a + b``, ``a + (-b) -> a - b``, ``(-a) + b -> b - a``,
  ``(-a) * (-b) -> a * b``, ``(-a) / (-b) -> a / b``, where -b is a negation or a negative
  constant;
- ``x + x -> 2 * x``, ``x * x -> square(x)``, ``max(x, x), min(x, x) -> x``; ``x - x -> 0`` for a
  scalar x, and any reduction of a per-layer ``x - x`` is 0;
- the two arguments of add, mul, max and min are ordered by their printed text.

Every rewrite is exact in IEEE arithmetic under the protected semantics (only the sign of a
zero can change, which no operator distinguishes), so a simplified tree scores every
architecture exactly as the original, with one exception: ``x - x -> 0`` where x is NaN (a
missing statistic) turns that architecture's NaN into a number. Operands are not reassociated
(``(a + b) + c`` stays), since that changes rounding.
"""

from __future__ import annotations

import math

import numpy as np
from deap import gp

from gm_lab.expressions.nodes import Node, const, from_tree, make_op, to_tree
from gm_lab.expressions.printer import to_text

_NONNEGATIVE = frozenset({"abs", "sqrt", "square", "exp", "sigmoid", "relu"})
_EVEN = frozenset({"log", "sqrt", "square", "abs"})  # f(-x) = f(|x|) = f(x)
_COMMUTATIVE = frozenset({"add", "mul", "max", "min"})
_MAX_PASSES = 1000  # rewrites per node; each shrinks or reorders, so a handful in practice


def simplify(tree: gp.PrimitiveTree) -> gp.PrimitiveTree:
    """The canonical form of `tree` (a new tree; `tree` is unchanged)."""
    return to_tree(simplify_node(from_tree(tree)))


def canonical_key(tree: gp.PrimitiveTree) -> str:
    """The text of the canonical form: equal for trees that simplify to the same expression,
    so it can key a fitness cache."""
    return to_text(simplify_node(from_tree(tree)))


def simplify_node(node: Node) -> Node:
    """The canonical form of a Node."""
    if node.kind != "op":
        return node
    node = Node("op", node.name, node.type, tuple(simplify_node(a) for a in node.args))
    for _ in range(_MAX_PASSES):
        rewritten = _rewrite(node)
        if rewritten is None:
            return node
        node = rewritten
        if node.kind != "op":
            return node
    return node


def _rewrite(node: Node) -> Node | None:
    """One rewrite of `node` (whose arguments are already canonical), or None if none applies.

    A result that introduces a new operator node goes through simplify_node again so its own
    arguments stay canonical.
    """
    args = node.args
    if all(a.is_const for a in args):
        return _fold(node)
    kind = node.op.kind
    if kind == "reduce":
        x = args[0]  # every reduction of an all-zero vector is 0
        return const(0.0) if _is_op(x, "sub") and x.args[0] == x.args[1] else None
    if kind == "unary":
        return _rewrite_unary(node.name, args[0])
    return _rewrite_binary(node.name, args[0], args[1])


def _fold(node: Node) -> Node | None:
    op = node.op
    values = [np.full((1, 1), a.value) for a in node.args]
    with np.errstate(all="ignore"):
        result = float(op.fn(*values)[0, 0])
    return const(result) if math.isfinite(result) else None


def _is_op(node: Node, name: str) -> bool:
    return node.kind == "op" and node.name == name


def _is_value(node: Node, value: float) -> bool:
    return node.is_const and node.value == value


def _rewrite_unary(name: str, x: Node) -> Node | None:
    if name == "neg" and _is_op(x, "neg"):
        return x.args[0]
    if name == "abs" and x.kind == "op" and x.name in _NONNEGATIVE and len(x.args) == 1:
        return x
    if name in _EVEN and (_is_op(x, "neg") or _is_op(x, "abs")):
        return make_op(name, x.args)
    if name == "relu" and _is_op(x, "relu"):
        return x
    return None


def _negated(x: Node) -> Node | None:
    """y when x is -y (a neg node, or a negative constant), else None."""
    if _is_op(x, "neg"):
        return x.args[0]
    if x.is_const and x.value is not None and x.value < 0:
        return const(-x.value)
    return None


def _neg(x: Node) -> Node:
    return simplify_node(make_op("neg", (x,)))


def _rewrite_binary(name: str, a: Node, b: Node) -> Node | None:
    rewritten = _identity(name, a, b)
    if rewritten is not None:
        return rewritten
    if name in _COMMUTATIVE and to_text(b) < to_text(a):
        return make_op(name, (b, a))
    return None


def _identity(name: str, a: Node, b: Node) -> Node | None:
    """Neutral elements, negations and repeated arguments (see the module doc)."""
    if name == "add":
        if _is_value(b, 0.0):
            return a
        if _is_value(a, 0.0):
            return b
        if _negated(b) is not None:
            return simplify_node(make_op("sub", (a, _negated(b))))
        if _negated(a) is not None:
            return simplify_node(make_op("sub", (b, _negated(a))))
        if a == b:
            return simplify_node(make_op("mul", (const(2.0), a)))
    elif name == "sub":
        if _is_value(b, 0.0):
            return a
        if _is_value(a, 0.0):
            return _neg(b)
        if _negated(b) is not None:
            return simplify_node(make_op("add", (a, _negated(b))))
        if a == b and a.type == "S":
            return const(0.0)
    elif name in ("mul", "div"):
        if _is_value(b, 1.0):
            return a
        if _is_value(b, -1.0):
            return _neg(a)
        if name == "mul" and _is_value(a, 1.0):
            return b
        if name == "mul" and _is_value(a, -1.0):
            return _neg(b)
        if _negated(a) is not None and _negated(b) is not None:
            return simplify_node(make_op(name, (_negated(a), _negated(b))))
        if name == "mul" and a == b:
            return simplify_node(make_op("square", (a,)))
    elif name in ("max", "min") and a == b:
        return a
    return None
