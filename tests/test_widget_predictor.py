"""The predictor view on the real engine: data-free 'arch' features of the embedded TSS table (no
GM_LAB_DATA, no probe), a run in a background thread, and what the charts show checked against
the engine's own numbers."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import vl_convert

from gm_lab.benchmark import Benchmark
from gm_lab.predict import (
    ArchFeatureSource,
    PredictorError,
    arch_features,
    curve_table,
    learning_curve,
    scores,
    split,
    train_and_evaluate,
)
from gm_lab.widgets import PredictorView
from gm_lab.widgets.charts import importance_rows
from gm_lab.widgets.predictor import TOP_FEATURES
from gm_lab.widgets.vega import with_rows

TRAIN_N, HELDOUT_N, SIZES, SEEDS = 60, 200, (25, 50), 2


def wait_until(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture(scope="module")
def bench(tss_table: Path) -> Benchmark:
    return Benchmark.from_table(tss_table, "tss")


@pytest.fixture(scope="module")
def view(bench: Benchmark) -> PredictorView:
    """One finished run with a learning curve, shared by the read-only tests."""
    v = PredictorView(
        benchmark=bench, train_n=TRAIN_N, heldout_n=HELDOUT_N, seed=3, curve=True,
        curve_seeds=SEEDS, sizes=SIZES, interval=0.05,
    )  # fmt: skip
    assert v.start() is v
    assert v.wait(120) == "done"
    return v


def points(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["layer"] == "point"]


# ---- the single predictor -----------------------------------------------------------------------
def test_scatter_shows_the_predictors_heldout_predictions(view: PredictorView, bench) -> None:
    run = view.result
    assert run is not None and run.predictor.model == "rf" and run.predictor.feature_set == "arch"
    heldout, train = run.split.heldout, run.split.train
    assert (len(train), len(heldout)) == (TRAIN_N, HELDOUT_N)
    assert not np.intersect1d(train, heldout).size
    # the split is the engine's, for the view's seed
    expected = split(view.accuracy, TRAIN_N, HELDOUT_N, 3)
    np.testing.assert_array_equal(heldout, expected.heldout)
    np.testing.assert_array_equal(train, expected.train)

    rows = points(view.scatter.rows)
    assert [r["index"] for r in rows] == heldout.tolist()
    assert [r["arch"] for r in rows] == [bench.arch(int(i)) for i in heldout]
    np.testing.assert_array_equal([r["predicted"] for r in rows], run.predicted)
    np.testing.assert_array_equal([r["true"] for r in rows], bench.accuracy("cifar10")[heldout])
    np.testing.assert_allclose([r["error"] for r in rows], run.predicted - run.truth)
    # ... and they are what the trained predictor says about those architectures' features
    names, values = arch_features("tss", "cifar10", [bench.arch(int(i)) for i in heldout])
    assert names == run.predictor.feature_names
    np.testing.assert_array_equal(run.predictor.predict(values), run.predicted)

    diagonal = [r for r in view.scatter.rows if r["layer"] == "diagonal"]
    both = np.concatenate([run.predicted, run.truth])
    assert [(d["true"], d["predicted"]) for d in diagonal] == [(both.min(),) * 2, (both.max(),) * 2]

    assert run.metrics == scores(run.predicted, run.truth)
    assert run.metrics["kendall"] > 0.6, run.metrics  # data-free features rank TSS well
    assert f"τ = {run.metrics['kendall']:.3f}" in view.metrics.value
    assert f"n = {HELDOUT_N}" in view.metrics.value


def test_importances_are_the_forests_normalised_top_features(view: PredictorView) -> None:
    predictor = view.result.predictor
    raw = predictor.estimator.feature_importances_
    assert view.importances == predictor.importances()
    assert math.isclose(sum(view.importances.values()), 1.0, abs_tol=1e-9)
    np.testing.assert_allclose(list(view.importances.values()), raw / raw.sum())
    rows = view.importance_chart.rows
    assert len(rows) == TOP_FEATURES < len(predictor.feature_names)
    assert [r["rank"] for r in rows] == list(range(1, TOP_FEATURES + 1))
    shown = [r["importance"] for r in rows]
    assert shown == sorted(shown, reverse=True)
    assert shown == sorted(view.importances.values(), reverse=True)[:TOP_FEATURES]
    assert rows == importance_rows(view.importances, TOP_FEATURES)


def test_gbm_importances_are_gain_shares(bench: Benchmark) -> None:
    v = PredictorView(benchmark=bench, train_n=40, heldout_n=50, model="gbm", interval=0.05)
    assert v.start().wait(120) == "done", v.error
    predictor = v.result.predictor
    gain = predictor.estimator.booster.feature_importance("gain")
    assert math.isclose(sum(v.importances.values()), 1.0, abs_tol=1e-9)
    np.testing.assert_allclose(list(v.importances.values()), gain / gain.sum())
    assert v.curve == [] and v.curve_chart.layout.display == "none"  # no curve asked


# ---- the learning curve -------------------------------------------------------------------------
def test_curve_has_the_requested_sizes_and_seeds(view: PredictorView) -> None:
    assert [row["train_n"] for row in view.curve] == list(SIZES)
    for row in view.curve:
        taus = [r["kendall"] for r in row["runs"]]
        assert [r["seed"] for r in row["runs"]] == [3, 4]
        assert row["kendall"] == {"mean": np.mean(taus), "std": np.std(taus), "n": SEEDS}
    # each point is the engine's run on split(n, heldout_n, seed), recomputed
    again = train_and_evaluate(
        "tss", "cifar10", view.accuracy, view.features, split(view.accuracy, 50, HELDOUT_N, 4),
        "rf", "arch", 4,
    )  # fmt: skip
    assert view.curve[1]["runs"][1]["kendall"] == again.metrics["kendall"]
    assert view.curve == curve_table(view.curve_points)
    means = [r for r in view.curve_chart.rows if r["layer"] == "mean"]
    assert [m["train_n"] for m in means] == list(SIZES)
    for m, row in zip(means, view.curve, strict=True):
        assert m["kendall"] == row["kendall"]["mean"]
        assert math.isclose(m["hi"] - m["lo"], 2 * row["kendall"]["std"], abs_tol=1e-12)
    assert len([r for r in view.curve_chart.rows if r["layer"] == "run"]) == len(SIZES) * SEEDS
    assert view.curve_chart.layout.display is None


def test_curve_drops_sizes_that_do_not_fit(bench: Benchmark) -> None:
    accuracy = bench.accuracy("cifar10")
    features = ArchFeatureSource("tss", "cifar10", bench.arch)
    got = list(learning_curve("tss", "cifar10", accuracy, features, 14_600, "rf", "arch", [0],
                              sizes=(5, 25, 50)))  # fmt: skip
    assert [p.train_n for p in got] == [5, 25]  # 14,600 + 50 exceeds the 14,625 of the pool


def test_arch_feature_source_matches_arch_features_and_computes_each_once(bench) -> None:
    source = ArchFeatureSource("tss", "cifar10", bench.arch)
    first = source([7, 3, 7])
    names, values = arch_features("tss", "cifar10", [bench.arch(i) for i in (7, 3, 7)])
    assert first.names == names and first.indices.tolist() == [7, 3, 7]
    np.testing.assert_array_equal(first.values, values)
    assert sorted(source._rows) == [3, 7]
    np.testing.assert_array_equal(source([3]).values, values[1:2])


# ---- the run: state, progress, errors, stop -----------------------------------------------------
def test_a_finished_run_shows_done_and_full_progress(view: PredictorView) -> None:
    assert view.state == "done" and view.error is None and not view.running
    assert view.progress.value == view.progress.max == 1 + len(SIZES) * SEEDS
    assert "data-state='done'" in view.status.value
    assert view.message.value == ""
    assert not view.train_button.disabled and view.stop_button.disabled


@pytest.mark.parametrize(
    ("train_n", "said"),
    [(20_000, "exceeds the 14,625 labelled architectures"), (2, "at least 5")],
)
def test_a_bad_train_n_is_shown_and_the_view_keeps_working(bench, train_n: int, said: str) -> None:
    v = PredictorView(benchmark=bench, train_n=train_n, heldout_n=30, interval=0.05)
    assert v.start().wait(60) == "error"
    assert said in v.error and said in v.message.value and "gm-error" in v.message.value
    assert "data-state='error'" in v.status.value and v.result is None
    assert points(v.scatter.rows) == []
    v.controls["train_n"].value = 20
    assert v.start().wait(60) == "done"
    assert v.message.value == "" and len(points(v.scatter.rows)) == 30


def test_stop_ends_a_curve_between_runs(bench: Benchmark) -> None:
    v = PredictorView(
        benchmark=bench, train_n=20, heldout_n=100, curve=True, curve_seeds=5,
        sizes=(25, 50, 100, 200, 400), interval=0.05,
    )  # fmt: skip
    v.start()
    v.start()  # a second start while running is refused and said
    assert "a run is going" in v.message.value
    wait_until(lambda: len(v.curve_points) >= 1)
    v.stop(wait=True)
    assert v.state == "stopped" and not v.running
    assert 1 <= len(v.curve_points) < 25
    assert v.progress.value < v.progress.max
    assert "data-state='stopped'" in v.status.value and not v.train_button.disabled


def test_probe_feature_sets_need_a_feature_source(bench: Benchmark) -> None:
    with pytest.raises(PredictorError, match="needs probe records"):
        PredictorView(benchmark=bench, feature_set="proxies")


# ---- offline rendering --------------------------------------------------------------------------
def test_the_charts_render_offline(view: PredictorView, tmp_path: Path) -> None:
    for chart, marks in (
        (view.scatter, HELDOUT_N),
        (view.importance_chart, TOP_FEATURES),
        (view.curve_chart, len(SIZES) * SEEDS),
    ):
        svg = vl_convert.vegalite_to_svg(with_rows(chart.spec, chart.rows))
        assert svg.count('role="graphics-symbol"') >= marks
    assert view.scatter.save(tmp_path / "scatter.png").stat().st_size > 1000
