"""Every notebook in notebooks/ runs top to bottom in a real kernel on a small sample, and its key
outputs are asserted by cells appended here (the notebooks stay clean for users).

Notebooks read their sizes from GM_LAB_NB_* environment variables with user-sized defaults, so
CI runs them small: GM_LAB_NB_N (architectures per sample), GM_LAB_NB_GENS, GM_LAB_NB_POP,
GM_LAB_NB_BATCH (probe batch size); notebook 05 also GM_LAB_NB_TRAIN, GM_LAB_NB_HELDOUT,
GM_LAB_NB_CURVE_MAX, GM_LAB_NB_CURVE_SEEDS (its predictor and learning curve).
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SMALL = {
    "GM_LAB_NB_N": "40",
    "GM_LAB_NB_GENS": "4",
    "GM_LAB_NB_POP": "20",
    "GM_LAB_NB_BATCH": "8",
    # 05's predictor: train / held-out sizes and its learning curve
    "GM_LAB_NB_TRAIN": "100",
    "GM_LAB_NB_HELDOUT": "300",
    "GM_LAB_NB_CURVE_MAX": "200",
    "GM_LAB_NB_CURVE_SEEDS": "2",
}

# notebook name -> code appended after its last cell: assertions on the kernel's state
CHECKS: dict[str, str] = {}

CHECKS["01-quickstart.ipynb"] = """
import math

import numpy as np

from gm_lab import metrics
from gm_lab.expressions import parse, to_text

assert (N, GENS, POP, BATCH) == (40, 4, 20, 8), (N, GENS, POP, BATCH)

# 1. the benchmark summary: all of TSS, best CIFAR-10 network #6111 at 94.373 %
assert summary["n_archs"] == summary["n_with_ground_truth"] == 15625
assert best_arch["index"] == 6111 and abs(best_arch["test_acc"] - 94.373) < 1e-3

# 2. two disjoint stratified samples sized by N, probed at BATCH, aligned with the benchmark
assert (config.sample, config.n_search, config.n_heldout) == ("stratified", N, N)
assert (config.batch_size, config.pop, config.gens) == (BATCH, POP, GENS)
assert max(data.search_sample.describe()["per_bin"]) == N // 10
assert 10 <= len(search_split) <= N and 10 <= len(heldout_split) <= N
assert not set(search_split.arrays.indices) & set(heldout_split.arrays.indices)
np.testing.assert_array_equal(search_split.arrays.indices, data.search_sample.indices)
np.testing.assert_array_equal(heldout_split.arrays.indices, data.heldout_sample.indices)
for split in (search_split, heldout_split):
    np.testing.assert_array_equal(split.truth, bench.accuracy("cifar10")[split.arrays.indices])
probed = data.probe["cifar10"]
assert probed["probed"] + probed["reused"] == len(search_split) + len(heldout_split)

# 3. synflow's printed tau / rho are those of its scores on both samples, recomputed
scores = np.concatenate([s.arrays.proxies["synflow"] for s in (search_split, heldout_split)])
truth = np.concatenate([search_split.truth, heldout_split.truth])
assert len(sample_accuracy) == len(scores) == len(scatter.chart.rows)
assert tau_synflow == metrics.kendall(scores, truth), tau_synflow
assert rho_synflow == metrics.spearman(scores, truth), rho_synflow
assert -1 <= tau_synflow <= 1 and -1 <= rho_synflow <= 1
assert tau_synflow > 0.2, tau_synflow
assert f"τ = {tau_synflow:.3f}" in scatter.title_text

# 4. the dashboard's search ran to its last generation in the background and was joined
assert dashboard.search is search and search.phase == "finished"
assert result.finished and result.generation == GENS
assert [e.generation for e in search.history] == list(range(GENS + 1))
assert [r["gen"] for r in result.logbook] == list(range(GENS + 1))
assert dashboard.progress.value == GENS + 1
assert f"data-generation='{GENS}'" in dashboard.status.value
assert result.probe["cifar10"]["probed"] == 0  # the notebook's probes were reused

# 5. the best proxy parses, is what the editor shows, and is scored on both samples
best_tree = parse(result.best.expr)
assert best_editor.readonly and best_editor.text == to_text(best_tree)
assert dashboard.best_tree.text == best_editor.text
assert result.best.fitness == result.logbook[-1]["best"]
assert -1 <= result.best.search_kendall <= 1 and math.isfinite(result.best.heldout_kendall)
assert sorted(r.expr for r in result.classic) == sorted(config.proxies)
table = result.table()
assert "#1 " in table and "synflow" in table and "held-out τ" in table
"""

CHECKS["02-teaching-zero-cost-nas.ipynb"] = """
import math

