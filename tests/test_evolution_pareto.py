"""Accuracy and cost together (`objective="tau+cost"`, NSGA-II) and the terminal sets.

Planted answer: on synthetic architectures a cheap terminal (naswot: one forward) and an
expensive one (grasp: forward, backward and GraSP's second-order pass) both predict accuracy,
the expensive one better. The front must hold a cheap expression that ranks well and an
expensive one that ranks better, every member non-dominated, each with the correlation and cost
its expression really has. No probing: synthetic `ProbeArrays` go straight to the engine.
Then the CLI end to end on the embedded default data (4 architectures, batch 8).
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from gm_lab import metrics
from gm_lab.evolution import (
    Engine,
    EngineState,
    FitnessFunction,
    Search,
    SearchConfig,
    SearchConfigError,
    SearchResult,
    Split,
    build_toolbox,
    load_checkpoint,
    search_random,
)
from gm_lab.evolution.pareto import CostFunction, is_non_dominated
from gm_lab.expressions import parse, proxy_names, simplify, stat_names, to_text
from gm_lab.expressions.cost import (
    SHIPPED,
    PassCosts,
    expression_cost,
    expression_terminals,
)
from gm_lab.probe.cache import ProbeArrays

CHEAP, EXPENSIVE = "naswot", "grasp"


def synthetic_split(config: SearchConfig, n: int, seed: int, role: str) -> Split:
    """n synthetic architectures: accuracy is a latent quality; `grasp` measures it with little
    noise, `naswot` with more; every other terminal is log-normal noise."""
    rng = np.random.default_rng(seed)
    max_layers = 6
    n_layers = rng.integers(3, max_layers + 1, size=n)
    mask = np.arange(max_layers)[None, :] < n_layers[:, None]
    layer_stats = {
        name: np.where(mask, rng.lognormal(0.0, 1.0, (n, max_layers)), np.nan)
        for name in stat_names()
    }
    latent = rng.normal(0.0, 1.0, n)
    proxies = {name: rng.lognormal(0.0, 1.0, n) for name in config.proxies}
    proxies[EXPENSIVE] = np.exp(latent + rng.normal(0.0, 0.05, n))
    proxies[CHEAP] = np.exp(latent + rng.normal(0.0, 0.5, n))
    arrays = ProbeArrays(
        indices=np.arange(n, dtype=np.int64),
        archs=[f"synthetic-{i}" for i in range(n)],
        n_layers=n_layers.astype(np.int64),
        mask=mask,
        layer_stats=layer_stats,
        proxies=proxies,
    )
    return Split("synthetic", role, arrays, 80.0 + latent)  # type: ignore[arg-type]


def synthetic_costs() -> PassCosts:
    """Every pass cheap except the backward (2 forwards) and GraSP's pass (20 forwards)."""
    seconds = {"build": 0.001, "prepare": 0.001, "forward": 0.01, "backward": 0.02}
    seconds |= {"grasp": 0.2, "jacobian": 0.02, "noise": 0.01, "zen": 0.01, "zico": 0.01}
    seconds |= {"statistic": 0.0001} | {f"proxy_{name}": 0.0001 for name in proxy_names()}
    return PassCosts("tss", "synthetic", seconds, reference=0.03, source="the test's own")


def run_engine(config: SearchConfig, split: Split, costs: PassCosts | None = None) -> Engine:
    state = EngineState.new(config)
    fitness = FitnessFunction([split], cache=state.fitness_cache)
    cost = CostFunction(costs) if costs is not None else None
    engine = Engine(config, fitness, state, yield_gil=False, cost=cost)
    while state.generation < config.gens:
        engine.advance()
    return engine


