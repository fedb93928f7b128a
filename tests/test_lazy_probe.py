"""Lazy probing (issue #18 §2): only the passes an expression's terminals need run, the values
equal the full probe's, what is cached is reused, and the cost model sums the right passes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gm_lab.benchmark import Benchmark
from gm_lab.expressions import evaluate, parse
from gm_lab.expressions.cost import (
    PassCosts,
    expression_cost,
    expression_passes,
    load_pass_costs,
    measured_path,
)
from gm_lab.plugins import PROXIES, STATISTICS
from gm_lab.plugins.passes import plan_passes, terminal_passes
from gm_lab.probe import runner
from gm_lab.probe.cache import ProbeCache
from gm_lab.probe.columns import ProxyColumns
from gm_lab.probe.probe import default_inputs, probe_architecture, shared_proxies
from gm_lab.probe.record import ProbeConfig
from gm_lab.probe.runner import probe_many, probe_terminals

# Two cells with every TSS operation between them, and a node whose ops cannot reach the output
# (NASWOT's backward filter must drop its ReLU).
ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|avg_pool_3x3~0|skip_connect~1|nor_conv_3x3~2|",
    "|nor_conv_1x1~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|skip_connect~2|",
]


@pytest.fixture(scope="module")
def inputs():
    torch.set_num_threads(1)
    return default_inputs(ProbeConfig())


@pytest.fixture(scope="module")
def full_records(inputs):
    batch, noise = inputs
    return [
        probe_architecture(i, arch, ProbeConfig(), batch, noise) for i, arch in enumerate(ARCHS)
    ]


def test_every_shared_proxy_alone_equals_the_full_probe(inputs, full_records) -> None:
    batch, noise = inputs
    for i, (arch, full) in enumerate(zip(ARCHS, full_records, strict=True)):
        for name in shared_proxies():
            lean = probe_architecture(
                i, arch, ProbeConfig(), batch, noise, proxies=[name], statistics=[]
            )
            assert lean.layer_stats == {}
            np.testing.assert_allclose(
                lean.proxies[name], full.proxies[name], rtol=2e-5, err_msg=f"{name} on {arch}"
            )


def test_statistics_alone_equal_the_full_probe(inputs, full_records) -> None:
    batch, noise = inputs
    names = list(STATISTICS.names())
    for i, (arch, full) in enumerate(zip(ARCHS, full_records, strict=True)):
        lean = probe_architecture(
            i, arch, ProbeConfig(), batch, noise, proxies=[], statistics=names
        )
        assert sorted(lean.layer_stats) == sorted(names)
        for name in names:
            np.testing.assert_allclose(
                lean.layer_stats[name], full.layer_stats[name], rtol=2e-5, atol=1e-12,
                err_msg=name,
            )  # fmt: skip


def test_forward_only_terminals_run_no_backward(inputs, monkeypatch) -> None:
    batch, noise = inputs
    calls: list[str] = []
    real_grad = torch.autograd.grad

    def counting_grad(*args, **kwargs):
        calls.append("grad")
        return real_grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", counting_grad)
    forward_stats = [n for n in STATISTICS.names() if STATISTICS[n].needs <= {"W", "A"}]
    assert forward_stats, "no forward-only statistic registered"
    record = probe_architecture(
        0, ARCHS[0], ProbeConfig(), batch, noise, proxies=["naswot"], statistics=forward_stats
    )
    assert calls == []
    assert "backward" not in record.timings and "noise" not in record.timings
    assert np.isfinite(record.proxies["naswot"])
    backward = probe_architecture(0, ARCHS[0], ProbeConfig(), batch, noise, proxies=["snip"])
    assert calls and "backward" in backward.timings


def test_plan_runs_what_the_terminals_need() -> None:
    assert plan_passes(["naswot"], []).backward is False
    assert plan_passes(["jacov"], []).backward is False  # its own backward, to the input
    assert plan_passes(["snip"], []).backward is True
    assert plan_passes([], ["snip_l"]).backward is True
    assert plan_passes(["zen"], []).noise is True
    assert plan_passes(["naswot"], []).noise is False
    assert terminal_passes(["sed_like"]) == {"proxy_sed_like"}  # data-free: no shared pass
    assert "backward" not in terminal_passes(["naswot", "meco"])
    assert {"backward", "zico"} <= terminal_passes(["zico"])
    with pytest.raises(ValueError, match="unknown terminals"):
        terminal_passes(["no_such_thing"])


def test_probe_terminals_caches_and_reuses(tmp_path, monkeypatch) -> None:
    bench = Benchmark.load("tss")
    config = ProbeConfig()
    cache = ProbeCache(config, root=tmp_path)
    indices = [11, 284, 7000]
    names = ["naswot", "snip_l", "sed_like"]
    probe_terminals(bench, indices, config, names, workers=0, progress=False, cache=cache)
    lazy = cache.load_terminals(indices, names, [bench.arch(i) for i in indices])
    assert lazy.archs == [bench.arch(i) for i in indices]
    assert lazy.proxies["naswot"].shape == (3,) and np.isfinite(lazy.proxies["naswot"]).all()

    def refuse(*_args, **_kwargs):
        raise AssertionError("probed again although everything is cached")

    monkeypatch.setattr(runner, "probe_architecture", refuse)
    monkeypatch.setattr(runner, "score_standalone", refuse)
    probe_terminals(bench, indices, config, names, workers=0, progress=False, cache=cache)
    monkeypatch.undo()

    # Full records, once there, serve every shared terminal; values agree with the columns.
    probe_many(bench, indices[:2], config, workers=0, progress=False, cache=cache)
    both = cache.load_terminals(indices, names)
    expr = parse("naswot + log(sum(snip_l)) + sed_like")
    np.testing.assert_allclose(evaluate(expr, both), evaluate(expr, lazy), rtol=1e-6)
    full = cache.load_arrays(indices[:2], ["sed_like"])
    np.testing.assert_allclose(evaluate(expr, full), evaluate(expr, lazy)[:2], rtol=1e-6)
    assert cache.missing_terminals(["zico"], indices[:2]) == {}  # in the full records
    assert cache.missing_terminals(["zico"], indices) == {"zico": [7000]}


def test_columns_round_trip_vectors_and_ignore_a_torn_line(tmp_path) -> None:
    columns = ProxyColumns(tmp_path)
    vector = np.array([1.5, np.nan, np.inf, -2.0e-300])
    columns.append("snip_l", "shared", {3: vector, 4: np.array([])})
    columns.append("naswot", "shared", {3: 1.25})
    with open(columns.path("snip_l", "shared"), "a") as out:
        out.write("5\t[1.0, 2.")  # torn by a crash
    found = columns.values("snip_l", "shared")
    np.testing.assert_array_equal(found[3], vector)
    assert found[4].shape == (0,) and 5 not in found
    assert columns.values("naswot", "shared") == {3: 1.25}


def test_expression_cost_sums_distinct_passes() -> None:
    costs = PassCosts(
        "tss", "cifar10",
        {"build": 0.01, "prepare": 0.0, "forward": 0.1, "backward": 0.2, "zico": 0.05,
         "proxy_naswot": 0.001, "proxy_zico": 0.002, "proxy_snip": 0.0, "statistic": 0.003},
        reference=0.25, source="test",
    )  # fmt: skip
    assert expression_cost(parse("naswot"), costs) == pytest.approx(0.111)
    assert expression_cost(parse("zico"), costs) == pytest.approx(0.362)
    # Shared passes are paid once: zico + snip adds only snip's own (free) part.
    assert expression_cost(parse("zico + snip"), costs) == pytest.approx(0.362)
    assert expression_cost(parse("sum(snip_l) * sum(grad_norm_l)"), costs) == pytest.approx(0.316)
    assert expression_cost(parse("3.0"), costs) == 0.0
    # A pass never measured counts as one forward+backward, and is named.
    passes = expression_passes(parse("swap"))
    assert costs.unmeasured(passes) == ["proxy_swap"]
    assert costs.of(passes) == pytest.approx(0.25)


def test_pass_costs_come_from_this_machine_once_measured(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GM_LAB_CACHE", str(tmp_path))
    shipped = load_pass_costs("tss", "cifar10")
    assert shipped.source.startswith("shipped")
    assert shipped.reference > 0 and shipped.seconds["backward"] > 0
    assert {f"proxy_{n}" for n in shared_proxies()} <= set(shipped.seconds)
    path = measured_path("tss", "cifar10")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({**shipped.to_json(), "reference": 9.0}))
    mine = load_pass_costs("tss", "cifar10")
    assert mine.reference == 9.0 and mine.source.startswith("measured here")
    path.write_text('{"space": "tss"}')
    with pytest.raises(ValueError, match="not a pass-costs file"):
        load_pass_costs("tss", "cifar10")


def test_every_registered_proxy_has_a_cost_class() -> None:
    for spec in PROXIES.specs():
        assert terminal_passes([spec.name]) >= {f"proxy_{spec.name}"}


def _cli(capsys, *argv: str) -> tuple[int, str]:
    from gm_lab.cli import main

    code = main(list(argv))
    return code, capsys.readouterr().out


def test_score_all_covers_the_whole_space_and_resumes(capsys) -> None:
    from gm_lab.metrics import kendall
    from gm_lab.proxies.sed import sed_like_scores

    bench = Benchmark.load("tss")
    accuracy = bench.accuracy("cifar10")
    code, out = _cli(capsys, "score", "sed_like", "--all", "--workers", "0", "--json")
    assert code == 0
    result = json.loads(out)
    known = np.flatnonzero(np.isfinite(accuracy))
    assert result["n"] == len(known) and result["indices"] == known.tolist()
    assert result["provenance"]["final_test"] == "included"
    scores = sed_like_scores([bench.arch(int(i)) for i in known])
    assert result["kendall"] == pytest.approx(kendall(scores, accuracy[known]))
    assert result["cost"]["passes"] == ["proxy_sed_like"]  # data-free: no network, no data
    code, out = _cli(capsys, "score", "sed_like", "--all", "--workers", "0", "--json")
    assert json.loads(out)["probed"] == 0  # everything cached: resumes, nothing recomputed
    assert _cli(capsys, "score", "sed_like", "--all", "--final-test")[0] == 2


def test_costs_command_prices_expressions_as_the_cost_model(capsys) -> None:
    code, out = _cli(capsys, "costs", "naswot", "zico + snip", "--json")
    assert code == 0
    report = json.loads(out)
    costs = load_pass_costs("tss", "cifar10")
    for row, text in zip(report["expressions"], ["naswot", "zico + snip"], strict=True):
        assert row["seconds_per_arch"] == pytest.approx(expression_cost(parse(text), costs))
        assert row["forward_backward_multiple"] == pytest.approx(
            row["seconds_per_arch"] / costs.reference
        )
    assert "backward" not in report["expressions"][0]["passes"]
    assert _cli(capsys, "costs", "naswot +")[0] == 2  # a malformed expression: the parser's error
