"""What a run used (gm_lab.energy; issue #18 §6) and what a proxy costs next to its τ (§1).

The meter: the estimate is CPU seconds x the stated watts; child processes' CPU counts; RAPL
counters (a fake powercap folder) give measured joules across a wrap-around. The commands:
`gm-lab probe` and `gm-lab evolve` on the embedded default (ImageNet16-120, 16x16 inputs, a few
architectures at batch 8) end with the usage line, carry `usage` in JSON, and evolve prices its
best expression as the cost module does. The widgets show that same cost next to τ.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gm_lab import energy
from gm_lab.cli import main
from gm_lab.cli.rerun import compare
from gm_lab.energy import Energy, EnergyMeter, RaplCounter, Usage
from gm_lab.expressions import parse, proxy_names, stat_names
from gm_lab.expressions.cost import expression_cost, load_pass_costs
from gm_lab.widgets.cost import cost_text

TINY = ["--dataset", "ImageNet16-120", "--sample", "random", "--n", "4", "--seed", "0"]
PROBE = ["--batch-size", "8", "--workers", "0"]
EVOLVE = ["evolve", *TINY, "--heldout-n", "0", "--pop", "4", "--gens", "1", *PROBE]


def burn(seconds: float) -> None:
    """Spend `seconds` of CPU time in this process."""
    import time

    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def run(*argv: str) -> tuple[int, str, str]:
    """`gm-lab ARGV` in this process: exit status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def fake_powercap(root: Path, zones: dict[str, tuple[int, int]]) -> Path:
    """A powercap folder: zone name -> (energy_uj, max_energy_range_uj)."""
    for name, (value, top) in zones.items():
        zone = root / name
        zone.mkdir(parents=True, exist_ok=True)
        (zone / "energy_uj").write_text(f"{value}\n")
        (zone / "max_energy_range_uj").write_text(f"{top}\n")
        (zone / "name").write_text("package-0\n" if name.count(":") == 1 else "core\n")
    return root


def set_energy(root: Path, name: str, value: int) -> None:
    (root / name / "energy_uj").write_text(f"{value}\n")


# ---- the meter ----------------------------------------------------------------------------------
def test_estimate_is_cpu_seconds_times_the_stated_watts(tmp_path: Path) -> None:
    with EnergyMeter(powercap_root=tmp_path / "no-powercap") as meter:
        burn(0.3)
    usage = meter.usage
    assert usage is not None and usage.cpu_s >= 0.3 and usage.wall_s >= 0.3
    assert usage.energy.method == "estimate"
    assert usage.energy.joules == pytest.approx(usage.cpu_s * 10.0, rel=1e-9)
    assert "10 W per busy CPU core" in usage.energy.assumption
    record = usage.to_dict()
    assert set(record) == {"wall_s", "cpu_s", "energy"}
    assert set(record["energy"]) == {"joules", "method", "assumption"}
    assert "≈ " in usage.line() and "(estimate: 10 W per busy CPU core" in usage.line()

    other = EnergyMeter(powercap_root=tmp_path, watts_per_core=25.0).start()
    burn(0.1)
    usage = other.stop()
    assert usage.energy.joules == pytest.approx(usage.cpu_s * 25.0, rel=1e-9)
    assert "25 W per busy CPU core" in usage.energy.assumption


def test_child_processes_cpu_counts() -> None:
    code = "import time\nend = time.process_time() + 0.5\nwhile time.process_time() < end: pass"
    meter = EnergyMeter().start()
    subprocess.run([sys.executable, "-c", code], check=True)
    usage = meter.stop()
    assert usage.cpu_s >= 0.5  # the child's 0.5 s (plus its start-up), not only ours