import numpy as np

from gm_lab import metrics
from gm_lab.expressions import check_tree, parse, score_expression, to_text
from gm_lab.probe.probe import shared_proxies

assert (N, GENS, POP, BATCH) == (40, 4, 20, 8), (N, GENS, POP, BATCH)
classic = list(shared_proxies())
assert len(classic) == 15

# 1. the space: 5 ** 6 cells, 6 edges each; the best CIFAR-10 network
assert bench.n_archs == 5**6 == 15625
assert best.index == 6111 and len(cell_edges(best.arch)) == 6

# random and stratified samples of the same size, drawn and then probed identically
assert (stratified_sample.kind, random_sample.kind) == ("stratified", "random")
assert len(random_sample) == len(stratified_sample) >= 10
assert stratified_config.n_search == N and stratified_config.batch_size == BATCH
np.testing.assert_array_equal(stratified_split.arrays.indices, stratified_sample.indices)
np.testing.assert_array_equal(random_split.arrays.indices, random_sample.indices)
assert per_bin["all networks"].sum() == 15625
assert per_bin["stratified sample"].max() == N // 10
assert per_bin["stratified sample"].sum() == per_bin["random sample"].sum() == len(random_sample)
assert list(strata_view.counts["search"]) == list(per_bin["stratified sample"])
# most of TSS is good: the random sample has more top-bin networks than the stratified one
assert top_share > 0.5
assert per_bin["random sample"].iloc[-1] > per_bin["stratified sample"].iloc[-1]

# 2. the classic proxies with their one-line definitions
assert list(definitions.index) == classic
assert definitions["definition"].str.len().min() > 10
assert not definitions["definition"].str.contains("\\n").any()

# 3. the side-by-side table: one row per proxy of the search data (the classic ones and the
# data-free standalone ones), tau and rho on both samples, recomputed
assert sorted(proxy_table.index) == sorted(stratified_split.arrays.proxies)
assert set(classic) <= set(proxy_table.index)
assert list(proxy_table.columns) == ["tau_random", "tau_stratified", "rho_random", "rho_stratified"]
assert np.isfinite(proxy_table.to_numpy()).all() and (proxy_table.abs() <= 1).all().all()
for name in classic:
    for label, split in (("random", random_split), ("stratified", stratified_split)):
        scores = split.arrays.proxies[name]
        assert proxy_table.loc[name, f"tau_{label}"] == metrics.kendall(scores, split.truth)
        assert proxy_table.loc[name, f"rho_{label}"] == metrics.spearman(scores, split.truth)
gap = (proxy_table["tau_random"] - proxy_table["tau_stratified"]).abs()
assert gap.max() > 0.1, gap
assert proxy_table["tau_stratified"].is_monotonic_decreasing
assert 0 < tau_noise < 1

# 4. GP: the crossover / mutation demo gives valid trees; the search ran every generation
for tree in (child_a, child_b, mutant):
    check_tree(tree)
    assert to_text(parse(to_text(tree))) == to_text(tree)
assert search.phase == "finished" and search_result.finished
assert search_result.generation == GENS
assert list(logbook.index) == list(range(GENS + 1))
assert logbook["best"].is_monotonic_increasing
np.testing.assert_array_equal(search.data.search_sample.indices, stratified_sample.indices)
assert search_result.probe["cifar10"]["reused"] >= len(stratified_sample)
assert len(curve_rows) == 3 * (GENS + 1)
assert {r["series"] for r in curve_rows} == {"best", "mean", "held-out"}
parse(search_result.best.expr)
assert math.isfinite(search_result.best.heldout_kendall)

# 5a. tau of snip vs mean(log(snip_l)) as printed, recomputed; log(snip) ranks like snip
arrays, truth = stratified_split.arrays, stratified_split.truth
assert tau_snip == score_expression(parse("snip"), arrays, truth)["kendall"]
assert tau_snip == proxy_table.loc["snip", "tau_stratified"]
assert tau_mean_log_snip == score_expression(parse("mean(log(snip_l))"), arrays, truth)["kendall"]
assert abs(tau_log_snip - tau_snip) < 1e-12
assert tau_snip != tau_mean_log_snip

