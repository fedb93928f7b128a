"""Offline Vega charts: specs, rows, brush round trips, strata counts and export, on real data.

Kernel-less: the front end is simulated at the comm level (JS→Python through the widget's comm
handler, Python→JS by recording what the comm sends). `python tests/test_widget_charts.py`
rewrites the spec fixtures the JS tests compile (js/test/fixtures).
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import altair as alt
import numpy as np
import pandas as pd
import pytest
import vl_convert
from scipy import stats

from gm_lab.benchmark import Benchmark
from gm_lab.metrics import kendall, spearman
from gm_lab.sampling import assign_bins, bin_edges, search_heldout_split, stratified_sample
from gm_lab.widgets import charts
from gm_lab.widgets.scatter import CorrelationScatter
from gm_lab.widgets.strata import StratifiedSampleView
from gm_lab.widgets.vega import VegaChart, rows_in_selection, spec_and_rows, with_rows

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "js" / "test" / "fixtures"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ---- helpers -------------------------------------------------------------------------------------
class RecordingComm:
    """Stands in for the front end's end of a widget comm: records every Python→JS message."""

    kernel = "recording"  # ipywidgets sends only when the comm has a kernel

    def __init__(self, real: Any) -> None:
        self.real = real
        self.sent: list[dict] = []

    def send(self, data: dict | None = None, buffers: Any = None, **_: Any) -> None:
        self.sent.append(data or {})

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def states(self) -> list[dict]:
        return [m.get("state", {}) for m in self.sent if m.get("method") == "update"]


def from_js(widget: Any, **state: Any) -> None:
    """A state update as the front end sends it (model.set + save_changes), via the real handler."""
    msg = {
        "content": {"data": {"method": "update", "state": state, "buffer_paths": []}},
        "buffers": [],
    }
    widget.comm.handle_msg(msg)


def svg_of(spec: dict, rows: list[dict]) -> str:
    return vl_convert.vegalite_to_svg(with_rows(spec, rows))


@pytest.fixture(scope="module")
def tss(tss_table: Path) -> Iterator[Benchmark]:
    yield Benchmark.from_table(tss_table, "tss")


@pytest.fixture(scope="module")
def accuracy(tss: Benchmark) -> np.ndarray:
    return tss.accuracy("cifar10")


@pytest.fixture(scope="module")
def sample_data(tss: Benchmark, accuracy: np.ndarray) -> dict[str, Any]:
    """A real stratified sample scored by a real (if weak) proxy: #params, with two failures."""
    sample = stratified_sample(accuracy, 20, k=10, seed=3)
    idx = sample.indices
    scores = tss.params("cifar10")[idx].astype(float)
    scores[[4, 17]] = np.nan  # failed proxy evaluations rank worst
    return {
        "indices": idx,
        "archs": tss.archs[idx],
        "scores": scores,
        "accuracy": accuracy[idx],
        "strata": sample.bins,
    }


# ---- chart specs ---------------------------------------------------------------------------------
def _json_safe(rows: list[dict]) -> None:
    json.dumps(rows, allow_nan=False)  # the comm carries JSON: NaN must have become None


def test_specs_read_named_rows_and_compile_to_svg_marks(sample_data, accuracy) -> None:
    d = sample_data
    scatter = charts.scatter_rows(d["indices"], d["archs"], d["scores"], d["accuracy"], d["strata"])
    search, heldout = search_heldout_split(accuracy, "stratified", 100, 100, seed=1)
    strata = charts.strata_rows(accuracy, search.bin_edges, search, heldout)
    fitness = [
        row
        for g in range(6)
        for row in charts.fitness_rows(g, best=0.3 + g / 20, mean=0.1 + g / 30, held_out=0.25)
    ]
    cases = [
        (charts.correlation_scatter("τ"), scatter, "mark-symbol"),
        (charts.strata_chart(), strata, "mark-rect"),
        (charts.fitness_chart(), fitness, "mark-line"),
    ]
    for chart, rows, mark in cases:
        spec = chart.to_dict()
        assert "datasets" not in spec and spec["data"] == {"name": "rows"}
        vega = vl_convert.vegalite_to_vega(spec)
        assert "rows" in {d["name"] for d in vega["data"]}  # the name the changesets target
        _json_safe(rows)
        svg = svg_of(spec, rows)
        assert svg.startswith("<svg") and mark in svg
    # one drawn point per row with a finite score (rank scale: every row, failures ranked worst)
    svg = svg_of(charts.correlation_scatter().to_dict(), scatter)
    assert svg.count('role="graphics-symbol"') >= len(scatter)


