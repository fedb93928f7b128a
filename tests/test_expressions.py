"""Proxy expression language: parse/print/JSON round trips, errors with positions, typing,
limits, masked vectorised evaluation, protected operators, the simplifier, DEAP compatibility,
fuzzing, and the classic layer-sum proxies on real probe records."""

from __future__ import annotations

import ast
import json
import math
import pickle
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from deap import gp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gm_lab.errors import GmLabError
from gm_lab.expressions import (
    MAX_NODES,
    MAX_TEXT_LENGTH,
    OPS,
    PSET,
    Constant,
    ExpressionError,
    canonical_key,
    check_tree,
    evaluate,
    from_json,
    make_constant,
    parse,
    proxy_names,
    score_expression,
    simplify,
    stat_names,
    to_json,
    to_text,
)
from gm_lab.expressions import ops as xops
from gm_lab.expressions.primitives import OPS_BY_NAME
from gm_lab.expressions.printer import format_number
from gm_lab.metrics import kendall
from gm_lab.probe.cache import ProbeArrays

PACKAGE = Path(__file__).resolve().parents[1] / "gm_lab" / "expressions"
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---- fixtures -----------------------------------------------------------------------------------
def synthetic_arrays(
    n: int = 40, max_layers: int = 12, seed: int = 0, extreme: bool = False
) -> ProbeArrays:
    """Random statistics under the real names; `extreme` mixes in zeros, subnormals and values
    near the float64 limit. Padding is NaN, as the cache writes it."""
    rng = np.random.default_rng(seed)
    n_layers = rng.integers(max(1, max_layers // 3), max_layers + 1, size=n)
    n_layers[0] = max_layers
    mask = np.arange(max_layers)[None, :] < n_layers[:, None]

    def draw(shape: tuple[int, ...]) -> np.ndarray:
        values = rng.lognormal(0.0, 3.0, shape) * rng.choice([-1.0, 1.0], shape)
        if extreme:
            special = np.array([0.0, -0.0, 5e-324, 1e-300, 1e300, -1e300, 1.7e308, -1.7e308])
            pick = rng.random(shape) < 0.3
            values[pick] = rng.choice(special, int(pick.sum()))
        return values

    layer_stats = {name: np.where(mask, draw((n, max_layers)), np.nan) for name in stat_names()}
    proxies = {name: draw((n,)) for name in proxy_names()}
    return ProbeArrays(
        indices=np.arange(n, dtype=np.int64),
        archs=[f"arch{i}" for i in range(n)],
        n_layers=n_layers.astype(np.int64),
        mask=mask,
        layer_stats=layer_stats,
        proxies=proxies,
    )


PAD = 1e6  # padding that a reduction ignoring the mask would visibly pick up


def tiny_arrays(pad: float) -> ProbeArrays:
    """Three architectures with 4, 2 and 3 layers; hand-checked values below."""
    snip = [[1.0, 2.0, 3.0, 4.0], [5.0, -6.0, pad, pad], [0.0, 7.0, -1.0, pad]]
    grad = [[1.0, 1.0, 1.0, 1.0], [2.0, 3.0, pad, pad], [4.0, 0.0, 2.0, pad]]
    n_layers = np.array([4, 2, 3])
    mask = np.arange(4)[None, :] < n_layers[:, None]
    stats = {name: np.full((3, 4), pad) for name in stat_names()}
    stats["snip_l"], stats["grad_norm_l"] = np.array(snip), np.array(grad)
    proxies = {name: np.zeros(3) for name in proxy_names()}
    proxies["naswot"], proxies["zen"] = np.array([1.0, 2.0, 3.0]), np.array([0.5, -1.0, 2.0])
    return ProbeArrays(np.arange(3), ["a", "b", "c"], n_layers, mask, stats, proxies)


def random_trees(count: int, seed: int, min_depth: int = 1, max_depth: int = 6) -> list:
    random.seed(seed)
    return [gp.PrimitiveTree(gp.genHalfAndHalf(PSET, min_depth, max_depth)) for _ in range(count)]


@pytest.fixture(scope="module")
def arrays() -> ProbeArrays:
    return synthetic_arrays()


# ---- the primitive set -------------------------------------------------------------------------
def test_language_covers_every_statistic_and_proxy():
    assert all(s.endswith("_l") for s in stat_names())
    for name in ["snip", "grad_norm", "l2_norm", "plain", "naswot", "synflow", "zen", "meco"]:
        assert name in PSET.mapping
    names = {op.name for op in OPS}
    assert {"log", "abs", "sqrt", "square", "exp", "inv", "neg", "sigmoid", "tanh"} <= names
    assert {"relu", "standardise", "add", "sub", "mul", "div", "max", "min"} <= names
    assert {"sum", "mean", "std", "l2", "median"} <= names
    for variant in ["log__L", "log__S", "add__LS", "add__SL", "max__L", "max__LL", "sum__L"]:
        assert variant in PSET.mapping
    assert "standardise__S" not in PSET.mapping and "sum__S" not in PSET.mapping


# ---- text round trips --------------------------------------------------------------------------
CANONICAL = [
    (
        "mean(log(snip_l) / l2(grad_norm_l)) + 0.5*log(naswot)",
        "mean(log(snip_l) / l2(grad_norm_l)) + 0.5 * log(naswot)",
    ),
    ("sum( snip_l )", "sum(snip_l)"),
    ("((naswot))", "naswot"),
    ("naswot - zen - meco", "naswot - zen - meco"),
    ("naswot - (zen - meco)", "naswot - (zen - meco)"),
    ("(naswot + zen) * meco", "(naswot + zen) * meco"),
    ("naswot + zen * meco", "naswot + zen * meco"),
    ("naswot / (zen / meco)", "naswot / (zen / meco)"),
    ("-2 * naswot", "-2 * naswot"),
    ("-(2) * naswot", "-(2) * naswot"),
    ("neg(naswot)", "-naswot"),
    ("--naswot", "-(-naswot)"),
    ("naswot - -zen", "naswot - (-zen)"),
    ("naswot * -2.50", "naswot * (-2.5)"),
    ("+naswot", "naswot"),
    ("add(naswot, mul(zen, 2))", "naswot + zen * 2"),
    ("1e-5 + 1E3 + .5", "1e-05 + 1000 + 0.5"),
    ("max(snip_l)", "max(snip_l)"),
    ("sum(max(snip_l, naswot))", "sum(max(snip_l, naswot))"),
    ("median(standardise(snip_l)) + std(a_std_l)", "median(standardise(snip_l)) + std(a_std_l)"),
    ("sum(-snip_l * 2)", "sum(-snip_l * 2)"),
    ("-sum(snip_l)", "-sum(snip_l)"),
    ("-(naswot * zen)", "-(naswot * zen)"),
]


@pytest.mark.parametrize(("text", "canonical"), CANONICAL)
def test_printing_a_parsed_text_gives_its_canonical_form(text: str, canonical: str):
    tree = parse(text)
    assert to_text(tree) == canonical
    assert parse(canonical) == tree
    assert to_text(parse(canonical)) == canonical


def test_parser_picks_typed_variants():
    tree = parse("sum(snip_l * naswot) + max(naswot, 1)")
    assert [node.name for node in tree] == [
        "add__SS", "sum__L", "mul__LS", "snip_l", "naswot", "max__SS", "naswot", "const",
    ]  # fmt: skip
    assert parse("naswot * sum(snip_l)")[0].name == "mul__SS"
    assert parse("sum(naswot * snip_l)")[1].name == "mul__SL"


def test_random_trees_round_trip_through_text_and_json():
    for tree in random_trees(400, seed=1):
        text = to_text(tree)
        assert parse(text) == tree, text
        assert to_text(parse(text)) == text
        data = to_json(tree)
        assert from_json(data) == tree, text
        assert from_json(json.dumps(data)) == tree, text


@given(st.floats(allow_nan=False, allow_infinity=False))
@FAST
def test_constants_print_exactly(value: float):
    tree = gp.PrimitiveTree([PSET.mapping["add__SS"], make_constant(value), PSET.mapping["zen"]])
    again = parse(to_text(tree))
    assert again == tree
    assert again[1].value == value + 0.0
    assert float(format_number(abs(value))) == abs(value)


def test_json_form_matches_the_documented_shape():
    data = to_json(parse("mean(snip_l) + 0.5 * naswot"))
    assert data == {
        "kind": "op",
        "name": "add",
        "type": "S",
        "args": [
            {
                "kind": "op",
                "name": "mean",
                "type": "S",
                "args": [{"kind": "stat", "name": "snip_l", "type": "L"}],
            },
            {
                "kind": "op",
                "name": "mul",
                "type": "S",
                "args": [
                    {"kind": "const", "value": 0.5, "type": "S"},
                    {"kind": "proxy", "name": "naswot", "type": "S"},
                ],
            },
        ],
    }
    del data["type"], data["args"][0]["type"]  # types may be left out when writing
    assert to_text(from_json(data)) == "mean(snip_l) + 0.5 * naswot"


# ---- errors ---------------------------------------------------------------------------------
MALFORMED = [
    ("", 1, "empty expression"),
    ("   ", 1, "empty expression"),
    ("sum(snip_l", 11, "missing ')' to close the '(' at column 4"),
    ("sum(snip_l))", 12, "unmatched ')'"),
    ("naswot +", 9, "expected a number, a name or '('"),
    ("naswot * * zen", 10, "found '*'"),
    ("sum(snp_l)", 5, "did you mean snip_l"),
    ("nasbot + 1", 1, "did you mean naswot"),
    ("lgo(naswot)", 1, "unknown function 'lgo'; did you mean log"),
    ("log(naswot, 2)", 1, "log takes 1 argument, got 2"),
    ("max(naswot, zen, meco)", 1, "max takes 1 or 2 arguments, got 3"),
    ("sum()", 1, "sum takes 1 argument, got 0"),
    ("naswot $ 2", 8, "unexpected character '$'"),
    ("1.2.3 + naswot", 1, "malformed number '1.2.3'"),
    ("2naswot", 1, "malformed number"),
    ("naswot(2)", 1, "naswot is a proxy"),
    ("snip_l(2)", 1, "snip_l is a per-layer statistic, not a function"),
    ("log + naswot", 1, "log is a function: call it as log(...)"),
    ("sum(snip_l,)", 12, "expected a number, a name or '('"),
    ("(naswot, zen)", 8, "unexpected ','"),
    ("naswot zen", 8, "unexpected name 'zen' after a complete expression"),
    ("1e999 * naswot", 1, "too large"),
    ("naswot + é", 10, "unexpected character 'é'"),
]


@pytest.mark.parametrize(("text", "column", "reason"), MALFORMED)
def test_malformed_text_is_reported_with_column_and_caret(text: str, column: int, reason: str):
    with pytest.raises(ExpressionError) as caught:
        parse(text)
    error = caught.value
    assert isinstance(error, GmLabError) and isinstance(error, ValueError)
    assert reason in error.reason
    assert error.column == column, str(error)
    message = str(error)
    assert f"(column {column})" in message
    line, caret = message.splitlines()[-2:]
    assert line == "  " + text.replace("\t", " ") and caret == " " * (column + 1) + "^"


TYPE_ERRORS = [
    ("sum(naswot)", 5, "sum reduces across layers and needs a per-layer (L) argument"),
    ("max(naswot)", 5, "write max(a, b)"),
    ("standardise(zen)", 13, "standardise works across layers"),
    ("snip_l", 1, "must be one scalar (S)"),
    ("snip_l + naswot", 1, "per-layer (L) but a proxy must be one scalar"),
    ("log(grad_norm_l) * 2", 1, "reduce it across layers"),
    ("naswot + sum(sum(snip_l))", 14, "sum(...) already gives one value per network"),
]


@pytest.mark.parametrize(("text", "column", "reason"), TYPE_ERRORS)
def test_type_errors_name_the_argument_at_fault(text: str, column: int, reason: str):
    with pytest.raises(ExpressionError) as caught:
        parse(text)
    assert reason in caught.value.reason
    assert caught.value.column == column


def test_caret_window_for_long_text():
    text = "naswot" + " " * 200 + "+ nope + zen" + " " * 100
    with pytest.raises(ExpressionError) as caught:
        parse(text)
    line, caret = str(caught.value).splitlines()[-2:]
    assert line.startswith("  ...") and line.endswith("...") and len(line) < 140
    assert line[caret.index("^") :].startswith("nope")


JSON_ERRORS = [
    ({"kind": "op", "name": "sum", "args": [{"kind": "proxy", "name": "naswot"}]}, "$.args[0]"),
    ({"kind": "stat", "name": "naswot", "type": "S"}, "$"),
    ({"kind": "proxy", "name": "snp", "type": "S"}, "$"),
    ({"kind": "const", "value": "0.5"}, "$"),
    ({"kind": "const", "value": True}, "$"),
    ({"kind": "const", "value": 10**400}, "$"),
    ({"kind": "op", "name": "mean", "args": [{"kind": "stat", "name": "l2_l"}]}, "$.args[0]"),
    ({"kind": "op", "name": "sum", "type": "L", "args": [{"kind": "stat", "name": "macs_l"}]}, "$"),
    ({"kind": "op", "name": "log", "args": []}, "$"),
    ({"kind": "op", "name": "log"}, "$"),
    ({"kind": "stat", "name": "snip_l", "colour": "red"}, "$"),
    ({"kind": "weird"}, "$"),
    ({"kind": "stat", "name": "snip_l"}, "$"),  # a per-layer root
    ({"kind": "op", "name": "add", "args": [{"kind": "proxy", "name": "zen"}, 3]}, "$.args[1]"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "path"), JSON_ERRORS)
def test_json_errors_name_the_path(data: dict, path: str):
    with pytest.raises(ExpressionError) as caught:
        from_json(data)
    assert caught.value.path == path, str(caught.value)
    assert f"(at {path})" in str(caught.value)


def test_json_text_errors():
    with pytest.raises(ExpressionError, match="not valid JSON"):
        from_json("{")
    with pytest.raises(ExpressionError, match="a node must be a JSON object"):
        from_json("[1, 2]")
    deep = '{"kind": "op", "name": "log", "args": [' * 100 + "1" + "]}" * 100
    with pytest.raises(ExpressionError, match="too deep"):
        from_json(deep)


# ---- limits -------------------------------------------------------------------------------------
def _balanced(depth: int) -> str:
    return "zen" if depth == 0 else f"({_balanced(depth - 1)} + {_balanced(depth - 1)})"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("naswot + " * 3000 + "zen", "too long"),
        (_balanced(10), "too large"),
        ("log(" * 60 + "zen" + ")" * 60, "too deep"),
        (" + ".join(["zen"] * 60), "too deep"),
        ("(" * 5000 + "zen" + ")" * 5000, "nested too deeply"),
        ("-" * 5000 + "zen", "nested too deeply"),
        ("sum(" * 5000, "nested too deeply"),
    ],
)
def test_absurd_sizes_are_refused(text: str, reason: str):
    with pytest.raises(ExpressionError, match=reason):
        parse(text)
    assert len(_balanced(10)) < MAX_TEXT_LENGTH  # too large by nodes, not by text


