"""Zero-cost NAS with hardware limits (`gm-lab nas`, gm_lab.nas.protocol, Benchmark.hardware).

The protocol on planted data (a proxy equal to accuracy is the oracle; random picks average the
pool; limits hold in every pick; seeds repeat; runs are independent draws), the command end to
end with data-free proxies on the embedded table (no probe), the probe path's plumbing with the
cache stubbed, one data-tier run on the real table, and every bad input.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from gm_lab.benchmark import Benchmark, HardwareDataError
from gm_lab.cli import main
from gm_lab.nas import NO_PICK, ORACLE, RANDOM, ProtocolError, draw, pick_best, run_protocol
from gm_lab.proxies.sed import sed_like_scores


# ---- planted data ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def planted() -> SimpleNamespace:
    """2,000 architectures: accuracy, a latency loosely tied to it, a noisy proxy."""
    rng = np.random.default_rng(7)
    accuracy = rng.uniform(10, 95, 2000)
    latency = rng.uniform(0.5, 10, 2000) + accuracy / 20
    noisy = accuracy + rng.normal(0, 15, 2000)
    return SimpleNamespace(accuracy=accuracy, latency=latency, noisy=noisy)


def test_a_proxy_equal_to_accuracy_picks_the_oracle(planted) -> None:
    result = run_protocol(
        {"perfect": planted.accuracy, "noisy": planted.noisy}, planted.accuracy, 100, 50, seed=3
    )
    perfect, oracle = result.methods["perfect"], result.methods[ORACLE]
    np.testing.assert_array_equal(perfect.picks, oracle.picks)
    for run, cands in enumerate(result.draws.candidates):
        assert oracle.accuracy[run] == planted.accuracy[cands].max()
    summary = result.summary()
    assert summary["perfect"]["mean"] == summary[ORACLE]["mean"]
    # a noisy proxy sits between random and the oracle
    assert summary[RANDOM]["mean"] < summary["noisy"]["mean"] < summary[ORACLE]["mean"]
    assert list(result.methods) == ["perfect", "noisy", RANDOM, ORACLE]


def test_random_baseline_averages_the_pool(planted) -> None:
    result = run_protocol({}, planted.accuracy, 50, 2000, seed=0)
    random = result.methods[RANDOM].accuracy
    # E[random pick] = E[pool mean] = space mean; 2,000 runs put it within 4 standard errors
    assert abs(random.mean() - planted.accuracy.mean()) < 4 * stats.sem(random)
    assert abs(random.mean() - result.pool_accuracy.mean()) < 4 * stats.sem(random)
    assert abs(result.pool_accuracy.mean() - planted.accuracy.mean()) < 0.3
    assert result.summary()[RANDOM]["std"] == pytest.approx(np.std(random, ddof=1))


def test_every_pick_meets_the_limit(planted) -> None:
    allowed = planted.latency <= 4.0
    assert 0.1 < allowed.mean() < 0.5
    result = run_protocol(
        {"noisy": planted.noisy, "perfect": planted.accuracy},
        planted.accuracy,
        100,
        200,
        seed=1,
        allowed=allowed,
        figures={"latency_ms": planted.latency},
    )
    for name, method in result.methods.items():
        picked = method.picks[method.picks != NO_PICK]
        assert len(picked) == method.n_picked == 200, name  # 100 draws always hold a candidate
        assert allowed[picked].all(), name
        assert (method.figures["latency_ms"] <= 4.0).all(), name
    for drawn, cands in zip(result.draws.drawn, result.draws.candidates, strict=True):
        np.testing.assert_array_equal(cands, drawn[allowed[drawn]])  # order kept, all kept
    # the best under the limit is worse than the best without it (accuracy raises latency)
    free = run_protocol({}, planted.accuracy, 100, 200, seed=1)
    assert result.summary()[ORACLE]["mean"] < free.summary()[ORACLE]["mean"]


def test_seeds_repeat_and_differ(planted) -> None:
    scores = {"noisy": planted.noisy}
    one = run_protocol(scores, planted.accuracy, 100, 20, seed=5)
    again = run_protocol(scores, planted.accuracy, 100, 20, seed=5)
    other = run_protocol(scores, planted.accuracy, 100, 20, seed=6)
    for name in one.methods:
        np.testing.assert_array_equal(one.methods[name].picks, again.methods[name].picks)
    assert not np.array_equal(one.methods["noisy"].picks, other.methods["noisy"].picks)
    # run r's draw depends on (seed, r) alone, not on how many runs there are
    few = draw(np.arange(2000), 100, 3, seed=5)
    for r in range(3):
        np.testing.assert_array_equal(few.drawn[r], one.draws.drawn[r])


def test_runs_are_independent_draws() -> None:
    pool, n, runs = np.arange(2000), 100, 400
    draws = draw(pool, n, runs, seed=0)
    for drawn in draws.drawn:
        assert len(np.unique(drawn)) == n and np.isin(drawn, pool).all()  # without replacement
    overlaps = [len(np.intersect1d(draws.drawn[r], draws.drawn[r + 1])) for r in range(runs - 1)]
    # two independent draws share a hypergeometric number of architectures: mean n * n / N = 5
    expected = stats.hypergeom(len(pool), n, n).mean()
    assert expected == 5.0
    assert abs(np.mean(overlaps) - expected) < 4 * stats.sem(overlaps)
    # each architecture is drawn about runs * n / N = 20 times, as a binomial count
    counts = np.bincount(np.concatenate(draws.drawn), minlength=len(pool))
    assert abs(counts.mean() - 20) < 1e-9 and 2 < counts.var() < 40
    assert set(draws.needed()) == set(np.concatenate(draws.drawn))


def test_failed_scores_rank_worst_and_runs_without_candidates_have_no_pick() -> None:
    scores = np.array([np.nan, 1.0, -np.inf, 3.0, np.inf])
    cands = [np.array([0, 1, 2]), np.array([4, 0, 2]), np.array([3, 4]), np.array([], dtype=int)]
    np.testing.assert_array_equal(pick_best(scores, cands), [1, 4, 3, NO_PICK])
    accuracy = np.array([50.0, 60.0, 70.0, 80.0, 90.0])
    allowed = np.array([True, False, False, False, False])
    result = run_protocol({"s": scores}, accuracy, 1, 40, seed=0, allowed=allowed)
    hits = [r for r in range(40) if result.draws.drawn[r][0] == 0]
    assert 0 < len(hits) < 40
    assert result.methods["s"].n_picked == len(hits) == result.summary()["s"]["runs_with_pick"]
    assert result.summary()["s"]["mean"] == 50.0
    entry = result.per_run()[next(r for r in range(40) if r not in hits)]
    assert entry["candidates"] == 0 and entry["picks"]["s"]["index"] is None


def test_protocol_refuses_bad_arguments(planted) -> None:
    with pytest.raises(ProtocolError, match="larger than the space"):
        draw(np.arange(10), 11, 1)
    with pytest.raises(ProtocolError, match="runs must be at least 1"):
        draw(np.arange(10), 5, 0)
    with pytest.raises(ProtocolError, match="built-in method"):
        run_protocol({"oracle": planted.accuracy}, planted.accuracy, 10, 2)
    with pytest.raises(ProtocolError, match="entries"):
        run_protocol({"x": planted.accuracy[:5]}, planted.accuracy, 10, 2)


# ---- the benchmark's hardware figures ------------------------------------------------------------
@pytest.fixture(scope="module")
def tss() -> Benchmark:
    return Benchmark.load("tss", progress=False)


def test_hardware_figures_of_the_embedded_table(tss: Benchmark) -> None:
    assert tss.hardware_devices("cifar10") == [
        "edgegpu",
        "raspi4",
        "pixel3",
        "edgetpu",
        "eyeriss",
        "fpga",
    ]
    assert tss.hardware_devices("cifar100", "energy") == ["edgegpu", "eyeriss", "fpga"]
    assert tss.hardware("cifar10", "edgegpu")[0] == pytest.approx(5.80742)
    assert tss.hardware("cifar10", "edgegpu", "energy")[0] == pytest.approx(24.2266)
    assert tss.hardware("ImageNet16-120", "fpga", "energy")[0] == pytest.approx(4.54384)
    edgetpu = tss.hardware("cifar10", "edgetpu")  # HW-NAS-Bench's -1: not measured
    assert np.isnan(edgetpu).sum() == 4699 and np.nanmin(edgetpu) > 0


def test_hardware_errors_say_what_exists(tss: Benchmark) -> None:
    with pytest.raises(HardwareDataError, match="unknown device 'tpu'; HW-NAS-Bench devices"):
        tss.hardware("cifar10", "tpu")
    with pytest.raises(HardwareDataError, match=r"no energy of raspi4 .* edgegpu, eyeriss, fpga"):
        tss.hardware("cifar10", "raspi4", "energy")
    with pytest.raises(HardwareDataError, match="unknown hardware metric"):
        tss.hardware("cifar10", "edgegpu", "power")
    plain = tss.table.drop(columns=[c for c in tss.table.columns if c.startswith("hw_")])
    bare = Benchmark(plain, "tss", source="imported.csv")  # as imported from the official folder
    assert bare.hardware_devices("cifar10") == []
    with pytest.raises(HardwareDataError, match="latency columns need the full table, set GM_LAB"):
        bare.hardware("cifar10", "edgegpu")


# ---- the command ---------------------------------------------------------------------------------
def nas(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`gm-lab nas ARGS` in this process: exit code, stdout, stderr."""
    try:
        code = main(["nas", *args])
    except SystemExit as exc:  # argparse refusing an argument
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