def test_scatter_has_brush_param_and_axis_titles() -> None:
    for scale in charts.SCALES:
        spec = charts.correlation_scatter(scale=scale).to_dict()
        brush = [p for p in spec["params"] if p["name"] == "brush"]
        assert brush and brush[0]["select"]["type"] == "interval"
        assert set(brush[0]["select"]["encodings"]) == {"x", "y"}
        assert spec["encoding"]["x"]["title"] == charts.X_TITLES[scale]
        assert spec["encoding"]["y"]["field"] == "accuracy"
        tips = {t["field"] for t in spec["encoding"]["tooltip"]}
        assert tips == {"index", "arch", "score", "accuracy", "stratum"}
    with pytest.raises(ValueError, match="unknown scale"):
        charts.correlation_scatter(scale="linear")  # type: ignore[arg-type]


def test_scatter_title_format() -> None:
    assert charts.scatter_title(0.6123, 0.8009, n=1000) == "τ = 0.612 · ρ = 0.801 · n = 1000"
    assert charts.scatter_title(float("nan"), 0.5, "synflow") == "synflow · τ = – · ρ = 0.500"


# ---- rows ----------------------------------------------------------------------------------------
def test_rank_rows_rank_failures_worst(sample_data) -> None:
    d = sample_data
    rows = charts.scatter_rows(d["indices"], d["archs"], d["scores"], d["accuracy"], d["strata"])
    _json_safe(rows)
    x = np.array([r["x"] for r in rows])
    filled = d["scores"].copy()
    filled[np.isnan(filled)] = np.nanmin(filled) - 1
    np.testing.assert_allclose(x, stats.rankdata(filled))
    assert [r["x"] for r in (rows[4], rows[17])] == [1.5, 1.5]  # the two failures tie at the bottom
    assert rows[4]["score"] is None and rows[4]["rank"] == 1.5
    assert [r["index"] for r in rows] == [int(i) for i in d["indices"]]
    assert [r["stratum"] for r in rows] == [int(b) for b in d["strata"]]
    # ranks are what τ sees: τ on ranks equals τ on the scores
    assert kendall(x, d["accuracy"]) == pytest.approx(kendall(d["scores"], d["accuracy"]))


def test_log_rows(sample_data) -> None:
    d = sample_data
    rows = charts.scatter_rows(
        d["indices"], d["archs"], d["scores"], d["accuracy"], d["strata"], scale="log"
    )
    _json_safe(rows)
    ok = np.isfinite(d["scores"])
    x = np.array([r["x"] for r in rows], dtype=float)
    np.testing.assert_allclose(x[ok], np.log10(d["scores"][ok]))  # positive scores: plain log10
    assert rows[4]["x"] is None and rows[17]["x"] is None  # a failed score has no position
    # mixed signs and zeros: still monotone in the score
    s = np.array([-1e6, -3.0, -1e-3, 0.0, 2e-4, 5.0, 1e9])
    assert np.all(np.diff(charts.signed_log(s)) > 0)
    neg = np.array([-1e5, -10.0, -0.1])
    np.testing.assert_allclose(charts.signed_log(neg), [-5.0, -1.0, 1.0])


def test_rows_reject_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="equal lengths"):
        charts.scatter_rows([1, 2], ["a"], [0.1, 0.2], [50.0, 60.0])


