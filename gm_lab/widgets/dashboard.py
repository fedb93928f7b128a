"""The search dashboard: controls, progress with ETA, fitness curves, hall of fame, best tree with
its τ and cost per architecture, its scatter (and, for a tau+cost search, the live Pareto front),
all following a `Search` that runs in a background thread.

The search thread only hands each `GenerationEvent` to a `Throttle`; the widgets are refreshed
from the latest event at most a few times per second, so the kernel stays free for other cells.
"""

from __future__ import annotations

import html
import math
import threading
from collections.abc import Iterable
from typing import Any

import ipywidgets as w
import numpy as np

from gm_lab.benchmark.spaces import DISPLAY_NAMES
from gm_lab.evolution import GenerationEvent, Search, SearchConfig
from gm_lab.evolution.fitness import Split
from gm_lab.expressions import parse
from gm_lab.sampling import assign_bins, bin_edges
from gm_lab.widgets.charts import fitness_chart, fitness_rows
from gm_lab.widgets.cost import CostLabel
from gm_lab.widgets.pareto import pareto_chart, pareto_rows
from gm_lab.widgets.scatter import CorrelationScatter
from gm_lab.widgets.throttle import Throttle
from gm_lab.widgets.tree_editor import ExpressionEditor
from gm_lab.widgets.vega import VegaChart

HOF_ROWS = 10
# JupyterLab's warning colour (a fixed amber outside JupyterLab): a note to notice, not an error
STANDIN_STYLE = "color: var(--jp-warn-color0, #b35c00); font-size: 90%"