def test_check_tree_refuses_bad_trees():
    add, zen, total = PSET.mapping["add__SS"], PSET.mapping["zen"], PSET.mapping["sum__L"]
    check_tree(gp.PrimitiveTree([add, zen, zen]))
    with pytest.raises(ExpressionError, match="too large"):
        check_tree(gp.PrimitiveTree([add] * MAX_NODES + [zen] * (MAX_NODES + 1)))
    with pytest.raises(ExpressionError, match="missing arguments"):
        check_tree(gp.PrimitiveTree([add, zen]))
    with pytest.raises(ExpressionError, match="wrongly typed"):
        check_tree(gp.PrimitiveTree([total, zen]))
    with pytest.raises(ExpressionError, match="separate expressions"):
        check_tree(gp.PrimitiveTree([zen, zen]))
    with pytest.raises(ExpressionError, match="must be one scalar"):
        check_tree(gp.PrimitiveTree([PSET.mapping["snip_l"]]))
    with pytest.raises(ExpressionError, match="not a finite number"):
        check_tree(gp.PrimitiveTree([add, zen, make_constant(math.inf)]))
    with pytest.raises(ExpressionError, match="malformed"):
        evaluate(gp.PrimitiveTree([add, zen]), synthetic_arrays(n=3))


# ---- evaluation ------------------------------------------------------------------------------
def _rows(values: list[list[float]], n_layers: list[int]) -> list[np.ndarray]:
    return [np.array(row[:k]) for row, k in zip(values, n_layers, strict=True)]