# ---- VegaChart -----------------------------------------------------------------------------------
def test_vegachart_takes_inline_altair_data_as_rows() -> None:
    df = pd.DataFrame({"a": [1, 2, 3], "b": [3.0, 1.0, 2.0]})
    chart = alt.Chart(df).mark_point().encode(x="a:Q", y="b:Q")
    spec, rows = spec_and_rows(chart)
    assert "datasets" not in spec and spec["data"] == {"name": "rows"}
    assert rows == df.to_dict("records")
    widget = VegaChart(chart)
    assert widget.rows == rows and widget.spec == spec
    with pytest.raises(ValueError, match="unknown named dataset"):
        spec_and_rows({"data": {"name": "other"}, "mark": "point"})


def test_selection_ranges_select_rows() -> None:
    rows = [{"i": i, "x": float(i), "y": 10.0 * i} for i in range(10)] + [{"i": 10, "x": None}]
    assert rows_in_selection(rows, {}) == []
    picked = rows_in_selection(rows, {"x": [6.5, 2], "y": [0, 50]})  # ranges in either order
    assert [r["i"] for r in picked] == [2, 3, 4, 5]  # bounds included


def test_brush_from_front_end_selects_rows(sample_data) -> None:
    d = sample_data
    view = CorrelationScatter()
    view.update(d["indices"], d["archs"], d["scores"], d["accuracy"], d["strata"], label="params")
    seen: list[list[dict]] = []
    view.chart.on_select(seen.append)
    rows = view.chart.rows
    lo_acc, hi_acc = float(np.percentile(d["accuracy"], 40)), float(np.max(d["accuracy"]))
    from_js(view.chart, selection={"fields": {"x": [150.0, 60.0], "accuracy": [lo_acc, hi_acc]}})
    expected = [
        {k: r[k] for k in ("index", "arch", "score", "accuracy")}
        for r in rows
        if 60 <= r["x"] <= 150 and lo_acc <= r["accuracy"] <= hi_acc
    ]
    assert expected and view.brushed == expected
    assert [r["index"] for r in seen[-1]] == [r["index"] for r in expected]
    assert f'data-count="{len(expected)}"' in view.brushed_html.value
    assert str(expected[0]["index"]) in view.brushed_html.value
    # the brush stays while rows stream in: the listing follows the new rows
    scores = d["scores"].copy()
    scores[np.isfinite(scores)] *= -1  # reverse the ranking
    view.update(d["indices"], d["archs"], scores, d["accuracy"], d["strata"])
    assert view.chart.selection["fields"]["x"] == [150.0, 60.0]
    assert [r["index"] for r in seen[-1]] == [r["index"] for r in view.brushed]
    from_js(view.chart, selection={"fields": {}})  # brush cleared in the browser
    assert view.brushed == [] and 'data-count="0"' in view.brushed_html.value


def test_scatter_correlations_match_metrics(sample_data) -> None:
    d = sample_data
    view = CorrelationScatter()
    view.update(d["indices"], d["archs"], d["scores"], d["accuracy"], label="#params")
    tau = kendall(d["scores"], d["accuracy"], nan_policy="worst")
    rho = spearman(d["scores"], d["accuracy"], nan_policy="worst")
    assert math.isfinite(tau) and math.isfinite(rho)
    assert view.kendall == tau and view.spearman == rho
    n = len(d["scores"])
    assert view.title_text == f"#params · τ = {tau:.3f} · ρ = {rho:.3f} · n = {n}"
    assert 'class="gm-scatter-title"' in view.title.value and f"{tau:.3f}" in view.title.value
    # strata default to bins of the sample's accuracy; with the space given, to the space's bins
    assert {r["stratum"] for r in view.chart.rows} <= set(range(10))


def test_strata_follow_the_space_bins(sample_data, accuracy) -> None:
    d = sample_data
    view = CorrelationScatter(benchmark_accuracy=accuracy)
    view.update(d["indices"], d["archs"], d["scores"], d["accuracy"])
    edges = bin_edges(accuracy[np.isfinite(accuracy)], 10)
    assert [r["stratum"] for r in view.chart.rows] == assign_bins(d["accuracy"], edges).tolist()


