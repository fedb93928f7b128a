"""Vectorised evaluation of an expression tree on the cached statistics of a whole sample.

One numpy operation per tree node, over all architectures at once: per-layer values are the
padded [n, max_layers] arrays of `ProbeArrays` (reductions read only the masked layers), scalars
are [n, 1] columns, constants [1, 1], so broadcasting does the mixed L/S operations (see
`gm_lab.expressions.ops` for the protected operations). The tree is walked directly, in reverse
prefix order with a value stack: DEAP's `gp.compile` would `eval` generated source text, which
this package never does.
"""

from __future__ import annotations

import weakref

import numpy as np
from deap import gp

from gm_lab import metrics
from gm_lab.expressions import ops
from gm_lab.expressions.errors import ExpressionError
from gm_lab.expressions.primitives import DISPATCH, Layer, Scalar, is_constant
from gm_lab.probe.cache import ProbeArrays


class EvalContext:
    """A sample prepared for evaluation: terminals as 2-D arrays saturated to ±ops.LIMIT (so an
    infinite input cannot turn into inf - inf = NaN inside an expression) and the layer mask in
    the forms the reductions use. Built once per sample and reused for every expression; the
    arrays it was built from must not be modified afterwards.
    """

    def __init__(self, arrays: ProbeArrays) -> None:
        self.arrays = arrays
        self.n = len(arrays)
        self.layers = ops.LayerMask.from_mask(arrays.mask)
        self._terminals: dict[str, np.ndarray] = {}
        self._constants: dict[float, np.ndarray] = {}

    def terminal(self, node: gp.Terminal) -> np.ndarray:
        """The value of a statistic, proxy or constant terminal."""
        if is_constant(node):
            value = self._constants.get(node.value)
            if value is None:
                value = self._constants[node.value] = np.full((1, 1), float(node.value))
            return value
        value = self._terminals.get(node.name)
        if value is None:
            value = self._terminals[node.name] = self._load(node)
        return value

    def _load(self, node: gp.Terminal) -> np.ndarray:
        if node.ret is Layer:
            source, what = self.arrays.layer_stats, "per-layer statistic"
        else:
            source, what = self.arrays.proxies, "proxy"
        if node.name not in source:
            raise ExpressionError(
                f"{what} {node.name!r} is not in these probe arrays (they hold "
                f"{', '.join(sorted(source)) or 'none'}); probe with a version that records it"
            )
        raw = np.asarray(source[node.name], dtype=np.float64)
        value = raw.reshape(self.n, -1) if node.ret is Layer else raw.reshape(self.n, 1)
        return np.clip(value, -ops.LIMIT, ops.LIMIT)


_contexts: dict[int, tuple[weakref.ReferenceType, EvalContext]] = {}


def prepare(arrays: ProbeArrays | EvalContext) -> EvalContext:
    """The EvalContext of `arrays`, built on first use and reused while `arrays` lives."""
    if isinstance(arrays, EvalContext):
        return arrays
    key = id(arrays)
    hit = _contexts.get(key)
    if hit is not None and hit[0]() is arrays:
        return hit[1]
    context = EvalContext(arrays)
    _contexts[key] = (weakref.ref(arrays, _Forget(key, _contexts)), context)
    return context


class _Forget:
    """Weakref callback dropping a dead sample's context (holding its own reference to the
    table, which may already be gone from the module at interpreter exit)."""

    def __init__(self, key: int, table: dict[int, tuple[weakref.ReferenceType, EvalContext]]):
        self.key = key
        self.table = table

    def __call__(self, ref: weakref.ReferenceType) -> None:
        entry = self.table.get(self.key)
        if entry is not None and entry[0] is ref:
            del self.table[self.key]


def evaluate(tree: gp.PrimitiveTree, arrays: ProbeArrays | EvalContext) -> np.ndarray:
    """The score of every architecture of `arrays` under `tree`: float64[n], non-finite -> NaN.

    `tree` must be typed as DEAP builds it over PSET (parse, from_json and DEAP's operators
    guarantee that; `check_tree` checks a hand-assembled one); the root must be a scalar.
    """
    context = prepare(arrays)
    if len(tree) == 0:
        raise ExpressionError("empty expression tree")
    if tree[0].ret is not Scalar:
        raise ExpressionError("the expression is per-layer (L); a proxy must be a scalar (S)")
    stack: list[np.ndarray] = []
    try:
        with np.errstate(all="ignore"):
            for node in reversed(tree):
                arity = node.arity
                if arity == 0:
                    stack.append(context.terminal(node))
                    continue
                fn, masked = DISPATCH[node.name]
                if arity == 1:
                    x = stack.pop()
                    stack.append(fn(x, context.layers) if masked else fn(x))
                else:
                    a = stack.pop()
                    stack.append(fn(a, stack.pop()))
    except (IndexError, KeyError) as exc:
        raise ExpressionError(f"malformed expression tree ({type(exc).__name__}: {exc})") from None
    if len(stack) != 1:
        raise ExpressionError(f"malformed expression tree: {len(stack)} values left, not 1")
    scores = np.array(np.broadcast_to(stack[0], (context.n, 1))[:, 0], dtype=np.float64)
    scores[~np.isfinite(scores)] = np.nan
    return scores