@pytest.mark.parametrize("pad", [np.nan, PAD])
def test_evaluation_matches_hand_computed_numpy_and_ignores_padding(pad: float):
    arrays = tiny_arrays(pad)
    snip = _rows(arrays.layer_stats["snip_l"].tolist(), [4, 2, 3])
    grad = _rows(arrays.layer_stats["grad_norm_l"].tolist(), [4, 2, 3])
    naswot, zen = arrays.proxies["naswot"], arrays.proxies["zen"]

    def check(text: str, expected: list[float]) -> None:
        np.testing.assert_allclose(evaluate(parse(text), arrays), expected, rtol=1e-12)

    check("sum(snip_l)", [10.0, -1.0, 6.0])
    check("mean(snip_l)", [2.5, -0.5, 2.0])
    check("max(snip_l)", [4.0, 5.0, 7.0])
    check("min(snip_l)", [1.0, -6.0, -1.0])
    check("std(snip_l)", [math.sqrt(1.25), 5.5, math.sqrt(38 / 3)])
    check("l2(snip_l)", [math.sqrt(30), math.sqrt(61), math.sqrt(50)])
    check("median(snip_l)", [2.5, -0.5, 0.0])
    check("std(snip_l)", [np.std(r) for r in snip])
    check("median(grad_norm_l)", [np.median(r) for r in grad])
    check("sum(snip_l * naswot)", [10.0, -2.0, 18.0])
    check("sum(naswot * snip_l)", [10.0, -2.0, 18.0])
    check("sum(snip_l / grad_norm_l)", [10.0, 0.5, -0.5])  # 7 / 0 is 0
    check("sum(max(snip_l, zen))", [10.0, 4.0, 11.0])
    check("mean(log(snip_l))", [np.mean(np.log(np.abs(r), where=r != 0, out=np.zeros(len(r))))
                                for r in snip])  # fmt: skip
    check("naswot - zen", list(naswot - zen))
    check("2", [2.0, 2.0, 2.0])
    check("sum(snip_l) / naswot + 1", [11.0, 0.5, 3.0])
    standard = [(r - r.mean()) / r.std() for r in snip]
    check("max(standardise(snip_l))", [s.max() for s in standard])
    np.testing.assert_allclose(evaluate(parse("mean(standardise(snip_l))"), arrays), 0, atol=1e-12)
    np.testing.assert_allclose(evaluate(parse("std(standardise(snip_l))"), arrays), 1, rtol=1e-12)