def test_live_updates_send_rows_never_the_spec(sample_data) -> None:
    d = sample_data
    view = CorrelationScatter()
    chart = view.chart
    recorder = RecordingComm(chart.comm)
    chart.comm = recorder
    spec = json.loads(json.dumps(chart.spec))
    for step in range(3):
        view.update(
            d["indices"], d["archs"], d["scores"] * (step + 1), d["accuracy"], label=f"g{step}"
        )
    states = recorder.states()
    assert len(states) == 3 and all("rows" in s for s in states)
    assert not any("spec" in s or "selection" in s for s in states)  # the brush survives
    assert chart.spec == spec
    assert states[-1]["rows"] == chart.rows and "g2" in view.title.value
    # changing the axis scale must re-embed (new units): spec and rows go together
    view.scale.value = "log"
    last = recorder.states()[-1]
    assert {"spec", "rows"} <= set(last)
    assert last["spec"]["encoding"]["x"]["title"] == charts.X_TITLES["log"]
    assert chart.rows[0]["x"] == pytest.approx(math.log10(3 * d["scores"][0]))


# ---- stratified samples --------------------------------------------------------------------------
def test_strata_counts_equal_numpy(accuracy) -> None:
    search, heldout = search_heldout_split(accuracy, "stratified", 200, 100, seed=7)
    view = StratifiedSampleView(accuracy, search, heldout)
    edges = search.bin_edges
    np.testing.assert_array_equal(view.edges, edges)
    finite = accuracy[np.isfinite(accuracy)]
    counts = view.counts
    np.testing.assert_array_equal(counts["space"], np.histogram(finite, edges)[0])
    for name, sample in (("search", search), ("held-out", heldout)):
        expected = np.histogram(accuracy[sample.indices], edges)[0]
        np.testing.assert_array_equal(counts[name], expected)
        assert counts[name].tolist() == sample.describe()["per_bin"]
        chart_counts = [
            r["count"] for r in view.chart.rows if r["layer"] == "sample" and r["sample"] == name
        ]
        assert chart_counts == expected.tolist()
    hist = [r for r in view.chart.rows if r["layer"] == "hist"]
    assert sum(r["count"] for r in hist) == finite.size == 15625
    assert [r["lo"] for r in view.chart.rows if r["layer"] == "edge"] == edges.tolist()
    table = view.table.value
    assert 'class="gm-strata-table"' in table
    first = f"<td>{counts['space'][0]}</td><td>{counts['search'][0]}</td>"
    assert first in table
    # new samples: same widget, new rows and table
    search2 = stratified_sample(accuracy, 5, k=10, seed=11)
    view.update(search2, None)
    assert view.counts["search"].sum() == len(search2) and view.counts["held-out"].sum() == 0
    assert not any(r.get("sample") == "held-out" for r in view.chart.rows)


def test_strata_without_samples_uses_equal_width_bins(accuracy) -> None:
    view = StratifiedSampleView(accuracy, None, None, bins=5)
    assert len(view.edges) == 6
    assert view.counts["space"].sum() == 15625 and view.counts["search"].sum() == 0


# ---- export --------------------------------------------------------------------------------------
def test_save_png_and_svg(tmp_path: Path, sample_data, accuracy) -> None:
    d = sample_data
    view = CorrelationScatter()
    view.update(d["indices"], d["archs"], d["scores"], d["accuracy"], label="params")
    png = view.save(tmp_path / "scatter.png")
    assert png.read_bytes().startswith(PNG_MAGIC) and png.stat().st_size > 1000
    svg = view.save(tmp_path / "scatter.svg").read_text()
    assert svg.startswith("<svg") and "τ =" in svg  # the export carries the τ/ρ title
    search, heldout = search_heldout_split(accuracy, "stratified", 100, 100, seed=2)
    strata = StratifiedSampleView(accuracy, search, heldout)
    assert strata.save(tmp_path / "strata.png").read_bytes().startswith(PNG_MAGIC)
    assert "mark-rect" in strata.save(tmp_path / "strata.svg").read_text()
    chart = VegaChart(charts.fitness_chart(), rows=charts.fitness_rows(0, best=0.1, mean=0.05))
    assert chart.save(tmp_path / "fit.png").read_bytes().startswith(PNG_MAGIC)
    with pytest.raises(ValueError, match=r"use \.png"):
        chart.save(tmp_path / "fit.gif")


