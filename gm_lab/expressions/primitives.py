"""The typed primitive set: what an expression may be built from, as a DEAP PrimitiveSetTyped.

Two types: `Layer` (L, one value per conv/linear layer of a network) and `Scalar` (S, one value
per network). Terminals are the registered per-layer statistics (L), the registered proxies (S)
and ephemeral constants (S); they come from the plug-in registries' metadata (gm_lab.plugins),
so this module loads without torch, and a statistic or proxy registered later (a notebook, an
entry point) is added to `PSET` when it is registered. Operators are element-wise (L and S
alike, mixed L/S broadcasting to L) or reduce a per-layer vector to a scalar; `register_operator`
adds one (built-ins are the `OPS` below).

DEAP needs one primitive name per type signature, so every operator is registered once per
signature as ``<name>__<argument types>`` (``log__L``, ``add__LS``, ``max__L`` is the reduction,
``max__LL`` the element-wise maximum); the text and JSON forms only ever show the user-facing
name and pick the variant from the argument types. Trees are plain `gp.PrimitiveTree`s over
`PSET`, so DEAP's generators, crossover and mutation operators work on them unchanged.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

import numpy as np
from deap import gp

from gm_lab.expressions import ops
from gm_lab.plugins import PROXIES, STATISTICS, PluginError, ProxySpec, StatisticSpec

TypeCode = Literal["L", "S"]
OpKind = Literal["unary", "binary", "reduce"]


class Layer:
    """DEAP type of a per-layer vector (L): one value per layer, padded and masked."""

    code: TypeCode = "L"


class Scalar:
    """DEAP type of a scalar (S): one value per architecture."""

    code: TypeCode = "S"


TYPES: dict[str, type] = {"L": Layer, "S": Scalar}
TYPE_WORDS: dict[str, str] = {"L": "per-layer (L)", "S": "scalar (S)"}


def stat_names() -> tuple[str, ...]:
    """Names of the per-layer statistics (L terminals), in registration order."""
    return STATISTICS.names()


def proxy_names() -> tuple[str, ...]:
    """Names of the proxies (S terminals), in registration order."""
    return PROXIES.names()


# ---- operators --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Op:
    """A user-facing operator: its name in text and JSON, and what it accepts."""

    name: str
    kind: OpKind
    fn: Callable[..., np.ndarray]
    doc: str
    symbol: str | None = None  # infix symbol in text: + - * /
    layer_only: bool = False  # unary ops that only make sense across layers (standardise)
    commutative: bool = False

    @property
    def arity(self) -> int:
        return 2 if self.kind == "binary" else 1

    @property
    def masked(self) -> bool:
        """True when the implementation also takes the sample's LayerMask."""
        return self.kind == "reduce" or self.layer_only

    def signatures(self) -> list[tuple[TypeCode, ...]]:
        if self.kind == "binary":
            return [("L", "L"), ("L", "S"), ("S", "L"), ("S", "S")]
        if self.kind == "reduce" or self.layer_only:
            return [("L",)]
        return [("L",), ("S",)]

    def result_type(self, args: tuple[str, ...]) -> TypeCode:
        if self.kind == "reduce":
            return "S"
        return "L" if "L" in args else "S"