def nonfinite_origin(tree: gp.PrimitiveTree, arrays: ProbeArrays | EvalContext) -> str | None:
    """Where NaN/inf first appear in `tree`: the deepest node whose value is non-finite for some
    architecture although its inputs are finite there ("div gives NaN or infinite values for
    12", "the proxy 'grasp' is NaN or infinite for 3"), or None. Evaluates the tree once more,
    keeping for each value which architectures it is bad for (padding layers excluded)."""
    context = prepare(arrays)
    mask = np.asarray(context.arrays.mask, dtype=bool).reshape(context.n, -1)

    def bad_rows(value: np.ndarray, layer: bool) -> np.ndarray:
        full = np.broadcast_to(value, (context.n, value.shape[1]))
        wrong = ~np.isfinite(full)
        return (wrong & mask).any(axis=1) if layer and full.shape == mask.shape else wrong[:, 0]

    stack: list[tuple[np.ndarray, np.ndarray]] = []  # (value, architectures it is bad for)
    with np.errstate(all="ignore"):
        for node in reversed(tree):
            layer = node.ret is Layer
            if node.arity == 0:
                value = context.terminal(node)
                raw = value if is_constant(node) else _raw_terminal(context, node)
                bad = bad_rows(raw, layer)
                if bad.any():
                    kind = "per-layer statistic" if layer else "proxy"
                    return f"the {kind} {node.name!r} is NaN or infinite for {int(bad.sum())}"
                stack.append((value, bad))
                continue
            fn, masked = DISPATCH[node.name]
            args = [stack.pop() for _ in range(node.arity)]
            inputs_bad = np.logical_or.reduce([bad for _, bad in args])
            if node.arity == 1:
                out = fn(args[0][0], context.layers) if masked else fn(args[0][0])
            else:
                out = fn(args[0][0], args[1][0])
            bad = bad_rows(out, layer)
            new = bad & ~inputs_bad
            if new.any():
                return f"{node.name} gives NaN or infinite values for {int(new.sum())}"
            stack.append((out, bad))
    return None


def _raw_terminal(context: EvalContext, node: gp.Terminal) -> np.ndarray:
    """A terminal as stored, before saturation (so an infinite proxy is seen as such)."""
    source = context.arrays.layer_stats if node.ret is Layer else context.arrays.proxies
    return np.asarray(source[node.name], dtype=np.float64).reshape(context.n, -1)


def explain_degenerate(
    tree: gp.PrimitiveTree, arrays: ProbeArrays | EvalContext, scores: np.ndarray | None = None
) -> str | None:
    """Why the expression's scores cannot (fully) rank the sample, with where NaN comes from:
    "NaN or infinite for 412 of 600 architectures (log gives NaN or infinite values for 412)";
    None when its scores are fine."""
    scores = evaluate(tree, arrays) if scores is None else scores
    reason = metrics.degenerate_reason(scores)
    if reason is None or np.isfinite(scores).all():
        return reason
    origin = nonfinite_origin(tree, arrays)
    return f"{reason} ({origin})" if origin else reason


def score_expression(
    tree: gp.PrimitiveTree, arrays: ProbeArrays | EvalContext, truth: np.ndarray
) -> dict[str, float]:
    """Kendall τ and Spearman ρ between the expression's scores and `truth` (aligned with the
    rows of `arrays`). NaN scores rank below every finite one; a constant score, which ranks
    nothing, gets -1, the worst value, so the result can be compared directly."""
    scores = evaluate(tree, arrays)
    result = {
        "kendall": metrics.kendall(scores, truth, nan_policy="worst"),
        "spearman": metrics.spearman(scores, truth, nan_policy="worst"),
    }
    return {key: (-1.0 if np.isnan(value) else value) for key, value in result.items()}