# ---- fixtures the JS tests compile ---------------------------------------------------------------
def js_fixtures() -> dict[str, dict]:
    """Specs as Python builds them, with small deterministic rows (no data files needed)."""
    n = 40
    idx = np.arange(n) * 37
    score = np.array([(i * 7919) % 101 + 0.5 for i in range(n)], dtype=float)
    score[3] = np.nan
    acc = np.array([10 + (i * 53) % 85 + 0.25 for i in range(n)], dtype=float)
    edges = bin_edges(acc, 10)
    archs = [f"|nor_conv_3x3~0|+|skip_connect~0|none~1|+|arch{i}|" for i in range(n)]
    scatter = charts.scatter_rows(idx, archs, score, acc, assign_bins(acc, edges), "rank")
    space = np.array([10 + (i * 7) % 85 + (i % 13) / 13 for i in range(600)], dtype=float)
    search = stratified_sample(space, 4, k=8, seed=0)
    heldout = stratified_sample(space, 3, k=8, seed=1, exclude=search.indices)
    strata = charts.strata_rows(space, search.bin_edges, search, heldout, hist_bins=30)
    fitness = [
        row
        for g in range(8)
        for row in charts.fitness_rows(g, best=0.2 + g / 40, mean=0.1 + g / 60, held_out=0.18)
    ]
    out = {
        "scatter": (charts.correlation_scatter(), scatter, "index"),
        "strata": (charts.strata_chart(), strata, ""),
        "fitness": (charts.fitness_chart(), fitness, ""),
    }
    return {
        name: {"spec": chart.to_dict(), "rows": rows, "key": key}
        for name, (chart, rows, key) in out.items()
    }


def _without_schema(fixture: dict) -> dict:
    return {**fixture, "spec": {k: v for k, v in fixture["spec"].items() if k != "$schema"}}


def write_js_fixtures() -> list[Path]:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fixture in js_fixtures().items():
        path = FIXTURES / f"{name}.json"
        path.write_text(json.dumps(fixture, indent=1, ensure_ascii=False, allow_nan=False) + "\n")
        paths.append(path)
    return paths


def test_js_fixtures_match_the_builders() -> None:
    if os.environ.get("GM_LAB_UPDATE_FIXTURES") == "1":
        write_js_fixtures()
    for name, fixture in js_fixtures().items():
        path = FIXTURES / f"{name}.json"
        assert path.is_file(), f"{path} missing: run `python tests/test_widget_charts.py`"
        stored = json.loads(path.read_text())
        assert _without_schema(stored) == _without_schema(json.loads(json.dumps(fixture))), (
            f"{path} is stale: rerun `python tests/test_widget_charts.py` (or set "
            "GM_LAB_UPDATE_FIXTURES=1) and commit the fixtures"
        )


if __name__ == "__main__":
    for written in write_js_fixtures():
        print(written, file=sys.stderr)


@pytest.mark.parametrize(
    ("selection", "problem"),
    [
        ({"fields": [1, 2]}, "'fields' must map field names to ranges"),
        ({"fields": {"score": [0, None]}}, "must be a list of numbers or labels"),
        ({"fields": {"score": {"lo": 1}}}, "must be a list of numbers or labels"),
        ({"fields": {"score": [0, float("nan")]}}, "non-finite"),
    ],
)
def test_a_malformed_brush_from_the_browser_is_ignored_and_said(selection, problem) -> None:
    scatter = CorrelationScatter()
    scatter.update(np.arange(3), ["a", "b", "c"], np.array([1.0, 2, 3]), np.array([10.0, 20, 30]))
    msg = {"content": {"data": {"method": "update", "state": {"selection": selection}}}}
    scatter.chart.comm.handle_msg({**msg, "buffers": []})  # as ipywidgets gets it
    assert problem in scatter.chart.problem and scatter.chart.selection == {}
    assert scatter.brushed == [] and "brush ignored" in scatter.brushed_html.value