def test_rapl_counters_give_measured_joules_across_a_wrap_around(tmp_path: Path) -> None:
    top = 262_143_328_850
    root = fake_powercap(
        tmp_path,
        {
            "intel-rapl:0": (1_000_000, top),
            "intel-rapl:0:0": (500_000, top),  # a sub-zone: inside package 0, not added again
            "intel-rapl:1": (top - 2_000_000, top),  # wraps during the run
        },
    )
    meter = EnergyMeter(powercap_root=root).start()
    set_energy(root, "intel-rapl:0", 4_500_000)  # +3.5 J
    set_energy(root, "intel-rapl:0:0", 9_000_000)
    set_energy(root, "intel-rapl:1", 1_000_000)  # 2 J to the top, then 1 J: +3 J
    usage = meter.stop()
    assert usage.energy.method == "rapl"
    assert usage.energy.joules == pytest.approx(6.5)
    assert "intel-rapl:0, intel-rapl:1" in usage.energy.assumption
    assert "every process on the machine" in usage.energy.assumption
    assert "(measured: RAPL" in usage.line() and "6.5 J" in usage.line()


def test_rapl_readings_between_start_and_stop_catch_every_wrap(tmp_path: Path) -> None:
    root = fake_powercap(tmp_path, {"intel-rapl:0": (900, 1000)})
    counter = RaplCounter.find(root)
    assert counter is not None
    counter.start()
    for value in (100, 950, 200):  # wraps twice: +200, +850, +250 µJ
        set_energy(root, "intel-rapl:0", value)
        counter.update()
    assert counter.joules() == pytest.approx(1300e-6)


def test_no_readable_counter_falls_back_to_the_estimate(tmp_path: Path) -> None:
    zone = tmp_path / "intel-rapl:0"
    zone.mkdir()
    (zone / "max_energy_range_uj").write_text("1000\n")  # energy_uj absent (as if unreadable)
    assert RaplCounter.find(tmp_path) is None
    assert RaplCounter.find(tmp_path / "absent") is None
    usage = EnergyMeter(powercap_root=tmp_path).start().stop()
    assert usage.energy.method == "estimate"


def test_rerun_ignores_usage_but_not_results() -> None:
    def result(seconds: float) -> dict:
        usage = Usage(seconds, seconds, Energy(10 * seconds, "estimate", "10 W"))
        return {"best": {"kendall": 0.5}, "usage": usage.to_dict()}

    rows = compare(result(1.0), result(9.0), tolerance=0.0)
    assert [r.field for r in rows] == ["best.kendall"] and rows[0].match


# ---- the commands -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("energy-cache")


