"""The proxy expression language: typed expression trees over cached probe statistics.

An expression combines per-layer statistics (L, e.g. ``snip_l``), classic proxies (S, e.g.
``naswot``) and constants with protected element-wise operators and masked reductions across
layers, and must reduce to one scalar per network, e.g.::

    mean(log(snip_l) / l2(grad_norm_l)) + 0.5 * log(naswot)

Trees are DEAP `gp.PrimitiveTree`s over `PSET` (a `gp.PrimitiveSetTyped`), so the GP engine
uses DEAP's generators, crossover and mutation on them directly. Around them:

- `parse(text)` / `to_text(tree)`: text form (``parse(to_text(t)) == t``; `to_text(parse(s))`
  is canonical); errors are `ExpressionError` with column and caret;
- `to_json(tree)` / `from_json(data)`: the JSON form for a tree editor, same round trip;
- `evaluate(tree, arrays)`: scores of all architectures of a `ProbeArrays` at once;
  `score_expression(tree, arrays, truth)`: Kendall τ and Spearman ρ;
- `simplify(tree)` / `canonical_key(tree)`: canonical form, for fitness caching;
- `check_tree(tree)`: validate a tree from elsewhere (types, size limits).
"""

from gm_lab.expressions.errors import ExpressionError
from gm_lab.expressions.evaluate import (
    EvalContext,
    evaluate,
    explain_degenerate,
    prepare,
    score_expression,
)
from gm_lab.expressions.jsonform import from_json, to_json
from gm_lab.expressions.nodes import MAX_DEPTH, MAX_NODES, MAX_TEXT_LENGTH, Node, check_tree
from gm_lab.expressions.parse import parse
from gm_lab.expressions.primitives import (
    OPS,
    PSET,
    Constant,
    Layer,
    Op,
    Scalar,
    draw_constant,
    make_constant,
    proxy_names,
    register_operator,
    restricted_pset,
    stat_names,
    use_constant_rng,
)
from gm_lab.expressions.printer import to_text
from gm_lab.expressions.simplify import canonical_key, simplify

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_TEXT_LENGTH",
    "OPS",
    "PSET",
    "Constant",
    "EvalContext",
    "ExpressionError",
    "Layer",
    "Node",
    "Op",
    "Scalar",
    "canonical_key",
    "check_tree",
    "draw_constant",
    "evaluate",
    "explain_degenerate",
    "from_json",
    "make_constant",
    "parse",
    "prepare",
    "proxy_names",
    "register_operator",
    "restricted_pset",
    "score_expression",
    "simplify",
    "stat_names",
    "to_json",
    "to_text",
    "use_constant_rng",
]