def test_nan_statistics_propagate_and_constant_results_broadcast():
    arrays = tiny_arrays(np.nan)
    arrays.layer_stats["a_std_l"][1, 0] = np.nan  # a real layer without a value
    arrays.layer_stats["a_std_l"][0, :4] = 1.0
    arrays.layer_stats["a_std_l"][2, :3] = 2.0
    for reduction in ["sum", "mean", "max", "min", "std", "l2", "median"]:
        scores = evaluate(parse(f"{reduction}(a_std_l)"), arrays)
        assert np.isnan(scores[1]) and np.isfinite(scores[[0, 2]]).all(), reduction
    assert np.isnan(evaluate(parse("max(standardise(a_std_l))"), arrays)[1])
    scores = evaluate(parse("3 * 2"), arrays)
    assert scores.shape == (3,) and (scores == 6).all()


def test_missing_statistic_is_a_clear_error():
    arrays = tiny_arrays(np.nan)
    del arrays.layer_stats["fisher_l"]
    with pytest.raises(ExpressionError, match="'fisher_l' is not in these probe arrays"):
        evaluate(parse("sum(fisher_l)"), arrays)


def test_evaluation_never_writes_to_its_inputs():
    arrays = synthetic_arrays(n=10, extreme=True)
    before = {k: v.copy() for k, v in arrays.layer_stats.items()}
    for tree in random_trees(100, seed=5):
        evaluate(tree, arrays)
    for name, values in before.items():
        np.testing.assert_array_equal(arrays.layer_stats[name], values)


