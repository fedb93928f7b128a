"""The composed widgets on a real (small) probed sample: throttling, the dashboard following a live
search, the explorer rescoring edits, and the Lab wiring them together."""

from __future__ import annotations

import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from gm_lab.benchmark import Benchmark
from gm_lab.evolution import Search, SearchConfig, load_data
from gm_lab.expressions import parse, score_expression
from gm_lab.inputs import StandInImagesWarning
from gm_lab.widgets import Lab, ProxyExplorer, SearchDashboard
from gm_lab.widgets.throttle import Throttle


def wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# ---- throttle -----------------------------------------------------------------------------------
def test_throttle_coalesces_a_burst_and_always_delivers_the_last_value() -> None:
    pushed: list[int] = []
    throttle = Throttle(pushed.append, interval=0.2)
    for i in range(1000):
        throttle.submit(i)
    assert pushed == [0]  # the first goes at once, the rest wait for the interval
    wait_until(lambda: pushed[-1] == 999, timeout=2)
    assert len(pushed) == 2  # ... and only the latest of them is pushed


def test_throttle_from_many_threads_keeps_order_and_rate() -> None:
    pushed: list[tuple[int, int]] = []
    throttle = Throttle(pushed.append, interval=0.05)

    def producer(k: int) -> None:
        for i in range(200):
            throttle.submit((k, i))
            time.sleep(0.001)

    threads = [threading.Thread(target=producer, args=(k,)) for k in range(3)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    throttle.flush()
    seconds = time.monotonic() - began
    assert len(pushed) <= seconds / 0.05 + 3  # never more than one push per interval
    assert pushed[-1][1] == 199


def test_throttle_flush_and_cancel() -> None:
    pushed: list[str] = []
    throttle = Throttle(pushed.append, interval=10)
    throttle.submit("a")
    throttle.submit("b")
    throttle.flush()
    assert pushed == ["a", "b"]
    throttle.submit("c")
    throttle.cancel()
    throttle.flush()
    assert pushed == ["a", "b"]
    with pytest.raises(ValueError, match="positive"):
        Throttle(pushed.append, interval=0)


# ---- a small real sample ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def bench(tss_table: Path) -> Benchmark:
    return Benchmark.from_table(tss_table, "tss")


@pytest.fixture(scope="module")
def small_config(tmp_path_factory: pytest.TempPathFactory, bench: Benchmark):
    """Stratified 20 + 20 TSS CIFAR-10 architectures at batch 8, probed once."""
    root = tmp_path_factory.mktemp("widget-cache")
    config = SearchConfig(
        n_search=20,
        n_heldout=20,
        batch_size=8,
        pop=20,
        gens=4,
        workers=2,
        cache_dir=str(root / "probe"),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StandInImagesWarning)
        load_data(config, bench)
    return config


def test_dashboard_follows_a_search_to_its_end(small_config, bench) -> None:
    search = Search(small_config, benchmark=bench)
    dashboard = SearchDashboard(search, interval=0.05)
    assert "generation 0 / 4" in dashboard.status.value
    dashboard.start()
    result = search.wait(timeout=120)
    dashboard.throttle.flush()
    assert search.phase == "finished"
    assert dashboard.progress.value == dashboard.progress.max == 5
    assert "data-generation='4'" in dashboard.status.value
    assert "finished" in dashboard.status.value
    # curves: best / mean / held-out per generation, as the events said
    rows = dashboard.curves.rows
    best = [r["value"] for r in rows if r["series"] == "best"]
    assert best == [e.stats.best for e in search.history]
    # best tree and hall of fame agree with the result
    assert dashboard.best_tree.text == result.best.expr
    assert result.best.expr.replace("*", "") in dashboard.hall_of_fame.value.replace("*", "")
    # the scatter shows the best on the held-out split with its τ
    assert dashboard.scatter.kendall == pytest.approx(result.best.heldout_kendall)
    assert dashboard.inputs.value == ""  # CIFAR-10's own images: nothing to say
    dashboard.close()


def test_stand_in_images_and_degenerate_scores_are_said_in_the_widgets(
    tmp_path: Path, bench: Benchmark
) -> None:
    """ImageNet16-120 has no images in the data folder: CIFAR-10 stands in, and both widgets say
    so; a constant expression is explained where its τ would be."""
    config = SearchConfig(
        datasets="ImageNet16-120",
        sample="random",
        n_search=6,
        n_heldout=0,
        batch_size=8,
        pop=6,
        gens=1,
        workers=0,
        cache_dir=str(tmp_path / "probe"),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StandInImagesWarning)
        search = Search(config, benchmark=bench)
        search.prepare()
    dashboard = SearchDashboard(search, interval=0.05)
    assert "ImageNet16-120: stand-in images: CIFAR-10" in dashboard.inputs.value
    explorer = ProxyExplorer(search.data.splits, expression="naswot - naswot")
    assert "stand-in images: CIFAR-10" in explorer.scores.value
    assert "constant over the sample" in explorer.scores.value
    assert "stand-in images: CIFAR-10" in explorer.baseline_scores.value
    explorer.editor.set_expression(parse("naswot"))
    assert "constant" not in explorer.scores.value
    dashboard.close()


def test_dashboard_controls_pause_resume_stop_and_report_refusals(small_config, bench) -> None:
    search = Search(small_config.with_changes(gens=10_000), benchmark=bench)
    dashboard = SearchDashboard(search, interval=0.05)
    dashboard.buttons["start"].click()
    wait_until(lambda: search.generation >= 2)
    dashboard.buttons["pause"].click()
    assert search.phase == "paused"
    paused_at = search.generation
    time.sleep(0.3)
    assert search.generation == paused_at
    assert "paused" in dashboard.status.value
    dashboard.buttons["step"].click()
    assert search.generation == paused_at + 1
    dashboard.buttons["resume"].click()
    wait_until(lambda: search.generation >= paused_at + 3)
    dashboard.buttons["start"].click()  # already running: refused, shown, not raised
    assert "already running" in dashboard.message.value
    dashboard.buttons["stop"].click()
    assert search.phase == "stopped"
    assert "stopped" in dashboard.status.value
    dashboard.close()


def test_dashboard_updates_are_throttled(small_config, bench) -> None:
    search = Search(small_config.with_changes(gens=60), benchmark=bench)
    dashboard = SearchDashboard(search, interval=0.25)
    began = time.monotonic()
    search.run()
    seconds = time.monotonic() - began
    dashboard.throttle.flush()
    assert dashboard.throttle.pushes <= seconds / 0.25 + 2 < 61
    assert "data-generation='60'" in dashboard.status.value
    dashboard.close()


def test_explorer_rescores_edits_fast_and_like_the_engine(small_config, bench) -> None:
    explorer = ProxyExplorer(
        load_data(small_config, bench).splits, expression="mean(snip_l)", baseline="synflow"
    )
    split = explorer.split
    assert split.role == "heldout"
    first = explorer.scatter.kendall
    expected = score_expression(parse("mean(snip_l)"), split.arrays, split.truth)
    assert first == pytest.approx(expected["kendall"])
    # an edit from the tree editor (as the front end proposes it) is rescored at once
    explorer.editor.proposal = {
        "tree": {
            "kind": "op",
            "name": "mean",
            "args": [{"kind": "stat", "name": "grad_norm_l"}],
        },
        "seq": 1,
    }
    expected = score_expression(parse("mean(grad_norm_l)"), split.arrays, split.truth)
    assert explorer.scatter.kendall == pytest.approx(expected["kendall"])
    assert f"{expected['kendall']:.3f}" in explorer.scores.value
    assert explorer.last_seconds < 0.5
    # an invalid edit is shown and changes nothing
    explorer.editor.proposal = {"text": "mean(grad_norm_l", "seq": 2}
    assert explorer.editor.error
    assert explorer.scatter.kendall == pytest.approx(expected["kendall"])
    # the baseline is the classic proxy's own values
    synflow = np.asarray(split.arrays.proxies["synflow"])
    from gm_lab.metrics import kendall

    assert explorer.baseline_scatter.kendall == pytest.approx(
        kendall(synflow, split.truth, nan_policy="worst")
    )
    # picking a classic proxy puts it in the editor and rescores
    explorer.picker.value = "naswot"
    assert explorer.editor.text == "naswot"
    assert explorer.scatter.kendall == pytest.approx(
        kendall(np.asarray(split.arrays.proxies["naswot"]), split.truth, nan_policy="worst")
    )
    # switching to the search split rescores there
    explorer.split_picker.value = next(k for k in explorer.splits if k.endswith("/search"))
    assert len(explorer.scatter.chart.rows) == len(explorer.split)


def test_lab_composes_dashboard_sample_and_explorer(small_config, bench) -> None:
    lab = Lab(Search(small_config, benchmark=bench))
    assert [lab.get_title(i) for i in range(3)] == ["Search", "Sample", "Explore"]
    lab.search.run()
    explorer = lab.explore()
    assert lab.children[2] is explorer
    assert lab.strata is not None and lab.children[1] is lab.strata
    labels = [label for label, _ in explorer.picker.options]
    assert any(label.startswith("#1 ") for label in labels)
    lab.close()


def test_main_thread_stays_responsive_while_the_dashboard_follows_a_search(
    small_config, bench
) -> None:
    search = Search(small_config.with_changes(gens=10_000), benchmark=bench)
    dashboard = SearchDashboard(search, interval=0.25)
    dashboard.start()
    wait_until(lambda: search.generation >= 1)
    delays = []
    for _ in range(100):  # what another notebook cell feels: 10 ms naps, measured
        began = time.perf_counter()
        time.sleep(0.01)
        delays.append(time.perf_counter() - began - 0.01)
    generations = search.generation
    dashboard.buttons["stop"].click()
    assert generations >= 3  # the search really ran meanwhile
    assert float(np.median(delays)) < 0.02
    # unthrottled pushes stalled cells for seconds; allow a rare scheduler hiccup on 2 cores
    assert max(delays) < 1.0
    dashboard.close()
