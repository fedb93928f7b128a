"""`StratifiedSampleView`: where the search and held-out samples sit in the accuracy range.

A proxy must separate bad from good networks, so samples are stratified by accuracy; this view
shows the whole space's accuracy distribution, the bin edges, and how many architectures each
sample took per bin (chart and table), to check that no accuracy range is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ipywidgets as w
import numpy as np

from gm_lab.sampling import Sample, assign_bins
from gm_lab.widgets.charts import sample_counts, strata_chart, strata_edges, strata_rows
from gm_lab.widgets.vega import VegaChart, export


class StratifiedSampleView(w.VBox):
    """Whole-space accuracy histogram, bin edges, and per-bin counts of the two samples."""

    def __init__(
        self,
        accuracy_all: np.ndarray,
        search: Sample | None = None,
        heldout: Sample | None = None,
        bins: int = 10,
        title: str = "",
        renderer: str = "svg",
        **kwargs: Any,
    ) -> None:
        self.accuracy_all = np.asarray(accuracy_all, dtype=float)
        self.bins = bins
        self.title = title
        self.search: Sample | None = None
        self.heldout: Sample | None = None
        self.edges = strata_edges(self.accuracy_all, search, heldout, bins)
        self.chart = VegaChart(strata_chart(title=title), rows=[], renderer=renderer)
        self.table = w.HTML()
        super().__init__([self.chart, self.table], **kwargs)
        self.add_class("gm-strata-view")
        self.update(search, heldout)

    def update(self, search: Sample | None, heldout: Sample | None) -> None:
        """Show new samples (bin edges follow theirs when they carry some)."""
        self.search, self.heldout = search, heldout
        self.edges = strata_edges(self.accuracy_all, search, heldout, self.bins)
        rows = strata_rows(self.accuracy_all, self.edges, search, heldout)
        self.chart.set_rows(rows)
        self.table.value = self._table_html()

    @property
    def counts(self) -> dict[str, np.ndarray]:
        """Architectures per bin: of the whole space, of the search and of the held-out sample."""
        acc = self.accuracy_all[np.isfinite(self.accuracy_all)]
        k = len(self.edges) - 1
        return {
            "space": np.bincount(assign_bins(acc, self.edges), minlength=k),
            "search": sample_counts(self.accuracy_all, self.edges, self.search),
            "held-out": sample_counts(self.accuracy_all, self.edges, self.heldout),
        }

    def _table_html(self) -> str:
        counts = self.counts
        head = (
            "<tr><th>bin</th><th>accuracy (%)</th><th>space</th><th>search</th>"
            "<th>held-out</th></tr>"
        )
        lines = "".join(
            f'<tr data-bin="{b}"><td>{b}</td>'
            f"<td>{self.edges[b]:.2f} – {self.edges[b + 1]:.2f}</td>"
            f"<td>{counts['space'][b]}</td><td>{counts['search'][b]}</td>"
            f"<td>{counts['held-out'][b]}</td></tr>"
            for b in range(len(self.edges) - 1)
        )
        total = (
            f"<tr><th>all</th><th></th><th>{counts['space'].sum()}</th>"
            f"<th>{counts['search'].sum()}</th><th>{counts['held-out'].sum()}</th></tr>"
        )
        return f'<table class="gm-strata-table">{head}{lines}{total}</table>'

    def save(self, path: Path | str, scale: float = 2.0) -> Path:
        """PNG/SVG/PDF of the chart with the current samples."""
        return export(self.chart.spec, self.chart.rows, path, scale)