# 5b. the edit made from code reached the editor and was rescored
assert editor.text == "log(snip) + naswot" and not editor.readonly
assert to_text(edited_expr) == editor.text
assert edited_score == score_expression(parse(editor.text), arrays, truth)
assert -1 <= edited_score["kendall"] <= 1
"""


CHECKS["03-hand-edit-and-rescore.ipynb"] = """
import math

from gm_lab.expressions import score_expression as _score, simplify as _simplify, to_text as _text

assert (N, GENS, POP, BATCH) == (40, 4, 20, 8)
assert result.finished and result.generation == GENS and result.config.batch_size == BATCH

# 2. the raw best tree simplifies to the reported best, keeping every score it gives
assert _text(simplified) == result.best.expr and len(simplified) <= len(evolved)
assert _text(_simplify(simplified)) == _text(simplified)
_before, _after = heldout.scores(evolved), heldout.scores(simplified)
assert np.array_equal(_before[np.isfinite(_before)], _after[np.isfinite(_before)])
assert math.isclose(tau_evolved, result.best.heldout_kendall, abs_tol=1e-12)

# 3. the hand edit (made from code) reached the editor and the explorer
assert _text(edited) == _text(editor.expression) == _text(explorer.expression)
assert _text(edited) != _text(simplified) and "log(synflow)" in editor.text

# 4. the explorer's held-out tau and rho are score_expression's, recomputed here
assert (explorer.split.dataset, explorer.split.role) == ("cifar10", "heldout")
assert np.array_equal(explorer.split.arrays.indices, heldout.arrays.indices)
_again = _score(edited, heldout.arrays, heldout.truth)
assert math.isfinite(explorer_scores["kendall"])
assert math.isclose(explorer_scores["kendall"], _again["kendall"], abs_tol=1e-12)
assert math.isclose(explorer_scores["spearman"], _again["spearman"], abs_tol=1e-12)

# 5. CIFAR-100: its own held-out sample, on CIFAR-100 images where the data holds a minibatch
# of them, else on CIFAR-10 images standing in (the embedded default has none), as recorded
from gm_lab.inputs import load_minibatch as _minibatch

assert heldout100.dataset == "cifar100" and len(heldout100) > 10
assert tau100_edited == _score(edited, heldout100.arrays, heldout100.truth)["kendall"]
_own = _minibatch("cifar100", batch_size=BATCH)
assert data100.probe["cifar100"]["provenance"]["source"] == _own.source
assert data100.probe["cifar100"]["provenance"]["is_standin"] is _own.is_standin
assert not np.array_equal(heldout100.arrays.indices, heldout.arrays.indices)

# 6. the exported module holds the edited expression and scores as make_scorer does, and as
# the lab's cache (to the rounding of a padded sample row)
assert (folder / "my_proxy.py").read_text() == source
assert "def my_proxy(net, images, labels) -> float:" in source
assert my_proxy.EXPRESSION == _text(edited) and _text(edited) in my_proxy.my_proxy.__doc__
assert math.isfinite(exported_score) and exported_score == scorer_score
assert math.isclose(exported_score, lab_score, rel_tol=1e-9)
assert index == int(heldout.arrays.indices[np.nanargmax(heldout.scores(edited))])
assert math.isfinite(tiny_score)
"""


CHECKS["04-reproduce-greenmachine.ipynb"] = """
from gm_lab.benchmark import Benchmark as _Benchmark
assert (N, GENS, POP, BATCH) == (40, 4, 20, 8)
assert list(results) == DATASETS == ["cifar10", "cifar100"]
for _dataset, _result in results.items():
    assert _result.finished and _result.generation == GENS
    assert _result.config.sample == "stratified" and _result.config.bins == 10
    assert _result.samples["search"]["kind"] == _result.samples["heldout"]["kind"] == "stratified"
    assert -1 <= _result.best.heldout_kendall <= 1
    assert table.loc["evolved (best)", _dataset] == _result.best.heldout_kendall
    for _classic in _result.classic:
        assert table.loc[_classic.expr, _dataset] == _classic.heldout_kendall
assert len(table) == 1 + len(_result.config.proxies) and "synflow" in table.index
assert dict(beats) == {d: table.loc["evolved (best)", d] > best_classic[d] for d in DATASETS}
try:  # SSS ground truth where the data has it (the embedded default has none)
    _sss = _Benchmark.load("sss", progress=False).summary("cifar10")
except Exception:
    assert "sss_summary" not in globals()  # the notebook printed where it looked instead