class SearchDashboard(w.VBox):
    """Start / pause / resume / stop / step a search and watch it live.

    `SearchDashboard(SearchConfig(...))` or `SearchDashboard(search)`; `interval` is the least
    time between two refreshes of the view (seconds).
    """

    def __init__(self, search: Search | SearchConfig, interval: float = 0.25) -> None:
        self.search = search if isinstance(search, Search) else Search(search)
        self._lock = threading.Lock()
        self._curve_rows: list[dict[str, Any]] = []
        self._scatter_expr: str | None = None
        self.throttle: Throttle[GenerationEvent] = Throttle(self._show, interval)

        self.buttons = {
            name: _button(label, icon, f"gm-{name}")
            for name, label, icon in (
                ("start", "Start", "play"),
                ("pause", "Pause", "pause"),
                ("resume", "Resume", "play"),
                ("step", "Step", "step-forward"),
                ("stop", "Stop", "stop"),
            )
        }
        for name, button in self.buttons.items():
            button.on_click(getattr(self, f"_on_{name}"))
        gens = self.search.config.gens
        self.progress = w.IntProgress(value=0, min=0, max=gens + 1, layout={"width": "320px"})
        self.progress.add_class("gm-progress")
        self.status = w.HTML()
        self.status.add_class("gm-generation")
        self.message = w.HTML()
        self.message.add_class("gm-message")
        self.inputs = w.HTML(layout={"display": "none"})  # shown when images were a stand-in
        self.inputs.add_class("gm-inputs")
        self.curves = VegaChart(fitness_chart(), rows=[])
        self.hall_of_fame = w.HTML()
        self.hall_of_fame.add_class("gm-hof")
        self.best_tree = ExpressionEditor(readonly=True)
        self.best_score = w.HTML()  # τ of the best on the scatter's split, and its cost
        self.best_score.add_class("gm-best-score")
        self.cost = CostLabel(self.search.config.space)
        self.scatter = CorrelationScatter()
        # tau+cost: the front the engine reports, against the classic proxies (None otherwise)
        config = self.search.config
        self.pareto: VegaChart | None = None
        if config.objective == "tau+cost":
            self.pareto = VegaChart(pareto_chart("Pareto front", config.metric), rows=[])
            self.pareto.add_class("gm-pareto")
        super().__init__(
            [
                w.HBox([*self.buttons.values(), self.progress, self.status]),
                self.message,
                self.inputs,
                w.HBox([self.curves, self.scatter]),
                *([self.pareto] if self.pareto is not None else []),
                w.HBox([w.VBox([self.best_score, self.best_tree]), self.hall_of_fame]),
            ]
        )
        self.add_class("gm-dashboard")
        self._unsubscribe = self.search.subscribe(self._on_event)
        for event in self.search.history:  # a resumed search shows its past at once
            self._append_curves(event)
        self.curves.set_rows(list(self._curve_rows))
        if self.search.history:
            self._show_front(self.search.history[-1])
        self._refresh_status()

    # ---- controls (run in the kernel's main thread) -----------------------------------------
    def _on_start(self, _button: w.Button | None = None) -> None:
        self._act(self.search.start)

    def _on_pause(self, _button: w.Button | None = None) -> None:
        self._act(lambda: self.search.pause(wait=True, timeout=60))

    def _on_resume(self, _button: w.Button | None = None) -> None:
        self._act(self.search.resume)

    def _on_step(self, _button: w.Button | None = None) -> None:
        self._act(lambda: self.search.step(timeout=600))

    def _on_stop(self, _button: w.Button | None = None) -> None:
        self._act(lambda: self.search.stop(wait=True, timeout=60))

    def _act(self, action: Any) -> None:
        """Run a control; a refused one (wrong phase, failed search) is shown, not raised."""
        try:
            action()
            self.message.value = ""
        except Exception as exc:  # shown to the user: the dashboard must keep working
            self.message.value = f"<span class='gm-error'>{html.escape(str(exc))}</span>"
        self.throttle.flush()
        self._refresh_status()

    def start(self) -> SearchDashboard:
        """Start the search in the background (same as the Start button); returns self."""
        self._on_start()
        return self

    def close(self) -> None:
        self._unsubscribe()
        self.throttle.cancel()
        super().close()

    # ---- view updates (any thread, throttled) -------------------------------------------------
    def _on_event(self, event: GenerationEvent) -> None:
        """Every generation's point goes on the curves; the view is refreshed throttled."""
        with self._lock:
            self._append_curves(event)
        self.throttle.submit(event)

    def _show(self, event: GenerationEvent) -> None:
        with self._lock:
            rows = list(self._curve_rows)
        with self.hold_sync():
            self.curves.set_rows(rows)
            self.hall_of_fame.value = self._hof_html()
            if event.best_expr != self._scatter_expr:
                self._show_best(event.best_expr)
            self._show_front(event)
            self._refresh_status(event)

    def _show_front(self, event: GenerationEvent) -> None:
        """The event's Pareto front and the classic proxies as reference points (drawn only)."""
        if self.pareto is not None:
            self.pareto.set_rows(pareto_rows(event.front, self.search.reference_points()))

    def _append_curves(self, event: GenerationEvent) -> None:
        """Best and mean fitness, and the best expression's held-out τ (when there is one)."""
        values = {"best": event.stats.best, "mean": event.stats.mean}
        if event.heldout_kendall is not None and math.isfinite(event.heldout_kendall):
            values["held_out"] = event.heldout_kendall
        self._curve_rows.extend(fitness_rows(event.generation, **values))

    def _show_best(self, expr: str) -> None:
        """Draw the best tree and its scatter on the held-out split (else the search split),
        with its τ there and what it costs per architecture at use time."""
        tree = parse(expr)
        self.best_tree.set_expression(tree)
        split = _display_split(self.search)
        if split is not None:
            self.scatter.update(
                split.arrays.indices,
                split.arrays.archs,
                split.scores(tree),
                split.truth,
                strata=_strata(self.search, split),
                label=f"{split.dataset} {split.role}",
            )
            cost = self.cost.html(tree, self.search.config.datasets[0])
            self.best_score.value = (
                f"best: <b>τ {_fmt(self.scatter.kendall)}</b> ({split.dataset} {split.role})"
                + (f" · {cost}" if cost else "")
            )
        self._scatter_expr = expr

    def _hof_html(self) -> str:
        try:
            result = self.search.result()
        except Exception:  # not prepared yet
            return ""
        rows = "".join(
            f"<tr><td>{rank}</td><td><code>{html.escape(r.expr)}</code></td><td>{r.size}</td>"
            f"<td>{_fmt(r.search_kendall)}</td><td>{_fmt(r.search_spearman)}</td>"
            f"<td>{_fmt(r.heldout_kendall)}</td></tr>"
            for rank, r in enumerate(result.hall_of_fame[:HOF_ROWS], 1)
        )
        return (
            "<table class='gm-hof-table'><tr><th>#</th><th>expression</th><th>size</th>"
            "<th>τ search</th><th>ρ search</th><th>τ held-out</th></tr>" + rows + "</table>"
        )

    def _show_inputs(self) -> None:
        """The stand-in note, hidden while every dataset's own images were used (no empty row,
        and a note that appears is noticed)."""
        data = self.search.data
        note = standin_html(data.splits if data is not None else [])
        self.inputs.value = note
        self.inputs.layout.display = None if note else "none"

    def _refresh_status(self, event: GenerationEvent | None = None) -> None:
        search = self.search
        event = event or (search.history[-1] if search.history else None)
        gens = search.config.gens
        generation = max(search.generation, -1)
        self.progress.value = generation + 1
        eta = ""
        if event is not None and event.generation > 0 and not event.done:
            per_gen = event.elapsed / (event.generation + 1)
            eta = f" · ETA {_clock(per_gen * (gens - event.generation))}"
        best = "" if event is None else f" · best {event.stats.best:+.4f}"
        phase = search.phase
        if event is not None and event.done and phase == "running":
            phase = "finished"  # the last generation is in; the thread is only winding up
        self.status.value = (
            f"<span class='gm-gen' data-generation='{generation}'>generation "
            f"{max(generation, 0)} / {gens}</span>{best}{eta} · "
            f"<span class='gm-phase'>{phase}</span>"
        )
        self._show_inputs()
        error = search.error
        if error is not None:
            self.message.value = (
                f"<span class='gm-error'>search failed: {html.escape(repr(error))}</span>"
            )


def standin_html(splits: Iterable[Split]) -> str:
    """One note per dataset whose own images were absent ("CIFAR-100: stand-in images:
    CIFAR-10"), so that no score in the view is taken for a real-image figure; "" if none."""
    notes = {s.dataset: s.standin_label for s in splits if s.standin_label}
    return "".join(
        f"<span class='gm-standin' style='{STANDIN_STYLE}'>"
        f"{html.escape(DISPLAY_NAMES.get(dataset, dataset))}: {html.escape(label)}</span> "
        for dataset, label in notes.items()
    )


def _display_split(search: Search) -> Split | None:
    data = search.data
    if data is None:
        return None
    heldout = data.select("heldout", searched=True)
    return (heldout or data.search_splits or [None])[0]


def _strata(search: Search, split: Split) -> np.ndarray:
    """Accuracy bin of each architecture: the search sample's bins if stratified, else deciles
    of the split's own accuracy range."""
    data = search.data
    edges = data.search_sample.bin_edges if data is not None else None
    if edges is None:
        edges = bin_edges(split.truth, search.config.bins)
    return assign_bins(split.truth, edges)


def _button(label: str, icon: str, css: str) -> w.Button:
    button = w.Button(description=label, icon=icon, layout={"width": "90px"})
    button.add_class(css)
    return button


def _fmt(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.3f}"


def _clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60:02d}:{seconds % 60:02d}"