EXTREMES = np.array(
    [0.0, -0.0, 5e-324, -5e-324, 1e-300, 1e-10, 0.5, 1.0, -1.0, 3.0, 49.0, 51.0, 700.0,
     -700.0, 1e10, -1e10, 1e300, -1e300, 1.7e308, -1.7e308]
)  # fmt: skip


def test_protected_operators_keep_finite_inputs_finite():
    mask = np.ones((len(EXTREMES), 4), dtype=bool)
    mask[:, 3] = False
    layers = xops.LayerMask.from_mask(mask)
    grid = np.stack([np.roll(EXTREMES, k) for k in range(4)], axis=1)
    with np.errstate(all="ignore"):
        for op in OPS:
            if op.kind == "binary":
                out = op.fn(EXTREMES[:, None], EXTREMES[None, :])
                assert np.isfinite(out).all(), op.name
                assert np.isnan(op.fn(np.array([[np.nan]]), EXTREMES[None, :])).all(), op.name
                assert np.isnan(op.fn(EXTREMES[None, :], np.array([[np.nan]]))).all(), op.name
            elif op.masked:
                out = op.fn(grid, layers)
                assert np.isfinite(out[mask if op.kind == "unary" else slice(None)]).all(), op
            else:
                assert np.isfinite(op.fn(EXTREMES[None, :])).all(), op.name
                assert np.isnan(op.fn(np.array([[np.nan]]))).all(), op.name
    one = np.array([[0.0]])
    assert xops.log_abs(one)[0, 0] == 0 and xops.inv(one)[0, 0] == 0
    assert xops.div(np.array([[3.0]]), one)[0, 0] == 0
    assert xops.exp_clamped(np.array([[1e300]]))[0, 0] == pytest.approx(math.exp(50))
    assert xops.log_abs(np.array([[-math.e]]))[0, 0] == pytest.approx(1.0)
    assert xops.sqrt_abs(np.array([[-4.0]]))[0, 0] == 2.0
    huge = xops.LayerMask.from_mask(np.array([[True, True, False]]))
    values = np.array([[3e200, -4e200, np.nan]])  # squares overflow: the scaled route is taken
    assert xops.reduce_l2(values, huge)[0, 0] == pytest.approx(5e200)
    assert xops.reduce_std(values, huge)[0, 0] == pytest.approx(3.5e200)
    np.testing.assert_allclose(xops.standardise(values, huge)[0, :2], [1.0, -1.0])


