"""Tree -> text: the one canonical way to write an expression.

Infix + - * / with the usual precedence, left-associative, and only the parentheses that the
structure needs (``a - (b - c)`` keeps its grouping, ``(a - b) - c`` prints as ``a - b - c``);
``neg(x)`` prints as ``-x``; every other operator is a call ``name(arg, ...)``. Constants print
as the shortest text that reads back to the same float. The parser reads every printed text
back to the same tree, and printing a parsed text gives this canonical form, so the printed text
can be stored, diffed and used as a cache key.
"""

from __future__ import annotations

import math

from deap import gp

from gm_lab.expressions.nodes import Node, from_tree

# Binding strength: additive < multiplicative < unary minus < call / name / number.
_ADDITIVE, _MULTIPLICATIVE, _UNARY, _ATOM = 1, 2, 3, 4
_INFIX = {"add": ("+", _ADDITIVE), "sub": ("-", _ADDITIVE), "mul": ("*", _MULTIPLICATIVE)}
_INFIX["div"] = ("/", _MULTIPLICATIVE)


def to_text(tree: gp.PrimitiveTree | Node) -> str:
    """The canonical text of a DEAP tree over PSET (checked first) or of a Node."""
    node = tree if isinstance(tree, Node) else from_tree(tree)
    return _text(node)[0]


def format_number(value: float) -> str:
    """Shortest text that reads back to exactly `value`; integral values without '.0'."""
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def _text(node: Node) -> tuple[str, int]:
    """(text, binding strength) of `node`."""
    if node.kind == "const":
        value = node.value if node.value is not None else math.nan
        return format_number(value), (_UNARY if value < 0 else _ATOM)
    if node.kind != "op":
        return node.name, _ATOM
    if node.name in _INFIX and len(node.args) == 2:
        symbol, strength = _INFIX[node.name]
        left, right = node.args
        return (
            f"{_operand(left, strength)} {symbol} {_operand(right, strength + 1, True)}",
            strength,
        )
    if node.name == "neg":
        (arg,) = node.args
        text, arg_strength = _text(arg)
        bare = arg_strength == _ATOM and arg.kind != "const"
        return ("-" + text if bare else f"-({text})"), _UNARY
    return f"{node.name}({', '.join(_text(a)[0] for a in node.args)})", _ATOM


def _operand(node: Node, needed: int, right: bool = False) -> str:
    """Text of an infix operand, in parentheses if it binds less tightly than `needed`.

    Right operands need one level more (left associativity). A negative operand on the right
    is parenthesised too: ``a - (-b)`` reads better than ``a - -b``.
    """
    text, strength = _text(node)
    if strength < needed or (right and strength == _UNARY):
        return f"({text})"
    return text