OPS: list[Op] = [
    Op("log", "unary", ops.log_abs, "log|x|; 0 at x = 0"),
    Op("abs", "unary", ops.absolute, "|x|"),
    Op("sqrt", "unary", ops.sqrt_abs, "sqrt|x|"),
    Op("square", "unary", ops.square, "x²"),
    Op("exp", "unary", ops.exp_clamped, f"exp(min(x, {ops.EXP_CLAMP:g}))"),
    Op("inv", "unary", ops.inv, "1/x; 0 at x = 0"),
    Op("neg", "unary", ops.neg, "-x"),
    Op("sigmoid", "unary", ops.sigmoid, "1 / (1 + exp(-x))"),
    Op("tanh", "unary", ops.tanh, "tanh x"),
    Op("relu", "unary", ops.relu, "max(x, 0)"),
    Op("logrank", "unary", ops.log_rank, "log(rank / n) among the architectures scored together"),
    Op("standardise", "unary", ops.standardise, "(x - mean) / std across layers", layer_only=True),
    Op("add", "binary", ops.add, "a + b", symbol="+", commutative=True),
    Op("sub", "binary", ops.sub, "a - b", symbol="-"),
    Op("mul", "binary", ops.mul, "a × b", symbol="*", commutative=True),
    Op("div", "binary", ops.div, "a / b; 0 where b = 0", symbol="/"),
    Op("max", "binary", ops.maximum, "element-wise larger of a and b", commutative=True),
    Op("min", "binary", ops.minimum, "element-wise smaller of a and b", commutative=True),
    Op("sum", "reduce", ops.reduce_sum, "sum over the layers"),
    Op("mean", "reduce", ops.reduce_mean, "mean over the layers"),
    Op("max", "reduce", ops.reduce_max, "largest layer value"),
    Op("min", "reduce", ops.reduce_min, "smallest layer value"),
    Op("std", "reduce", ops.reduce_std, "population standard deviation over the layers"),
    Op("l2", "reduce", ops.reduce_l2, "sqrt of the sum of squares over the layers"),
    Op("median", "reduce", ops.reduce_median, "median over the layers"),
]
OPS_BY_NAME: dict[str, list[Op]] = {}
for _op in OPS:
    OPS_BY_NAME.setdefault(_op.name, []).append(_op)
SYMBOLS: dict[str, Op] = {op.symbol: op for op in OPS if op.symbol}


def find_op(name: str, arity: int) -> Op | None:
    """The operator `name` taking `arity` arguments (max/min: 1 = reduction, 2 = element-wise)."""
    for op in OPS_BY_NAME.get(name, ()):
        if op.arity == arity:
            return op
    return None


@dataclass(frozen=True)
class Variant:
    """One typed registration of an operator in the DEAP set."""

    op: Op
    args: tuple[TypeCode, ...]
    ret: TypeCode

    @property
    def name(self) -> str:
        return variant_name(self.op.name, self.args)


def variant_name(op_name: str, args: tuple[str, ...]) -> str:
    return f"{op_name}__{''.join(args)}"


# ---- ephemeral constants ----------------------------------------------------------------------
_constant_rng: random.Random | ModuleType = random


def use_constant_rng(rng: random.Random | None) -> None:
    """Draw new ephemeral constants from `rng`; None restores the default, the `random` module.

    By default constants come from the same global generator as DEAP's own operators, so
    `random.seed(s)` makes a whole run (trees and constants) reproducible and a checkpoint of
    `random.getstate()` covers the constants too.
    """
    global _constant_rng
    _constant_rng = random if rng is None else rng


def draw_constant() -> float:
    """A fresh ephemeral constant: uniform in [-2, 2], rounded to 2 decimals so that evolved
    expressions stay readable. Module-level (not a lambda) so the ephemeral pickles."""
    return round(_constant_rng.uniform(-2.0, 2.0), 2) + 0.0  # + 0.0 turns -0.0 into 0.0


# ---- the DEAP primitive set -------------------------------------------------------------------
PSET = gp.PrimitiveSetTyped("gm_lab_proxy", [], Scalar)
VARIANTS: dict[str, Variant] = {}
#: variant name -> (function, takes the layer mask): what evaluation calls, kept up to date
DISPATCH: dict[str, tuple[Callable[..., np.ndarray], bool]] = {}


def _check_free(name: str, what: str) -> None:
    """A name means one thing in the expression language."""
    if name == "const" or name in OPS_BY_NAME or name in PSET.mapping:
        raise PluginError(f"{what} {name!r}: the name is already used in the expression language")


def _add_terminal(name: str, deap_type: type, what: str) -> None:
    _check_free(name, what)
    PSET.addTerminal(name, deap_type, name=name)


def _add_variants(op: Op) -> None:
    for args in op.signatures():
        variant = Variant(op, args, op.result_type(args))
        PSET.addPrimitive(op.fn, [TYPES[a] for a in args], TYPES[variant.ret], name=variant.name)
        VARIANTS[variant.name] = variant
        DISPATCH[variant.name] = (op.fn, op.masked)