def test_random_trees_on_extreme_finite_data_give_finite_scores():
    arrays = synthetic_arrays(n=30, extreme=True, seed=3)
    for tree in random_trees(300, seed=4):
        scores = evaluate(tree, arrays)
        assert scores.shape == (30,) and scores.dtype == np.float64
        assert np.isfinite(scores).all(), to_text(tree)


def test_score_expression(arrays: ProbeArrays):
    truth = arrays.proxies["snip"] * 2 + 1
    perfect = score_expression(parse("snip"), arrays, truth)
    assert perfect == {"kendall": pytest.approx(1.0), "spearman": pytest.approx(1.0)}
    reverse = score_expression(parse("-snip"), arrays, truth)
    assert reverse["kendall"] == pytest.approx(-1.0)
    assert score_expression(parse("2 + 3"), arrays, truth) == {"kendall": -1.0, "spearman": -1.0}


# ---- simplifier ---------------------------------------------------------------------------------
SIMPLIFIED = [
    ("naswot + 2 * 3", "6 + naswot"),
    ("--naswot", "naswot"),
    ("naswot - naswot + zen", "zen"),
    ("sum(snip_l - snip_l) + zen", "zen"),
    ("zen + naswot", "naswot + zen"),
    ("max(zen, naswot) * min(zen, naswot)", "max(naswot, zen) * min(naswot, zen)"),
    ("zen * 1 + 0 - 0", "zen"),
    ("zen * -1", "-zen"),
    ("0 - zen", "-zen"),
    ("naswot - -zen", "naswot + zen"),
    ("-zen + naswot", "naswot - zen"),
    ("naswot + -2", "naswot - 2"),
    ("(-zen) * (-naswot)", "naswot * zen"),
    ("zen + zen", "2 * zen"),
    ("zen * zen", "square(zen)"),
    ("max(zen, zen)", "zen"),
    ("log(-abs(zen))", "log(zen)"),
    ("abs(sqrt(zen))", "sqrt(zen)"),
    ("relu(relu(zen))", "relu(zen)"),
    ("log(0) + inv(0) + 1 / 0", "0"),
    ("exp(1000)", format_number(math.exp(50))),
    ("sum(snip_l * naswot) + sum(naswot * snip_l)", "2 * sum(naswot * snip_l)"),
    ("naswot + zen - zen", "naswot + zen - zen"),  # not reassociated: rounding would change
]