def test_front_holds_a_cheap_good_proxy_and_an_expensive_better_one() -> None:
    config = SearchConfig(pop=60, gens=12, objective="tau+cost", terminals="proxies")
    split = synthetic_split(config, 150, seed=1, role="search")
    costs = synthetic_costs()
    cheap_tau = metrics.kendall(split.arrays.proxies[CHEAP], split.truth)
    best_tau = metrics.kendall(split.arrays.proxies[EXPENSIVE], split.truth)
    assert 0.6 < cheap_tau < 0.8 < 0.9 < best_tau  # both predict, the expensive one better
    cheap_cost = expression_cost(parse(CHEAP), costs)
    expensive_cost = expression_cost(parse(EXPENSIVE), costs)
    assert cheap_cost == pytest.approx(0.0121) and expensive_cost == pytest.approx(0.2321)

    engine = run_engine(config, split, costs)
    front = engine.state.pareto_front
    points = [tuple(i.fitness.values) for i in front]
    assert len(front) >= 2 and is_non_dominated(points)
    assert points == sorted(points, key=lambda p: p[1])  # cheapest first, τ rising with cost
    assert all(a[0] < b[0] for a, b in itertools.pairwise(points))
    for member in front:  # the stored values are the expression's real τ and cost
        tau = metrics.kendall(split.scores(simplify(member)), split.truth, nan_policy="worst")
        assert member.fitness.values[0] == pytest.approx(tau, abs=1e-12)
        assert member.fitness.values[1] == pytest.approx(expression_cost(simplify(member), costs))
    # nothing the final population holds dominates a front member
    for individual in engine.state.population:
        assert not any(individual.fitness.dominates(m.fitness) for m in front)

    cheap = [m for m in front if m.fitness.values[1] <= cheap_cost + 1e-12]
    assert cheap and max(m.fitness.values[0] for m in cheap) >= cheap_tau - 1e-12
    assert any(CHEAP in expression_terminals(m) for m in cheap), [to_text(m) for m in cheap]
    top = front[-1]
    assert top.fitness.values[0] >= best_tau - 1e-12 and EXPENSIVE in expression_terminals(top)
    assert top.fitness.values[1] >= expensive_cost - 1e-12


def test_single_objective_ignores_costs_and_keeps_no_front() -> None:
    config = SearchConfig(pop=20, gens=2, terminals="proxies")
    split = synthetic_split(config, 60, seed=3, role="search")
    engine = run_engine(config, split, synthetic_costs())
    assert engine.cost is None and engine.state.pareto_front == []
    assert all(i.fitness.values[1] == len(i) for i in engine.state.population)  # (τ, size)
    with pytest.raises(ValueError, match="needs a cost function"):
        run_engine(config.with_changes(objective="tau+cost"), split)


@pytest.mark.parametrize("terminals", ["stats", "proxies", "all"])
def test_terminal_sets_restrict_what_evolution_uses(terminals: str) -> None:
    config = SearchConfig(pop=40, gens=4, terminals=terminals, seed=2)
    split = synthetic_split(config, 40, seed=4, role="search")
    engine = run_engine(config, split)
    toolbox = build_toolbox(config)
    with search_random(engine.state.rng):  # fresh trees and every mutation operator
        trees = toolbox.population(200)
        for tree in list(trees):
            for mutate in toolbox.mutations.values():
                trees.append(mutate(toolbox.clone(tree))[0])
    trees += engine.state.population + list(engine.state.hall_of_fame)
    used = {name for tree in trees for name in expression_terminals(tree)}
    stats, proxies = used & set(stat_names()), used & set(proxy_names())
    if terminals == "stats":
        assert proxies == set() and len(stats) > 20
    elif terminals == "proxies":
        assert stats == set() and len(proxies) > 10
    else:
        assert len(stats) > 20 and len(proxies) > 10


def test_config_checks_objective_and_terminals_and_old_configs_load() -> None:
    with pytest.raises(SearchConfigError, match="objective 'cost' must be one of tau, tau\\+cost"):
        SearchConfig(objective="cost")  # type: ignore[arg-type]
    with pytest.raises(SearchConfigError, match="terminals 'some' must be one of all, stats"):
        SearchConfig(terminals="some")  # type: ignore[arg-type]
    stored = SearchConfig(objective="tau+cost", terminals="stats").to_dict()
    assert SearchConfig.from_dict(stored).objective == "tau+cost"
    old = {k: v for k, v in stored.items() if k not in ("objective", "terminals")}
    config = SearchConfig.from_dict(old)
    assert (config.objective, config.terminals) == ("tau", "all")
    assert SearchConfig(terminals="stats").terminal_proxies == ()


# ---- the CLI, end to end on the embedded default -------------------------------------------------
TINY = ["--dataset", "ImageNet16-120", "--sample", "random", "--n", "4", "--heldout-n", "3"]
PROBE = ["--batch-size", "8", "--workers", "0"]


def gm_lab(*argv: str) -> tuple[int, str, str]:
    """`gm-lab ARGV` in this process: exit status, stdout, stderr."""
    from gm_lab.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse refusals
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run's cache; while gm_lab ships no pass costs, it holds measured-looking ones."""
    root = tmp_path_factory.mktemp("pareto-cache")
    if not SHIPPED.is_file():
        measured = root / "costs" / "tss-ImageNet16-120.json"
        measured.parent.mkdir(parents=True)
        data = synthetic_costs().to_json() | {"dataset": "ImageNet16-120"}
        measured.write_text(json.dumps(data))
    return root