DATA_FREE = ("--baselines", "random,params,oracle")


def _expected_picks(tss: Benchmark, n: int, runs: int, seed: int, limit: float) -> dict:
    """The protocol redone here from the table: draws, limit, picks of sed_like/params/oracle."""
    accuracy = tss.accuracy("cifar10")
    latency = pd.to_numeric(tss.table["hw_edgegpu_latency_cifar10"]).to_numpy()
    sed = sed_like_scores(tss.archs)
    params = tss.table["params_cifar10"].to_numpy(dtype=float)
    picks: dict[str, list[int]] = {"sed_like": [], "params": [], ORACLE: []}
    for run in range(runs):
        drawn = np.random.default_rng([seed, run]).choice(15625, n, replace=False)
        cands = drawn[latency[drawn] <= limit]
        for name, score in (("sed_like", sed), ("params", params), (ORACLE, accuracy)):
            values = np.where(np.isfinite(score[cands]), score[cands], -np.inf)
            picks[name].append(int(cands[np.argmax(values)]))
    return picks


def test_cli_data_free_proxy_under_a_latency_limit(capsys, tss: Benchmark) -> None:
    code, out, err = nas(
        capsys,
        *("--proxy", "sed_like", "--n", "100", "--runs", "10", "--max-latency-ms", "5"),
        *(*DATA_FREE, "--json"),
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["order"] == ["sed_like", RANDOM, "params", ORACLE]
    assert result["probe"] is None and result["provenance"]["probe_version"] is None
    assert result["provenance"]["command"][:2] == ["gm-lab", "nas"]
    assert result["provenance"]["data"]["origin"] == "embedded default"
    assert result["provenance"]["seeds"] == {"draw": 0, "probe": None}
    assert result["meeting_limits"] == 6546 and result["scored"] == 412
    assert result["candidates_per_run_mean"] == pytest.approx(42.9)
    methods = result["methods"]
    # the figures of this run (embedded table, seed 0), and their order
    assert methods["sed_like"]["mean"] == pytest.approx(92.90417)
    assert methods["sed_like"]["std"] == pytest.approx(0.74082, abs=1e-5)
    assert methods[ORACLE]["mean"] == pytest.approx(93.446)
    assert methods[RANDOM]["mean"] == pytest.approx(89.59316)
    assert methods["params"]["mean"] == pytest.approx(84.64934)
    assert methods[ORACLE]["latency_ms_mean"] == pytest.approx(4.253547)
    assert methods["sed_like"]["energy_mJ_mean"] == pytest.approx(19.21904)
    # ... which are the protocol's, redone from the table
    expected = _expected_picks(tss, 100, 10, 0, 5.0)
    latency = tss.hardware("cifar10", "edgegpu")
    accuracy = tss.accuracy("cifar10")
    assert len(result["per_run"]) == 10
    for run, entry in enumerate(result["per_run"]):
        for name in ("sed_like", "params", ORACLE):
            pick = entry["picks"][name]
            assert pick["index"] == expected[name][run], (name, run)
            assert pick["accuracy"] == accuracy[pick["index"]]
        for pick in entry["picks"].values():
            assert pick["latency_ms"] == latency[pick["index"]] <= 5.0
            assert result["picked_archs"][str(pick["index"])] == tss.arch(pick["index"])
    oracle = [e["picks"][ORACLE]["accuracy"] for e in result["per_run"]]
    assert methods[ORACLE]["mean"] == pytest.approx(np.mean(oracle))
    assert methods[ORACLE]["std"] == pytest.approx(np.std(oracle, ddof=1))


def test_cli_table_without_limit(capsys) -> None:
    code, out, err = nas(capsys, "--proxy", "params", "--n", "50", "--runs", "5", *DATA_FREE)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == (
        "zero-cost NAS on tss/cifar10: 5 runs of n = 50 (seed 0), no hardware limit; "
        "50.0 candidates per run, 250 architectures scored"
    )
    assert lines[1] == (
        "  method            test acc (%)  edgegpu latency (ms)   edgegpu energy (mJ)  runs"
    )
    rows = {line.split()[0]: line for line in lines[2:5]}
    assert list(rows) == ["params", RANDOM, ORACLE]  # the proxy is not repeated as a baseline
    assert rows["params"] == (
        "  params            93.12 ± 1.31         6.161 ± 1.759        29.124 ± 8.071  5"
    )
    assert rows[ORACLE].split()[1:4] == ["93.73", "±", "0.10"]
    assert lines[5] == "  (mean test accuracy of the candidates: 85.62 %)"


def test_cli_device_without_energy_reports_latency_only(capsys) -> None:
    code, out, err = nas(
        capsys,
        *("--proxy", "sed_like", "--n", "200", "--runs", "4", "--device", "pixel3"),
        *("--max-latency-ms", "2", "--dataset", "cifar100", *DATA_FREE, "--json"),
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["limits"] == ["pixel3 latency <= 2 ms"]
    assert set(result["per_run"][0]["picks"][ORACLE]) == {"index", "accuracy", "latency_ms"}
    assert all(p["latency_ms"] <= 2 for e in result["per_run"] for p in e["picks"].values())


def test_probed_proxies_score_the_union_once(capsys, monkeypatch, tss: Benchmark) -> None:
    """naswot/meco and expressions go through gm-lab score's path (stubbed here: no torch),
    once per method on the union of all runs' candidates."""
    calls: list[np.ndarray] = []

    def arrays_of(bench, indices, args, expr, full_probe=False):
        from gm_lab.probe.cache import ProbeArrays

        calls.append(np.asarray(indices))
        idx = np.asarray(indices, dtype=np.int64)
        accuracy = tss.accuracy("cifar10")[idx]
        arrays = ProbeArrays(
            indices=idx,
            archs=[tss.arch(i) for i in idx],
            n_layers=np.ones(len(idx), dtype=np.int64),
            mask=np.ones((len(idx), 1), dtype=bool),
            layer_stats={},
            proxies={"naswot": accuracy, "meco": -accuracy},
        )
        return arrays, {"probed": len(idx), "reused": 0, "seconds": 0.0, "cache": "stub"}

    monkeypatch.setattr("gm_lab.cli.nas.expression_arrays", arrays_of)
    code, out, err = nas(
        capsys,
        *("--proxy", "naswot - 0 * meco", "--n", "60", "--runs", "8", "--max-latency-ms", "4"),
        "--json",
    )
    assert code == 0, err
    result = json.loads(out)
    assert len(calls) == 3  # the expression, naswot, meco; params is read from the table
    union = calls[0]
    assert len(union) == result["scored"] == len(np.unique(union))
    for indices in calls[1:]:
        np.testing.assert_array_equal(indices, union)
    methods = result["methods"]
    assert methods["naswot - 0 * meco"]["mean"] == methods["naswot"]["mean"]
    assert methods["naswot"]["mean"] == methods[ORACLE]["mean"]  # stubbed naswot = accuracy
    assert methods["meco"]["mean"] < methods[RANDOM]["mean"]  # stubbed meco = -accuracy
    assert result["probe"]["runs"]["naswot"]["probed"] == len(union)
    assert result["provenance"]["probe_version"] is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--device", "tpu"), "invalid choice: 'tpu'"),
        (("--max-latency-ms", "0.1"), "no architecture of tss meets edgegpu latency <= 0.1 ms"),
        (("--device", "raspi4", "--max-energy-mj", "1"), "no energy of raspi4"),
        (("--n", "15626"), "--n 15,626 is larger than the space: 15,625 architectures"),
        (("--n", "0"), "must be at least 1"),
        (("--max-latency-ms", "-3"), "must be a positive number"),
        (("--baselines", "random,flops"), "unknown baseline(s) flops"),
        (("--proxy", "log(naswot"), "missing ')' to close the '(' at column 4"),
        (("--proxy", "nasowt"), "unknown proxy 'nasowt'; valid proxies"),
    ],
)
def test_cli_bad_input(capsys, args: tuple[str, ...], message: str) -> None:
    base = {"--proxy": "sed_like", "--n": "20", "--runs": "2"}
    given = dict(zip(args[::2], args[1::2], strict=True))
    argv = [x for k, v in {**base, **given}.items() for x in (k, v)]
    code, out, err = nas(capsys, *argv, *DATA_FREE)
    assert code == 2
    assert message in err, err
    assert out == ""