@pytest.mark.parametrize(("text", "expected"), SIMPLIFIED)
def test_simplifier_rewrites(text: str, expected: str):
    tree = parse(text)
    assert canonical_key(tree) == expected
    assert to_text(simplify(tree)) == expected
    assert to_text(tree) == to_text(parse(text))  # the input tree is not modified


def test_canonical_key_identifies_commuted_duplicates():
    a = parse("mean(log(snip_l) * naswot) + max(zen, meco)")
    b = parse("max(meco, zen) + mean(naswot * log(snip_l))")
    assert canonical_key(a) == canonical_key(b)
    assert canonical_key(a) != canonical_key(parse("mean(log(snip_l) * naswot) - max(zen, meco)"))


def test_simplification_preserves_every_score():
    arrays = synthetic_arrays(n=60, seed=11)
    extreme = synthetic_arrays(n=30, seed=12, extreme=True)
    changed = 0
    for tree in random_trees(500, seed=6, min_depth=2):
        simple = simplify(tree)
        changed += simple != tree
        for sample in (arrays, extreme):
            np.testing.assert_array_equal(evaluate(simple, sample), evaluate(tree, sample))
        assert simplify(simple) == simple, to_text(tree)
        assert canonical_key(simple) == canonical_key(tree) == to_text(simple)
        assert len(simple) <= len(tree)
    assert changed > 50  # the rules do fire on random trees


# ---- DEAP compatibility ------------------------------------------------------------------------
def test_deap_operators_produce_valid_trees():
    random.seed(9)
    population = random_trees(60, seed=9, max_depth=5)
    expr = gp.genFull
    for _ in range(200):
        a, b = (gp.PrimitiveTree(t) for t in random.sample(population, 2))
        a, b = gp.cxOnePoint(a, b)
        (a,) = gp.mutUniform(a, lambda pset, type_: expr(pset, 0, 2, type_), PSET)
        (b,) = gp.mutNodeReplacement(b, PSET)
        (b,) = gp.mutEphemeral(b, "all")
        (a,) = gp.mutShrink(a)
        for tree in (a, b):
            if tree.height <= 50 and len(tree) <= MAX_NODES:
                check_tree(tree)
                assert parse(to_text(tree)) == tree


def test_seeded_generation_is_reproducible_and_parsing_draws_nothing():
    first = [to_text(t) for t in random_trees(30, seed=21)]
    random.seed(21)
    state = random.getstate()
    parse("0.5 * naswot + sum(snip_l) * 2")
    assert random.getstate() == state
    assert [to_text(t) for t in random_trees(30, seed=21)] == first
    assert any(isinstance(node, Constant) for t in random_trees(30, seed=21) for node in t)


