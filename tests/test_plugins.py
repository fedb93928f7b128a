"""The plug-in registries: a user's proxy, statistic or operator works everywhere a built-in does.

Registered from test code exactly as from a notebook (the decorators), and through a real
entry point of a package installed on sys.path (a dist-info folder with entry_points.txt).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from gm_lab.cli import main
from gm_lab.expressions import PSET, Op, evaluate, parse, proxy_names, register_operator
from gm_lab.expressions.primitives import OPS, OPS_BY_NAME, VARIANTS
from gm_lab.plugins import (
    PROXIES,
    STATISTICS,
    Need,
    PluginError,
    ProxyContext,
    register_proxy,
    register_statistic,
)
from gm_lab.plugins.fingerprint import code_digest
from gm_lab.probe.cache import CacheError, ProbeCache, records_to_arrays
from gm_lab.probe.record import ProbeConfig

REPO = Path(__file__).resolve().parents[1]
ARCH = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"
CLASSIC = {"snip", "grad_norm", "naswot", "synflow", "zico", "jacov", "grasp", "meco", "zen"}


@pytest.fixture
def scratch_proxies():
    """Names registered by a test are removed afterwards (PSET keeps a harmless terminal)."""
    before = set(PROXIES.names()) | set(STATISTICS.names())
    yield
    for name in set(PROXIES.names()) - before:
        PROXIES.unregister(name)
    for name in set(STATISTICS.names()) - before:
        STATISTICS.unregister(name)


def _count_convs(arch: str) -> int:
    return arch.count("conv")


def test_engine_and_catalogue_import_without_torch() -> None:
    code = (
        "import sys\n"
        "import gm_lab.expressions, gm_lab.evolution, gm_lab.metrics, gm_lab.plugins\n"
        "from gm_lab.plugins import PROXIES, STATISTICS\n"
        "from gm_lab.expressions import proxy_names, stat_names\n"
        "assert len(PROXIES) >= 15 and len(STATISTICS) >= 40, (len(PROXIES), len(STATISTICS))\n"
        "assert set(proxy_names()) == set(PROXIES) and 'snip' in proxy_names()\n"
        "gm_lab.expressions.parse('log(sum(snip_l)) + naswot')\n"
        "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
        "assert not bad, bad[:5]\n"
        "print('ok')\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]


def test_every_builtin_proxy_declares_needs_sign_reference() -> None:
    specs = PROXIES.specs()
    assert {s.name for s in specs} >= CLASSIC
    for spec in specs:
        assert isinstance(spec.needs, Need) and spec.sign in (1, -1), spec.name
        assert spec.reference and spec.summary, spec.name
        assert spec.module.startswith("gm_lab.proxies."), spec.name  # one file per proxy
    shared = {s.name for s in specs if not s.standalone}
    assert shared >= CLASSIC


def test_registration_errors_are_clear(scratch_proxies) -> None:
    def f(ctx: ProxyContext) -> float:
        return 1.0

    with pytest.raises(PluginError, match="registered twice"):
        register_proxy("snip", needs=Need.BACKWARD, reference="x")(f)
    with pytest.raises(PluginError, match="Need"):
        register_proxy("p1", needs="forward", reference="x")(f)  # type: ignore[arg-type]
    with pytest.raises(PluginError, match="reference"):
        register_proxy("p2", needs=Need.FORWARD, reference="")(f)
    with pytest.raises(PluginError, match="unknown product"):
        register_proxy("p3", needs=Need.FORWARD, reference="x", products="logits")(f)
    with pytest.raises(PluginError, match="identifier"):
        register_proxy("my proxy", needs=Need.FORWARD, reference="x")(f)
    with pytest.raises(PluginError, match="_l"):
        register_statistic("W")(f)
    register_proxy("p4", needs=Need.ARCHITECTURE, reference="x")(f)
    register_proxy("p4", needs=Need.ARCHITECTURE, reference="y", replace=True)(f)
    assert PROXIES["p4"].reference == "y"


def test_a_user_proxy_is_a_terminal_and_is_scored_by_the_probe(scratch_proxies) -> None:
    @register_proxy("conv_count", needs=Need.ARCHITECTURE, reference="test")
    def conv_count(ctx: ProxyContext) -> float:
        """Number of convolutions in the cell."""
        return float(_count_convs(ctx.arch))

    @register_proxy("out_width", needs=Need.FORWARD, reference="test")
    def out_width(ctx: ProxyContext) -> float:
        """Width of the logits of a fresh network on two images."""
        net = ctx.network()
        assert net is not ctx.network()  # a fresh copy each time
        return float(net(ctx.images[:2].contiguous()).shape[1])

    assert "conv_count" in proxy_names() and "conv_count" in PSET.mapping
    tree = parse("conv_count * 2 + out_width")

    from gm_lab.probe import probe_architecture

    record = probe_architecture(
        7, ARCH, ProbeConfig(batch_size=8), proxies=["snip", "conv_count", "out_width"]
    )
    assert record.proxies["conv_count"] == 3.0 and record.proxies["out_width"] == 10.0
    assert evaluate(tree, records_to_arrays([record]))[0] == pytest.approx(16.0)


def test_standalone_values_are_cached_apart_and_never_invalidate_others(scratch_proxies) -> None:
    from gm_lab.benchmark import Benchmark
    from gm_lab.probe.runner import probe_many

    calls: list[str] = []

    @register_proxy("cells_a", needs=Need.ARCHITECTURE, reference="test")
    def cells_a(ctx: ProxyContext) -> float:
        calls.append(ctx.arch)
        return float(ctx.arch.count("skip"))

    bench = Benchmark.load("tss")
    config = ProbeConfig(batch_size=8)
    indices = [0, 11, 284]
    cache = probe_many(bench, indices, config, workers=0, progress=False, proxies=["cells_a"])
    records = {p.name: p.read_bytes() for p in cache.records_dir.iterdir()}
    first = cache.load_arrays(indices, ["cells_a"]).proxies["cells_a"]
    assert list(first) == [float(bench.arch(i).count("skip")) for i in indices]
    assert len(calls) == 3
    assert "cells_a" not in cache.load_arrays(indices).proxies  # records hold shared ones only

    @register_proxy("cells_b", needs=Need.ARCHITECTURE, reference="test")
    def cells_b(ctx: ProxyContext) -> float:
        return float(ctx.arch.count("none"))

    probe_many(bench, indices, config, workers=0, progress=False, proxies=["cells_a", "cells_b"])
    assert len(calls) == 3, "cells_a was cached: adding cells_b recomputes nothing else"
    assert {p.name: p.read_bytes() for p in cache.records_dir.iterdir()} == records
    both = ProbeCache(config).load_arrays(indices, ["cells_a", "cells_b"])
    assert list(both.proxies["cells_a"]) == list(first)
    probe_many(bench, [1], config, workers=0, progress=False, proxies=["cells_a"])
    with pytest.raises(CacheError, match="cells_b: 1 architecture"):
        ProbeCache(config).load_arrays([0, 1], ["cells_b"])  # 1 was never scored by it


def test_a_torn_column_line_counts_as_not_cached(tmp_path) -> None:
    from gm_lab.probe.columns import ProxyColumns

    columns = ProxyColumns(tmp_path)
    columns.append("p", "v1", {1: 0.5, 2: float("nan")})
    with open(columns.path("p", "v1"), "a") as out:
        out.write("3\t0.2")  # a crash mid-line
    assert columns.missing("p", "v1", [1, 2, 3]) == [3]
    columns.append("p", "v1", {3: 0.25})
    values = columns.values("p", "v1")
    assert values[1] == 0.5 and np.isnan(values[2]) and values[3] == 0.25
    assert columns.missing("p", "v2", [1]) == [1]  # another version is another column


def test_user_statistic_and_operator_join_the_language(scratch_proxies) -> None:
    @register_statistic("W")
    def w_count_l(b) -> float:
        """Number of weights (again)."""
        return float(b.W.numel())

    assert "w_count_l" in PSET.mapping
    if not any(op.name == "cube" for op in OPS):
        register_operator(Op("cube", "unary", lambda x: np.power(x, 3), "x³"))
    assert "cube__S" in VARIANTS and "cube__L" in VARIANTS and OPS_BY_NAME["cube"]
    tree = parse("cube(sum(w_count_l))")
    with pytest.raises(PluginError, match="exists"):
        register_operator(Op("cube", "unary", np.abs, "again"))

    from gm_lab.probe import probe_architecture

    record = probe_architecture(7, ARCH, ProbeConfig(batch_size=8), proxies=False)
    assert np.array_equal(record.layer_stats["w_count_l"], record.layer_stats["numel_l"])
    expected = float(record.layer_stats["numel_l"].sum()) ** 3
    assert evaluate(tree, records_to_arrays([record]))[0] == pytest.approx(expected)


def test_gm_lab_score_scores_a_user_proxy(scratch_proxies, capsys) -> None:
    @register_proxy("skip_count", needs=Need.ARCHITECTURE, reference="test")
    def skip_count(ctx: ProxyContext) -> float:
        return float(ctx.arch.count("skip"))

    code = main(["score", "skip_count + 0", "--n", "6", "--sample", "random", "--json",
                 "--batch-size", "8", "--workers", "0"])  # fmt: skip
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    from gm_lab.benchmark import Benchmark

    bench = Benchmark.load("tss")
    assert result["scores"] == [float(bench.arch(i).count("skip")) for i in result["indices"]]


def test_entry_point_plugins_load_and_a_broken_one_is_reported(tmp_path) -> None:
    site = tmp_path / "site"
    (site / "gm_lab_demo_plugin").mkdir(parents=True)
    (site / "gm_lab_demo_plugin" / "__init__.py").write_text(
        textwrap.dedent(
            """
            from gm_lab.plugins import Need, register_proxy

            @register_proxy("demo_depth", needs=Need.ARCHITECTURE, reference="demo, 2026")
            def demo_depth(ctx):
                '''Characters in the architecture string.'''
                return float(len(ctx.arch))
            """
        )
    )
    dist = site / "gm_lab_demo_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: gm-lab-demo-plugin\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(
        "[gm_lab.proxies]\ndemo = gm_lab_demo_plugin\nbroken = gm_lab_no_such_module\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    run = subprocess.run(
        [sys.executable, "-m", "gm_lab.cli", "proxies", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    listing = json.loads(run.stdout)
    demo = next(p for p in listing["proxies"] if p["name"] == "demo_depth")
    assert demo["needs"] == "architecture" and demo["standalone"] and demo["reference"]
    assert "broken" in listing["load_errors"] and "gm_lab_no_such_module" in run.stderr


def test_proxies_command_lists_every_proxy_cheapest_first(capsys) -> None:
    assert main(["proxies", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["proxies"]
    assert {p["name"] for p in listed} == set(PROXIES.names())
    ranks = [list(Need).index(Need(p["needs"])) for p in listed]
    assert ranks == sorted(ranks)
    assert main(["proxies"]) == 0
    table = capsys.readouterr().out
    assert all(name in table for name in PROXIES.names()) and "reference" in table


def test_version_ignores_docstrings_and_layout_but_not_code() -> None:
    base = "def f(x):\n    '''Doc.'''\n    return x + 1  # comment\n"
    same = "def f(x):\n    '''Other words.'''\n\n    return (x +\n            1)\n"
    other = "def f(x):\n    return x + 2\n"
    assert code_digest(base) == code_digest(same) != code_digest(other)


def test_logrank_aggregates_components_as_az_nas_does() -> None:
    """Σ_k log(rank_k / N), ties averaged, as AZ-NAS and VKDNW_agg aggregate their parts."""
    from gm_lab.probe.cache import ProbeArrays

    a, b = np.array([3.0, 1.0, 2.0, 2.0]), np.array([10.0, 40.0, 30.0, 20.0])
    arrays = ProbeArrays(
        indices=np.arange(4),
        archs=["a"] * 4,
        n_layers=np.zeros(4, np.int64),
        mask=np.ones((4, 0), bool),
        layer_stats={},
        proxies={"snip": a, "naswot": b},
    )
    got = evaluate(parse("logrank(snip) + logrank(naswot)"), arrays)
    ranks_a, ranks_b = np.array([4.0, 1.0, 2.5, 2.5]), np.array([1.0, 4.0, 3.0, 2.0])
    assert got == pytest.approx(np.log(ranks_a / 4) + np.log(ranks_b / 4))


def test_notebook_plugins_reach_worker_processes(scratch_proxies) -> None:
    """Spawned probe workers import gm_lab afresh: the parent's own proxy and statistic are
    shipped to them (gm_lab.plugins.shipping), so records and columns match in-process ones."""
    from gm_lab.benchmark import Benchmark
    from gm_lab.probe.runner import probe_many

    @register_proxy("relu_modules", needs=Need.NETWORK, reference="test")
    def relu_modules(ctx: ProxyContext) -> float:
        return float(sum(type(m).__name__ == "ReLU" for m in ctx.network().modules()))

    @register_statistic("W")
    def w_total_l(b) -> float:
        return float(b.W.sum())

    bench = Benchmark.load("tss")
    indices = [11, 284]
    pooled = probe_many(
        bench,
        indices,
        ProbeConfig(batch_size=8),
        workers=2,
        progress=False,
        proxies=["relu_modules"],
    ).load_arrays(indices, ["relu_modules"])
    alone = probe_many(
        bench, indices, ProbeConfig(batch_size=8, seed=1), workers=0, progress=False
    ).load_arrays(indices)
    assert "w_total_l" in pooled.layer_stats and "w_total_l" in alone.layer_stats
    from gm_lab.networks import build_network

    expected = [
        float(
            sum(
                type(m).__name__ == "ReLU"
                for m in build_network("tss", bench.arch(i), 10).modules()
            )
        )
        for i in indices
    ]
    assert list(pooled.proxies["relu_modules"]) == expected


def test_a_user_statistic_gets_records_of_its_own(scratch_proxies) -> None:
    """Every record computes every statistic: a notebook's statistic keys a cache of its own,
    so records without it are never mixed with records with it."""
    before = ProbeConfig()

    @register_statistic("W")
    def w_max_again_l(b) -> float:
        return float(b.W.abs().max())

    with_it = ProbeConfig()
    assert with_it.version.startswith(before.version + "+") and with_it.key() != before.key()
    STATISTICS.unregister("w_max_again_l")
    assert ProbeConfig().key() == before.key()