@pytest.fixture(autouse=True)
def _shared_cache(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One probe cache for the module; no powercap, so the estimate runs everywhere."""
    monkeypatch.setenv("GM_LAB_CACHE", str(cache))
    monkeypatch.setattr(energy, "POWERCAP_ROOT", tmp_path / "no-powercap")


USED = re.compile(
    r"used (\d+\.\d) s wall, (\d+\.\d) s CPU \(this process and its workers\), ≈ [\d.,]+ J "
    r"\(estimate: 10 W per busy CPU core"
)


def test_probe_ends_with_the_time_and_energy_it_used() -> None:
    code, out, err = run("probe", *TINY, *PROBE)
    assert code == 0, err
    assert "probed 4, reused 0 of 4 architectures" in out
    used = USED.search(out.splitlines()[-1])
    assert used, out
    assert float(used.group(2)) > 0


def test_evolve_json_carries_usage_and_the_best_proxys_cost() -> None:
    code, out, err = run(*EVOLVE, "--json")
    assert code == 0, err
    result = json.loads(out)
    usage = result["usage"]
    assert usage["cpu_s"] > 0 and usage["wall_s"] > 0
    assert usage["energy"]["method"] == "estimate"
    assert usage["energy"]["joules"] == pytest.approx(usage["cpu_s"] * 10.0, rel=1e-9)
    assert "10 W per busy CPU core" in usage["energy"]["assumption"]
    assert USED.search(err)  # the usage line goes to stderr with --json

    costs = load_pass_costs("tss", "ImageNet16-120")
    seconds = expression_cost(parse(result["best"]["expr"]), costs)
    cost = result["best_cost"]
    assert cost["seconds_per_arch"] == pytest.approx(seconds, rel=1e-12)
    assert cost["forward_backward_multiple"] == pytest.approx(seconds / costs.reference)
    assert cost["source"] == costs.source


def test_evolve_prints_the_best_proxys_use_time_cost_and_usage(tmp_path: Path) -> None:
    saved = tmp_path / "result.json"
    code, out, err = run(*EVOLVE, "--save", str(saved))
    assert code == 0, err
    lines = out.splitlines()
    best = lines[lines.index(next(x for x in lines if x.startswith("best expression"))) + 1]
    at = lines.index("its cost per architecture at use time:")
    costs = load_pass_costs("tss", "ImageNet16-120")
    seconds = expression_cost(parse(best.strip()), costs)
    shown = lines[at + 1]
    assert shown.startswith(f"  {seconds:.3f} s/arch = {seconds / costs.reference:.2f} x one")
    assert costs.source in shown
    assert USED.search(lines[-1]), lines[-1]
    result = json.loads(saved.read_text())  # the saved result has them too
    assert result["usage"]["cpu_s"] > 0 and result["best_cost"]["seconds_per_arch"] == seconds

    # gm-lab rerun repeats it: usage differs run to run and is not compared
    code, out, err = run("rerun", str(saved))
    assert code == 0, out + err
    assert "usage" not in out


# ---- the widgets --------------------------------------------------------------------------------
def synthetic_split(n: int = 12, seed: int = 0, dataset: str = "cifar10"):
    """n synthetic architectures of CIFAR-10 (no probing: the cost does not depend on them)."""
    from gm_lab.evolution import Split
    from gm_lab.probe.cache import ProbeArrays

    rng = np.random.default_rng(seed)
    layers = 4
    mask = np.ones((n, layers), dtype=bool)
    arrays = ProbeArrays(
        indices=np.arange(n, dtype=np.int64),
        archs=["|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|avg_pool_3x3~2|"] * n,
        n_layers=np.full(n, layers, dtype=np.int64),
        mask=mask,
        layer_stats={s: rng.lognormal(0.0, 1.0, (n, layers)) for s in stat_names()},
        proxies={p: rng.lognormal(0.0, 1.0, n) for p in proxy_names()},
    )
    return Split(dataset, "heldout", arrays, rng.uniform(80.0, 90.0, n))  # type: ignore[arg-type]


def test_explorer_shows_each_expressions_cost_next_to_its_tau() -> None:
    from gm_lab.widgets.explorer import ProxyExplorer

    costs = load_pass_costs("tss", "cifar10")
    explorer = ProxyExplorer([synthetic_split()], expression="mean(snip_l)", baseline="synflow")
    expected = cost_text(expression_cost(parse("mean(snip_l)"), costs), costs)
    shown = explorer.scores.value
    assert expected in shown and f"{explorer.scatter.kendall:.3f}" in shown
    assert shown.index("τ =") < shown.index(expected) < shown.index("ρ =")
    assert costs.source in shown  # the tooltip says where the figures come from
    synflow = cost_text(expression_cost(parse("synflow"), costs), costs)
    assert synflow in explorer.baseline_scores.value

    explorer.editor.proposal = {"text": "mean(grad_norm_l) + grasp", "seq": 1}  # an edit
    expected = cost_text(expression_cost(parse("mean(grad_norm_l) + grasp"), costs), costs)
    assert expected in explorer.scores.value
    seconds = expression_cost(parse("mean(grad_norm_l) + grasp"), costs)
    assert expected == f"{seconds:.2f} s/arch ({seconds / costs.reference:.2f} × fwd+bwd)"


def test_dashboard_shows_the_best_expressions_cost_next_to_its_tau() -> None:
    from gm_lab.evolution import Search, SearchConfig
    from gm_lab.widgets.dashboard import SearchDashboard

    config = SearchConfig(
        datasets=("ImageNet16-120",), sample="random", n_search=4, n_heldout=0, pop=4, gens=1,
        batch_size=8, workers=0,
    )  # fmt: skip
    search = Search(config)
    result = search.run()
    dashboard = SearchDashboard(search)
    dashboard._show_best(result.best.expr)
    costs = load_pass_costs("tss", "ImageNet16-120")
    expected = cost_text(expression_cost(parse(result.best.expr), costs), costs)
    shown = dashboard.best_score.value
    assert f"τ {dashboard.scatter.kendall:.3f}" in shown and expected in shown
    dashboard.close()
