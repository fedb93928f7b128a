"""The widgets in a real JupyterLab and a real chromium: edit a tree and see it rescored, pause and
resume a live search, an invalid expression's error, and a non-blank screenshot of each widget.

The notebooks use the same small sample (stratified 30 + 30 on TSS CIFAR-10, batch 8), probed
once into the server's cache by whichever test runs first.
"""

from __future__ import annotations

import re
import time

import pytest

from .conftest import (
    assert_no_news_or_notifications,
    open_and_run,
    panel,
    screenshot,
    wait_for_file_lines,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CONFIG = "SearchConfig(n_search=30, n_heldout=30, batch_size=8, pop=40, gens={gens}, workers=2)"
SETUP = """
import json, pathlib
from gm_lab.evolution import Search, SearchConfig
from gm_lab.widgets import ProxyExplorer, SearchDashboard, StratifiedSampleView, Lab
"""


def wait_for_phase(page, phase: str) -> None:
    """Until the dashboard's status shows the search in `phase`."""
    page.wait_for_function(
        "p => [...document.querySelectorAll('.gm-dashboard .gm-phase')]"
        ".some(e => e.textContent.trim() === p)",
        arg=phase,
        timeout=30_000,
    )


def _tau(page) -> float:
    text = panel(page).locator(".gm-explorer .gm-tau-value").first.inner_text()
    return float(text)


def test_tree_edit_is_rescored_and_invalid_text_is_refused(page, jupyter_lab) -> None:
    log = jupyter_lab.root / "explorer-events.jsonl"
    notebook = jupyter_lab.write_notebook(
        "explorer.ipynb",
        [
            SETUP,
            f"explorer = ProxyExplorer.for_sample({CONFIG.format(gens=1)}, "
            "expression='mean(snip_l)')\n"
            "def record(tree):\n"
            "    with open('explorer-events.jsonl', 'a') as f:\n"
            "        f.write(json.dumps({'text': explorer.editor.text,\n"
            "                            'tau': explorer.scatter.kendall}) + '\\n')\n"
            "explorer.editor.on_change(record)\n"
            "explorer",
        ],
    )
    open_and_run(page, jupyter_lab, notebook)
    view = panel(page).locator(".gm-explorer")
    leaf = view.locator('.gm-tree-editor g.gm-node[data-path="r.0"]')
    leaf.wait_for(timeout=240_000)
    view.locator(".gm-vega-chart[data-rendered='1']").first.wait_for(timeout=60_000)
    before = _tau(page)
    assert -1.0 <= before <= 1.0

    leaf.click()
    view.locator('.gm-palette-item[data-name="grad_norm_l"]').click()
    (event,) = wait_for_file_lines(log, 1)
    assert event["text"] == "mean(grad_norm_l)"  # the kernel received the new tree
    page.wait_for_function(
        "t => { const e = document.querySelector('.gm-explorer .gm-tau-value');"
        " return e && e.textContent.trim() === t; }",
        arg=f"{event['tau']:.3f}",
        timeout=10_000,
    )
    assert _tau(page) != before  # snip and grad_norm rank these archs differently
    screenshot(view, "explorer")
    assert_no_news_or_notifications(page)
    screenshot(view.locator(".gm-tree-editor").first, "tree-editor")
    screenshot(view.locator(".gm-vega-chart").first, "correlation-scatter")

    text = view.locator(".gm-tree-text").first
    text.fill("mean(grad_norm_l")
    text.press("Enter")
    error = view.locator(".gm-tree-error").first
    error.wait_for(state="visible", timeout=10_000)
    assert re.search(r"column|position|expected|\)", error.inner_text())
    time.sleep(1.0)
    assert len(wait_for_file_lines(log, 1)) == 1  # the invalid text never reached the engine
    screenshot(view.locator(".gm-tree-editor").first, "tree-editor-error")


def test_pause_and_resume_a_live_search(page, jupyter_lab) -> None:
    notebook = jupyter_lab.write_notebook(
        "dashboard.ipynb",
        [
            SETUP,
            f"search = Search({CONFIG.format(gens=100_000)})\n"
            "search.prepare()\n"
            "dashboard = SearchDashboard(search)\n"
            "dashboard",
        ],
    )
    open_and_run(page, jupyter_lab, notebook)
    view = panel(page).locator(".gm-dashboard")
    view.locator(".gm-start button, button.gm-start").first.wait_for(timeout=240_000)

    def generation() -> int:
        return int(view.locator(".gm-gen").first.get_attribute("data-generation"))

    def wait_generation_above(value: int, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (g := generation()) > value:
                return g
            time.sleep(0.2)
        raise AssertionError(f"generation stayed at {generation()} (expected > {value})")

    view.locator("button.gm-start").click()
    running = wait_generation_above(3)
    view.locator(".gm-vega-chart[data-rendered='1']").first.wait_for(timeout=30_000)
    screenshot(view, "dashboard")
    assert_no_news_or_notifications(page)

    view.locator("button.gm-pause").click()
    wait_for_phase(page, "paused")
    paused_at = generation()
    assert paused_at >= running
    time.sleep(2.0)
    assert generation() == paused_at  # the counter stopped

    view.locator("button.gm-resume").click()
    wait_generation_above(paused_at + 2)  # and runs again
    view.locator("button.gm-stop").click()
    wait_for_phase(page, "stopped")


def test_sample_view_and_lab_render(page, jupyter_lab) -> None:
    notebook = jupyter_lab.write_notebook(
        "lab.ipynb",
        [
            SETUP,
            f"search = Search({CONFIG.format(gens=3)})\n"
            "data = search.prepare()\n"
            "from gm_lab.benchmark import Benchmark\n"
            "strata = StratifiedSampleView(Benchmark.load('tss').accuracy('cifar10'),\n"
            "                              data.search_sample, data.heldout_sample)\n"
            "strata",
            "lab = Lab(search)\nlab.explore()\nlab",
        ],
    )
    open_and_run(page, jupyter_lab, notebook)
    chart = panel(page).locator(".gm-vega-chart[data-rendered='1']").first
    chart.wait_for(timeout=240_000)
    screenshot(chart, "stratified-sample")
    lab = panel(page).locator(".gm-lab")
    lab.wait_for(timeout=60_000)
    screenshot(lab, "lab")
    assert_no_news_or_notifications(page)


def test_predictor_view_trains_from_its_button_and_draws_every_heldout_point(
    page, jupyter_lab
) -> None:
    notebook = jupyter_lab.write_notebook(
        "predictor.ipynb",
        [
            "from gm_lab.widgets import PredictorView\n"
            "predictor = PredictorView(train_n=40, heldout_n=60)\n"
            "predictor",
        ],
    )
    open_and_run(page, jupyter_lab, notebook)
    view = panel(page).locator(".gm-predictor")
    view.locator("button.gm-train").wait_for(timeout=120_000)
    view.locator("button.gm-train").click()
    view.locator(".gm-state[data-state='done']").wait_for(timeout=60_000)
    scatter = view.locator(".gm-vega-chart").first
    page.wait_for_function(
        "el => el.querySelectorAll('path[role=graphics-symbol]').length >= 60",
        arg=scatter.element_handle(),
        timeout=30_000,
    )
    assert "τ = " in view.locator(".gm-predictor-metrics").inner_text()
    screenshot(view, "predictor")