def register_operator(op: Op) -> Op:
    """Add a GP operator: it can then be parsed, evolved, simplified and shown like a built-in.

    `op.fn` works on numpy arrays (rows: architectures; an L argument has one column per layer)
    and must be total (finite in, finite out where possible; never raise).
    """
    if not op.name.isidentifier():
        raise PluginError(f"operator name {op.name!r} must be an identifier")
    if any(o.arity == op.arity for o in OPS_BY_NAME.get(op.name, ())):
        raise PluginError(f"an operator {op.name!r} taking {op.arity} argument(s) exists")
    if op.name in PSET.mapping or op.name == "const":
        raise PluginError(f"operator {op.name!r}: the name is a terminal")
    if op.symbol and op.symbol in SYMBOLS:
        raise PluginError(f"operator symbol {op.symbol!r} is taken")
    OPS.append(op)
    OPS_BY_NAME.setdefault(op.name, []).append(op)
    if op.symbol:
        SYMBOLS[op.symbol] = op
    _add_variants(op)
    return op


for _op in OPS:
    _add_variants(_op)
PSET.addEphemeralConstant("const", draw_constant, Scalar)
for _name in STATISTICS.names():
    _add_terminal(_name, Layer, "statistic")
for _name in PROXIES.names():
    _add_terminal(_name, Scalar, "proxy")


def _on_statistic(spec: StatisticSpec) -> None:
    if spec.name not in PSET.mapping:  # replace=True keeps its terminal
        _add_terminal(spec.name, Layer, "statistic")


def _on_proxy(spec: ProxySpec) -> None:
    if spec.name not in PSET.mapping:
        _add_terminal(spec.name, Scalar, "proxy")


STATISTICS.subscribe(_on_statistic)
PROXIES.subscribe(_on_proxy)


def restricted_pset(
    proxies: Iterable[str] | None = None, statistics: bool = True
) -> gp.PrimitiveSetTyped:
    """`PSET` with only the proxies `proxies` as S terminals (None: all), for a search whose
    data holds only those (or that may use only those). `statistics=False` also drops every
    per-layer statistic and, as nothing per-layer can then be built, every operator taking or
    giving a per-layer value: expressions over the proxies and constants alone. Shares PSET's
    primitive and terminal objects, so trees built from it are trees over PSET."""
    if proxies is None and statistics:
        return PSET
    allowed = set(PSET.mapping if proxies is None else proxies)
    if statistics:
        allowed |= set(stat_names())
    else:
        allowed -= set(stat_names())
    pset = copy.copy(PSET)
    pset.terminals = {
        kind: [t for t in terms if isinstance(t, type) or t.name in allowed]  # type: constants
        for kind, terms in PSET.terminals.items()
    }
    if not statistics:
        pset.terminals[Layer] = []
        pset.primitives = {
            kind: [p for p in prims if kind is Scalar and all(a is Scalar for a in p.args)]
            for kind, prims in PSET.primitives.items()
        }
    return pset


#: The ephemeral-constant terminal class (a DEAP MetaEphemeral); instances hold `.value`.
Constant: Any = PSET.mapping["const"]


def make_constant(value: float) -> gp.Terminal:
    """A constant terminal holding `value`, made without drawing from the random generator
    (so parsing an expression never disturbs a seeded run)."""
    node = Constant.__new__(Constant)
    node.value = float(value) + 0.0
    return node


def _reduce_constant(node: gp.Terminal) -> tuple[Callable[[float], gp.Terminal], tuple[float]]:
    return make_constant, (node.value,)


# DEAP pickles an ephemeral's class by re-creating it, so constants unpickled in another process
# would be of a different class and compare unequal to freshly parsed ones. Pickling each
# constant as `make_constant(value)` keeps them equal across checkpoints and processes.
Constant.__reduce__ = _reduce_constant


def is_constant(node: object) -> bool:
    return type(node) is Constant


def node_kind(node: gp.Primitive | gp.Terminal) -> str:
    """'op', 'stat', 'proxy' or 'const' for a node of a tree over PSET."""
    if isinstance(node, gp.Primitive):
        return "op"
    if is_constant(node):
        return "const"
    return "stat" if node.ret is Layer else "proxy"


def type_code(deap_type: type) -> TypeCode:
    return deap_type.code  # type: ignore[attr-defined]
