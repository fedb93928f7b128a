"""`CorrelationScatter`: proxy score against accuracy, with τ/ρ and the brushed architectures.

The spec stays fixed during live updates (the title with τ/ρ lives in an HTML label, not in the
spec), so each `update` only streams rows and a brush drawn by the user survives. Only changing
the x scale re-sends the spec: a brush in rank units means nothing in log units.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ipywidgets as w
import numpy as np

from gm_lab.metrics import kendall, spearman
from gm_lab.sampling import assign_bins, bin_edges
from gm_lab.widgets.charts import (
    SCALES,
    Scale,
    correlation_scatter,
    scatter_rows,
    scatter_title,
)
from gm_lab.widgets.vega import VegaChart, export

BRUSHED_SHOWN = 25  # rows listed under the chart; the rest are counted
STRATA = 10


class CorrelationScatter(w.VBox):
    """Score vs accuracy of one proxy on a sample; drag a box to list those architectures.

    `benchmark_accuracy` (all architectures of the space) fixes the accuracy bins that colour
    the points, so colours mean the same in every update; without it bins span the sample.
    """

    def __init__(
        self,
        benchmark_accuracy: np.ndarray | None = None,
        scale: Scale = "rank",
        renderer: str = "svg",
        **kwargs: Any,
    ) -> None:
        if scale not in SCALES:
            raise ValueError(f"unknown scale {scale!r}; choose one of {SCALES}")
        self._edges: np.ndarray | None = None
        if benchmark_accuracy is not None:
            acc = np.asarray(benchmark_accuracy, dtype=float)
            self._edges = bin_edges(acc[np.isfinite(acc)], STRATA)
        self.kendall = float("nan")
        self.spearman = float("nan")
        self.label = ""
        self._data: dict[str, np.ndarray] | None = None

        self.title = w.HTML(self._title_html(""))
        self.scale = w.ToggleButtons(
            options=[("rank", "rank"), ("log", "log")],
            value=scale,
            description="x scale",
            tooltips=["rank of the proxy score", "signed log10 |score|"],
            style={"button_width": "64px"},
        )
        self.chart = VegaChart(
            correlation_scatter(scale=scale), rows=[], key="index", renderer=renderer
        )
        self.brushed_html = w.HTML(self._brushed_html([]))
        super().__init__([self.title, self.scale, self.chart, self.brushed_html], **kwargs)
        self.add_class("gm-correlation-scatter")
        self.scale.observe(self._on_scale, names="value")
        self.chart.on_select(self._on_brush)

    # ---- data ---------------------------------------------------------------------------------
    def update(
        self,
        indices: Sequence[int] | np.ndarray,
        archs: Sequence[str] | np.ndarray,
        scores: Sequence[float] | np.ndarray,
        accuracy: Sequence[float] | np.ndarray,
        strata: Sequence[int] | np.ndarray | None = None,
        label: str = "",
    ) -> None:
        """Show new scores: τ/ρ as the engine computes them (failed scores rank worst)."""
        scores = np.asarray(scores, dtype=float)
        accuracy = np.asarray(accuracy, dtype=float)
        if strata is None and len(accuracy):
            edges = self._edges
            if edges is None:
                edges = bin_edges(accuracy, STRATA)
            strata = assign_bins(accuracy, edges)
        self._data = {
            "indices": np.asarray(indices, dtype=int),
            "archs": np.asarray(archs, dtype=object),
            "scores": scores,
            "accuracy": accuracy,
            "strata": None if strata is None else np.asarray(strata, dtype=int),
        }
        if len(scores) >= 2:
            self.kendall = kendall(scores, accuracy, nan_policy="worst")
            self.spearman = spearman(scores, accuracy, nan_policy="worst")
        else:
            self.kendall = self.spearman = float("nan")
        self.label = label
        rows = self._rows(self.scale.value)
        self.chart.set_rows(rows)
        self.title.value = self._title_html(self.title_text)

    def _rows(self, scale: Scale) -> list[dict]:
        d = self._data
        if d is None:
            return []
        return scatter_rows(
            d["indices"], d["archs"], d["scores"], d["accuracy"], d["strata"], scale
        )

    @property
    def title_text(self) -> str:
        """ "label · τ = … · ρ = … · n = …", the text of the label above the chart."""
        n = 0 if self._data is None else len(self._data["scores"])
        return scatter_title(self.kendall, self.spearman, self.label, n)

    @staticmethod
    def _title_html(text: str) -> str:
        return f'<div class="gm-scatter-title">{html.escape(text)}</div>'

    def _on_scale(self, change: dict) -> None:
        # a new axis: re-embed (the brush resets, its units changed) with rows in the new units
        with self.chart.hold_sync():
            self.chart.rows = self._rows(change["new"])
            self.chart.set_chart(correlation_scatter(scale=change["new"]))

    # ---- selection ----------------------------------------------------------------------------
    @property
    def brushed(self) -> list[dict]:
        """The architectures inside the brush: {index, arch, score, accuracy} each."""
        return [
            {k: r[k] for k in ("index", "arch", "score", "accuracy")}
            for r in self.chart.selected_rows()
        ]

    def _on_brush(self, selected: list[dict]) -> None:
        problem = self.chart.problem
        note = f"<div class='gm-note'>{html.escape(problem)}</div>" if problem else ""
        self.brushed_html.value = note + self._brushed_html(self.brushed)

    @staticmethod
    def _brushed_html(rows: list[dict]) -> str:
        if not rows:
            body = "<i>Drag a box on the chart to list architectures.</i>"
            return f'<div class="gm-scatter-brushed" data-count="0">{body}</div>'

        def num(v: float | None, fmt: str) -> str:
            return "NaN" if v is None or not math.isfinite(v) else format(v, fmt)

        lines = "".join(
            f"<tr><td>{r['index']}</td><td><code>{html.escape(str(r['arch']))}</code></td>"
            f"<td>{num(r['score'], '.4g')}</td><td>{num(r['accuracy'], '.2f')}</td></tr>"
            for r in rows[:BRUSHED_SHOWN]
        )
        more = len(rows) - BRUSHED_SHOWN
        tail = f"<div>… and {more} more</div>" if more > 0 else ""
        return (
            f'<div class="gm-scatter-brushed" data-count="{len(rows)}">'
            f"<b>{len(rows)} brushed</b>"
            '<table class="gm-scatter-brushed-table"><tr><th>index</th><th>arch</th>'
            f"<th>score</th><th>accuracy</th></tr>{lines}</table>{tail}</div>"
        )

    # ---- export -------------------------------------------------------------------------------
    def save(self, path: Path | str, scale: float = 2.0) -> Path:
        """PNG/SVG/PDF of the chart with τ/ρ as its title (the live spec has none)."""
        spec = correlation_scatter(title=self.title_text, scale=self.scale.value).to_dict()
        return export(spec, self.chart.rows, path, scale)
