"""A nested, typed view of an expression tree, shared by the parser, printer, JSON form and
simplifier, and the conversions to and from DEAP's flat prefix `PrimitiveTree`.

DEAP stores a tree as a prefix list, which is what its operators need and what evaluation walks;
rewriting and printing are much simpler on nested nodes, so those go through `Node`. Both
directions check what untrusted input could get wrong: unknown names, types, and absurd sizes.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from deap import gp

from gm_lab.expressions.errors import ExpressionError
from gm_lab.expressions.primitives import (
    OPS_BY_NAME,
    PSET,
    VARIANTS,
    Op,
    Variant,
    find_op,
    make_constant,
    node_kind,
    proxy_names,
    stat_names,
    type_code,
    variant_name,
)

# Limits on untrusted input: far above anything hand-written or evolved with usual bloat control
# (DEAP's customary height limit is 17), far below what could exhaust memory or the stack.
MAX_TEXT_LENGTH = 20_000  # characters of expression text (or JSON)
MAX_NODES = 1_000  # nodes in a tree
MAX_DEPTH = 50  # edges from the root to the deepest leaf (DEAP's height)

Kind = Literal["op", "stat", "proxy", "const"]
_FUNCTIONS = OPS_BY_NAME


@dataclass(frozen=True)
class Node:
    """One node of an expression: an operator with arguments, a statistic, a proxy or a constant.

    `name` is the user-facing operator name (``add``, ``log``, ``max``), the statistic or proxy
    name, or ``const``; `type` is "L" or "S". Equality is structural; `size` and `depth` are
    derived.
    """

    kind: Kind
    name: str
    type: str
    args: tuple[Node, ...] = ()
    value: float | None = None
    size: int = field(init=False, compare=False, repr=False)
    depth: int = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", 1 + sum(a.size for a in self.args))
        object.__setattr__(self, "depth", 1 + max((a.depth for a in self.args), default=-1))

    @property
    def is_const(self) -> bool:
        return self.kind == "const"

    @property
    def op(self) -> Op:
        """The operator of an op node (max/min told apart by arity)."""
        found = find_op(self.name, len(self.args))
        if found is None:  # pragma: no cover - op nodes are only built through make_op
            raise ExpressionError(f"no operator {self.name!r} with {len(self.args)} argument(s)")
        return found

    @property
    def variant(self) -> Variant:
        return VARIANTS[variant_name(self.name, tuple(a.type for a in self.args))]


def const(value: float) -> Node:
    return Node("const", "const", "S", value=float(value) + 0.0)


def terminal(name: str) -> Node:
    """The statistic or proxy `name`; TypingProblem (with suggestions) if there is none."""
    if name in stat_names():
        return Node("stat", name, "L")
    if name in proxy_names():
        return Node("proxy", name, "S")
    raise TypingProblem(unknown_name_reason(name))


class TypingProblem(Exception):
    """Internal: why an operator cannot take these arguments, and which argument is at fault
    (None: the call as a whole). Callers add the position (text) or path (JSON)."""

    def __init__(self, reason: str, argument: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.argument = argument


def make_op(name: str, args: tuple[Node, ...]) -> Node:
    """The node `name(args)`, its variant chosen by the argument types; TypingProblem if `name`
    is not an operator, takes another number of arguments, or not these types."""
    if name not in _FUNCTIONS:
        raise TypingProblem(unknown_function_reason(name))
    op = find_op(name, len(args))
    if op is None:
        counts = " or ".join(sorted(str(o.arity) for o in _FUNCTIONS[name]))
        plural = "" if counts == "1" else "s"
        raise TypingProblem(f"{name} takes {counts} argument{plural}, got {len(args)}")
    given = tuple(a.type for a in args)
    if given not in op.signatures():
        bad = next(i for i, t in enumerate(given) if t == "S")
        raise TypingProblem(_layer_only_reason(op, args[bad]), argument=bad)
    return Node("op", name, op.result_type(given), args)


def _layer_only_reason(op: Op, arg: Node) -> str:
    if arg.kind == "proxy":
        what = f"{arg.name} is one value per network"
    elif arg.kind == "op":
        what = f"{arg.name}(...) already gives one value per network"
    else:
        what = "a constant is one value"
    if op.kind == "reduce":
        hint = (
            f"; for the larger/smaller of two values write {op.name}(a, b)"
            if op.name in ("max", "min")
            else ""
        )
        return (
            f"{op.name} reduces across layers and needs a per-layer (L) argument, "
            f"got a scalar (S): {what}{hint}"
        )
    return f"{op.name} works across layers and needs a per-layer (L) argument, got a scalar (S)"


def suggest(name: str, candidates: Iterable[str]) -> str:
    """'; did you mean a, b?' for the closest candidates, or '' (none for absurdly long names:
    matching costs grow with the length)."""
    if len(name) > 64:
        return ""
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    if name + "_l" in stat_names() and name + "_l" not in close:
        close.insert(0, name + "_l")
    return f"; did you mean {', '.join(close)}?" if close else ""


def unknown_name_reason(name: str) -> str:
    if name in _FUNCTIONS:
        return f"{name} is a function: call it as {name}(...)"
    shown = name if len(name) <= 40 else name[:40] + "..."
    return (
        f"unknown name {shown!r}: not a per-layer statistic or a proxy"
        f"{suggest(name, stat_names() + proxy_names())}"
    )


def unknown_function_reason(name: str) -> str:
    if name in stat_names():
        return f"{name} is a per-layer statistic, not a function"
    if name in proxy_names():
        return f"{name} is a proxy (one value per network), not a function"
    shown = name if len(name) <= 40 else name[:40] + "..."
    return f"unknown function {shown!r}{suggest(name, _FUNCTIONS)}"


def scalar_root_reason(root: Node) -> str | None:
    """Why a tree with this root cannot be a proxy (it is per-layer), or None."""
    if root.type == "S":
        return None
    return (
        "the expression is per-layer (L) but a proxy must be one scalar (S) per network: "
        "reduce it across layers, e.g. sum(...) or mean(...)"
    )


def limit_reason(size: int, depth: int) -> str | None:
    if size > MAX_NODES:
        return f"expression too large: more than {MAX_NODES} nodes"
    if depth > MAX_DEPTH:
        return f"expression too deep: nested more than {MAX_DEPTH} levels"
    return None


# ---- DEAP tree <-> Node -----------------------------------------------------------------------
def from_tree(tree: gp.PrimitiveTree) -> Node:
    """The nested view of a DEAP tree over PSET, checked: size and depth limits, known nodes,
    argument types, complete prefix order, and a scalar root."""
    if len(tree) == 0:
        raise ExpressionError("empty expression tree")
    if len(tree) > MAX_NODES:
        raise ExpressionError(limit_reason(len(tree), 0) or "")
    stack: list[Node] = []
    for node in reversed(tree):
        arity = node.arity
        if len(stack) < arity:
            raise ExpressionError("malformed tree: an operator is missing arguments")
        args = tuple(stack.pop() for _ in range(arity))
        stack.append(_node_from_deap(node, args))
        if stack[-1].depth > MAX_DEPTH:
            raise ExpressionError(limit_reason(0, stack[-1].depth) or "")
    if len(stack) != 1:
        raise ExpressionError(f"malformed tree: {len(stack)} separate expressions, not one")
    root = stack[0]
    reason = scalar_root_reason(root)
    if reason:
        raise ExpressionError(reason)
    return root


def _node_from_deap(node: gp.Primitive | gp.Terminal, args: tuple[Node, ...]) -> Node:
    kind = node_kind(node)
    if kind == "op":
        variant = VARIANTS.get(node.name)
        if variant is None:
            raise ExpressionError(f"unknown primitive {node.name!r} (not from this language)")
        if tuple(a.type for a in args) != variant.args:
            raise ExpressionError(f"wrongly typed tree: {node.name} got {[a.type for a in args]}")
        return Node("op", variant.op.name, variant.ret, args)
    if kind == "const":
        return const(_finite_constant(node.value))
    try:
        found = terminal(node.name)
    except TypingProblem as exc:
        raise ExpressionError(exc.reason) from None
    if found.type != type_code(node.ret):
        raise ExpressionError(f"wrongly typed terminal {node.name!r}")
    return found


def _finite_constant(value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if not math.isfinite(number):
        raise ExpressionError(f"constant {value!r:.40} is not a finite number")
    return number


def to_tree(root: Node) -> gp.PrimitiveTree:
    """The DEAP prefix tree of `root` (primitives and terminals taken from PSET)."""
    out: list[gp.Primitive | gp.Terminal] = []
    todo = [root]
    while todo:
        node = todo.pop()
        if node.kind == "op":
            out.append(PSET.mapping[node.variant.name])
            todo.extend(reversed(node.args))
        elif node.kind == "const":
            out.append(make_constant(node.value))  # type: ignore[arg-type]
        else:
            out.append(PSET.mapping[node.name])
    return gp.PrimitiveTree(out)


def check_tree(tree: gp.PrimitiveTree) -> None:
    """Raise ExpressionError unless `tree` is a well-formed, typed, scalar expression over PSET
    within the size limits (trees from DEAP's operators are; hand-assembled ones may not be)."""
    from_tree(tree)