@pytest.mark.data("the shared data folder's TSS table")
def test_cli_latency_limit_on_the_real_table(capsys, data_root) -> None:
    table = pd.read_csv(data_root / "nats_bench" / "tss.csv")
    code, out, err = nas(
        capsys,
        *("--proxy", "sed_like", "--n", "300", "--runs", "20", "--device", "raspi4"),
        *("--max-latency-ms", "3", "--dataset", "ImageNet16-120", *DATA_FREE, "--json"),
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["provenance"]["data"]["table"] == str(data_root / "nats_bench" / "tss.csv")
    latency = table["hw_raspi4_latency_imagenet16"].to_numpy()
    accuracy = table["imagenet16_test"].to_numpy()
    assert result["meeting_limits"] == int((latency <= 3).sum())
    for entry in result["per_run"]:
        for pick in entry["picks"].values():
            assert latency[pick["index"]] <= 3 and pick["latency_ms"] == latency[pick["index"]]
            assert pick["accuracy"] == pytest.approx(accuracy[pick["index"]])
    methods = result["methods"]
    assert methods[ORACLE]["mean"] >= methods["sed_like"]["mean"] > methods[RANDOM]["mean"]
    assert methods[ORACLE]["mean"] <= accuracy[latency <= 3].max()


# ---- the widget ----------------------------------------------------------------------------------
def test_nas_chart_shows_candidates_picks_and_the_limit(tmp_path, tss: Benchmark) -> None:
    import vl_convert

    from gm_lab.widgets import NasChart
    from gm_lab.widgets.nas import nas_rows
    from gm_lab.widgets.vega import with_rows

    accuracy = tss.accuracy("cifar10")
    latency = tss.hardware("cifar10", "edgegpu")
    scores = {"sed_like": sed_like_scores(tss.archs)}
    result = run_protocol(scores, accuracy, 200, 12, seed=0, allowed=latency <= 4)
    chart = NasChart(result, accuracy, latency, limit=4, archs=tss.archs, title="NAS")
    rows = chart.rows
    candidates = [r for r in rows if r["layer"] == "candidate"]
    picks = [r for r in rows if r["layer"] == "pick"]
    assert [r["index"] for r in candidates] == list(result.draws.needed())
    assert all(r["latency"] <= 4 for r in candidates + picks)
    for name, method in result.methods.items():
        mine = [r for r in picks if r["method"] == name]
        assert sum(r["count"] for r in mine) == 12
        assert {r["index"] for r in mine} == set(method.picks.tolist())
        assert all(r["accuracy"] == accuracy[r["index"]] for r in mine)
    assert [r for r in rows if r["layer"] == "limit"] == [{"layer": "limit", "latency": 4.0}]
    assert chart.spec["layer"][1]["encoding"]["color"]["scale"]["domain"] == list(result.methods)
    svg = vl_convert.vegalite_to_svg(with_rows(chart.spec, rows))
    assert svg.count("<path") > len(candidates)  # every candidate and pick drawn offline
    assert chart.save(tmp_path / "nas.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    other = run_protocol(scores, accuracy, 200, 12, seed=1, allowed=latency <= 4)
    chart.show(other)
    assert chart.rows == nas_rows(other, accuracy, latency, 4, tss.archs)