@pytest.fixture(autouse=True)
def _shared_cache(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GM_LAB_CACHE", str(cache))


def test_evolve_tau_cost_prints_and_saves_the_front_and_resumes_with_it(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    run = ["evolve", *TINY, *PROBE, "--pop", "8", "--objective", "tau+cost"]
    code, out, err = gm_lab(
        *run, "--terminals", "proxies", "--gens", "2", "--checkpoint", str(folder)
    )
    assert code == 0, err
    assert "objective tau+cost" in out and "terminals proxies" in out
    assert "Pareto front: τ on the search sample vs cost per architecture" in out
    assert "classic proxies (reference):" in out and "front " in out  # generation lines too
    result = SearchResult.load(folder / "result.json")
    assert result.config.objective == "tau+cost" and result.config.terminals == "proxies"
    front = result.pareto_front
    assert front and is_non_dominated([(r.fitness, r.cost) for r in front])
    reference = result.costs["reference"]
    assert reference > 0 and result.costs["source"]
    for report in front:  # proxies only, priced by the costs the result records
        assert not set(expression_terminals(report.tree)) & set(stat_names())
        assert report.cost_ratio == pytest.approx(report.cost / reference)
        assert report.search_kendall == pytest.approx(report.fitness, abs=1e-12)
        assert report.heldout_kendall is not None
    assert all(r.cost is not None for r in result.classic)

    code, out, err = gm_lab("evolve", "--resume", str(folder), "--gens", "3", "--json")
    assert code == 0, err
    resumed = json.loads(out)
    assert resumed["config"]["objective"] == "tau+cost" and resumed["generation"] == 3
    assert resumed["config"]["terminals"] == "proxies"
    assert resumed["pareto_front"] and resumed["costs"]["reference"] == reference
    assert load_checkpoint(folder).costs["reference"] == reference
    events = load_checkpoint(folder).history
    assert [len(e.front) > 0 for e in events] == [True] * 4
    # and the resumed front is the one an uninterrupted run reaches
    config = SearchConfig.from_dict(resumed["config"]).with_changes(checkpoint_dir=None)
    whole = Search(config).run().to_dict()
    assert [r["expr"] for r in whole["pareto_front"]] == [
        r["expr"] for r in resumed["pareto_front"]
    ]


def test_evolve_single_objective_json_has_no_front() -> None:
    code, out, err = gm_lab("evolve", *TINY, *PROBE, "--pop", "4", "--gens", "1", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert "pareto_front" not in result and result["config"]["objective"] == "tau"
    assert "cost_seconds" not in result["best"]


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--objective", "cost", "argument --objective: invalid choice: 'cost'"),
        ("--terminals", "layers", "argument --terminals: invalid choice: 'layers'"),
    ],
)
def test_unknown_objective_or_terminal_set_is_refused(option: str, value: str, message: str):
    code, out, err = gm_lab("evolve", option, value)
    assert code == 2 and out == "" and message in err


def test_dashboard_draws_the_live_front_and_the_classic_proxies() -> None:
    import vl_convert

    from gm_lab.widgets import SearchDashboard
    from gm_lab.widgets.vega import with_rows

    config = SearchConfig(
        datasets=("ImageNet16-120",), sample="random", n_search=4, n_heldout=3, batch_size=8,
        workers=0, pop=8, gens=2, objective="tau+cost",
    )  # fmt: skip
    search = Search(config)
    dashboard = SearchDashboard(search, interval=0.05)
    assert dashboard.pareto is not None and dashboard.pareto.rows == []
    dashboard.start()
    search.wait(timeout=300)
    dashboard.throttle.flush()
    rows = dashboard.pareto.rows
    front = [r for r in rows if r["layer"] == "front"]
    assert [r["expr"] for r in front] == [p["expr"] for p in search.history[-1].front]
    assert [r["fitness"] for r in front] == [p["fitness"] for p in search.history[-1].front]
    classic = {r["expr"]: r for r in rows if r["layer"] == "classic"}
    assert {"naswot", "snip", "grasp"} <= set(classic)
    assert classic["grasp"]["cost"] == pytest.approx(search.cost(parse("grasp")))
    assert classic["grasp"]["cost"] > classic["naswot"]["cost"]
    svg = vl_convert.vegalite_to_svg(with_rows(dashboard.pareto.spec, rows))
    assert "naswot" in svg and "seconds per architecture" in svg
    dashboard.close()
    single = SearchDashboard(config.with_changes(objective="tau"))
    assert single.pareto is None
    single.close()