@pytest.mark.slow
def test_trees_with_constants_pickle_within_and_across_processes(tmp_path: Path):
    tree = parse("0.25 * naswot + sum(snip_l) - 1.5")
    again = pickle.loads(pickle.dumps(tree))
    assert again == tree and sum(type(node) is Constant for node in again) == 2
    blob = tmp_path / "tree.pkl"
    blob.write_bytes(pickle.dumps([tree, *random_trees(5, seed=2)]))
    code = (
        "import pickle, sys\n"
        f"trees = pickle.loads(open({str(blob)!r}, 'rb').read())\n"
        "from gm_lab.expressions import parse, to_text\n"
        "assert all(parse(to_text(t)) == t for t in trees)\n"
        "print(to_text(trees[0]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0.25 * naswot + sum(snip_l) - 1.5"


def test_package_never_evals_or_execs():
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else None
                assert name not in {"eval", "exec", "compile"}, path
                if isinstance(func, ast.Attribute) and func.attr == "compile":
                    assert isinstance(func.value, ast.Name) and func.value.id == "re", path


# ---- fuzzing ----------------------------------------------------------------------------------
TOKENS = st.sampled_from(
    [*stat_names()[:6], *proxy_names()[:5], *OPS_BY_NAME, "+", "-", "*", "/", "(", ")", ",",
     "0.5", "2", "1e3", ".5", "1e999", "1.2.3", "snp_l", "$", "é", "\t", "\n", "_", "9x"]
)  # fmt: skip


def _parse_or_error(text: str, arrays: ProbeArrays) -> None:
    try:
        tree = parse(text)
    except ExpressionError as exc:
        assert exc.reason and (exc.position is None or 0 <= exc.position <= len(text))
        return
    assert parse(to_text(tree)) == tree
    assert evaluate(tree, arrays).shape == (len(arrays),)


@given(st.text(max_size=80))
@FAST
def test_fuzz_arbitrary_text_only_raises_expression_error(text: str):
    _parse_or_error(text, synthetic_arrays(n=4))


@given(st.lists(TOKENS, max_size=30), st.sampled_from(["", " "]))
@FAST
def test_fuzz_token_soup_only_raises_expression_error(tokens: list[str], sep: str):
    _parse_or_error(sep.join(tokens), synthetic_arrays(n=4))


JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.sampled_from(["op", "stat", "proxy", "const", "L", "S", "snip_l", "zen", "sum", "add"])
)


@given(
    st.recursive(
        JSON_LEAVES,
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.sampled_from(["kind", "name", "type", "args", "value"]), inner)
        ),
        max_leaves=20,
    )
)
@FAST
def test_fuzz_json_only_raises_expression_error(data: object):
    try:
        tree = from_json(data)  # type: ignore[arg-type]
    except ExpressionError:
        return
    assert from_json(to_json(tree)) == tree


# ---- real probe records ------------------------------------------------------------------------
@pytest.mark.slow
def test_layer_sums_equal_the_classic_proxies_on_real_probes():
    import torch

    from gm_lab.benchmark import Benchmark
    from gm_lab.probe.cache import ProbeCache
    from gm_lab.probe.probe import default_inputs, probe_architecture
    from gm_lab.probe.record import ProbeConfig

    pairs = {"snip_l": "snip", "grad_norm_l": "grad_norm", "l2_norm_l": "l2_norm"}
    pairs["plain_l"] = "plain"
    bench = Benchmark.load("tss")
    indices = np.random.default_rng(2024).choice(bench.n_archs, size=8, replace=False)
    config = ProbeConfig(batch_size=16)
    batch, noise = default_inputs(config)
    cache = ProbeCache(config)  # under GM_LAB_CACHE: the test's temporary cache
    cache.bind_inputs(batch.provenance())
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the probe runner does: many threads crawl on a shared machine
    try:
        for index in indices:
            arch = bench.arch(int(index))
            record = probe_architecture(
                int(index), arch, config, batch, noise, proxies=list(pairs.values())
            )
            cache.put(record)
    finally:
        torch.set_num_threads(threads)
    arrays = cache.load_arrays(indices)
    assert len(set(arrays.n_layers.tolist())) > 1  # padding really is exercised
    for stat, proxy in pairs.items():
        scores = evaluate(parse(f"sum({stat})"), arrays)
        expected = arrays.proxies[proxy]
        np.testing.assert_allclose(scores, expected, rtol=1e-9, err_msg=stat)
        assert kendall(scores, expected) >= 0.99, stat