else:
    assert sss_summary["n_archs"] == 32768
    assert sss_summary["n_with_ground_truth"] == _sss["n_with_ground_truth"]
"""


CHECKS["05-predict-accuracy.ipynb"] = """
import math

from gm_lab.predict import curve_table as _curve_table, scores as _scores, split as _split

assert (TRAIN, HELDOUT, CURVE_MAX, CURVE_SEEDS, N, BATCH) == (100, 300, 200, 2, 40, 8)

# 1. the widget ran in the background to the end; the split is the engine's, disjoint
assert isinstance(view, PredictorView) and state == view.state == "done" and not view.running
assert view.error is None and view.progress.value == view.progress.max
assert "data-state='done'" in view.status.value
assert run is view.result and run.predictor.feature_set == "arch" and run.predictor.model == "rf"
assert (len(train_idx), len(heldout_idx)) == (TRAIN, HELDOUT)
assert not set(train_idx.tolist()) & set(heldout_idx.tolist())
_again = _split(accuracy, TRAIN, HELDOUT, 0)
assert np.array_equal(_again.train, train_idx) and np.array_equal(_again.heldout, heldout_idx)
assert tau_predictor == run.metrics["kendall"] == _scores(run.predicted, run.truth)["kendall"]
assert tau_predictor > 0.5, tau_predictor  # data-free features rank TSS well from 100 labels
_points = [r for r in view.scatter.rows if r["layer"] == "point"]
assert [r["index"] for r in _points] == heldout_idx.tolist()
assert [r["predicted"] for r in _points] == run.predicted.tolist()

# 2. importances: the forest's, normalised, the top 15 in the chart
assert math.isclose(importances.sum(), 1.0, abs_tol=1e-9)
assert dict(importances) == run.predictor.importances()
assert [r["feature"] for r in view.importance_chart.rows] == list(importances.index[:15])

# 3. the learning curve: the requested sizes, each over CURVE_SEEDS seeds
assert list(curve.index) == [25, 50, 100, 200] == sizes
assert (curve["seeds"] == CURVE_SEEDS).all()
assert view.curve == _curve_table(view.curve_points) and len(view.curve_points) == 4 * CURVE_SEEDS
for _row in view.curve:
    assert curve.loc[_row["train_n"], "tau_mean"] == np.mean([r["kendall"] for r in _row["runs"]])
assert curve["tau_mean"].iloc[-1] > curve["tau_mean"].iloc[0]  # more labels, better ranking

# 4. predictor and proxies on the same N held-out architectures, recomputed
assert np.array_equal(arrays.indices, heldout_idx[:N]) and len(compare_idx) == N
assert np.array_equal(compare_truth, run.truth[:N])
_label = f"predictor ({TRAIN} labels)"
assert comparison.loc[_label, "kendall"] == metrics.kendall(run.predicted[:N], compare_truth)
_synflow = metrics.kendall(arrays.proxies["synflow"], compare_truth)
assert comparison.loc["synflow", "kendall"] == _synflow
assert comparison.loc["synflow", "labels"] == 0 and comparison.loc[_label, "labels"] == TRAIN
assert {"synflow", "naswot", "sed_like"} <= set(comparison.index)
assert best_proxy_tau == comparison.drop(index=_label)["kendall"].max()
assert scatter.kendall == comparison.loc["synflow", "kendall"]
assert len(scatter.chart.rows) == N
"""


def run_notebook(
    path: Path, checks: str, tmp_path: Path, timeout: int = 900
) -> nbformat.NotebookNode:
    """Execute `path` plus a `checks` cell in a fresh kernel (cwd: the notebooks folder);
    returns the executed notebook (outputs included)."""
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(checks))
    env_before = dict(os.environ)
    os.environ.update(SMALL)
    try:
        client = NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": str(NOTEBOOKS)}},
            store_widget_state=False,
        )
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(env_before)
    nbformat.write(nb, tmp_path / path.name)  # executed copy, for a look after a failure
    return nb


def outputs_text(nb: nbformat.NotebookNode) -> str:
    """All text outputs of an executed notebook, joined."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.append(out.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_every_notebook_has_checks() -> None:
    names = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    assert names, "no notebooks found"
    assert sorted(CHECKS) == names


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CHECKS))
def test_notebook_runs_and_shows_what_it_promises(name: str, tmp_path: Path) -> None:
    run_notebook(NOTEBOOKS / name, CHECKS[name], tmp_path)
