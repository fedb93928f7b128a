"""`NasChart`: where each method's zero-cost NAS picks sit among the candidates, accuracy against
latency (a thin view on gm_lab.nas.protocol; `gm-lab nas` runs the same protocol).

Why accuracy against latency: under a hardware limit a proxy is good when it finds the upper
edge of the cloud left of the limit; a proxy that favours big networks piles its picks against
the limit, one blind to the cell's wiring picks low. Candidates (the union of all runs' draws
meeting the limits) are grey; each method's distinct picks are coloured and sized by how many
runs picked them; the limit is a dashed rule. Offline like every chart here (`VegaChart`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import altair as alt
import numpy as np

from gm_lab.nas.protocol import NO_PICK, NasResult
from gm_lab.widgets.vega import DATASET, VegaChart

LAYERS = ("candidate", "pick", "limit")


def _num(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def nas_rows(
    result: NasResult,
    accuracy: np.ndarray,
    latency: np.ndarray,
    limit: float | None = None,
    archs: Sequence[str] | np.ndarray | None = None,
) -> list[dict]:
    """Rows for `nas_chart`: one per candidate, one per (method, distinct pick) with how many
    runs picked it, and the limit (whole-space `accuracy` and `latency` vectors)."""
    accuracy = np.asarray(accuracy, dtype=float)
    latency = np.asarray(latency, dtype=float)

    def base(index: int) -> dict[str, Any]:
        row = {
            "index": int(index),
            "accuracy": _num(accuracy[index]),
            "latency": _num(latency[index]),
        }
        if archs is not None:
            row["arch"] = str(archs[index])
        return row

    rows = [{"layer": "candidate", **base(i)} for i in result.draws.needed()]
    for name, method in result.methods.items():
        picked = method.picks[method.picks != NO_PICK]
        indices, counts = np.unique(picked, return_counts=True)
        rows += [
            {"layer": "pick", "method": name, "count": int(c), **base(i)}
            for i, c in zip(indices, counts, strict=True)
        ]
    if limit is not None:
        rows.append({"layer": "limit", "latency": float(limit)})
    return rows


def nas_chart(
    methods: Sequence[str],
    x_title: str = "latency (ms)",
    title: str = "",
    width: int = 460,
    height: int = 320,
) -> alt.LayerChart:
    """Candidates, picks per method (colour; size: runs that picked it) and the limit, all read
    from the named dataset "rows" (field "layer" tells them apart)."""
    x = alt.X("latency:Q", title=x_title, scale=alt.Scale(zero=False))
    y = alt.Y("accuracy:Q", title="test accuracy (%)", scale=alt.Scale(zero=False))
    tooltip = [
        alt.Tooltip("index:Q", title="index"),
        alt.Tooltip("accuracy:Q", format=".2f"),
        alt.Tooltip("latency:Q", format=".3f"),
    ]
    candidates = (
        alt.Chart()
        .transform_filter(alt.datum.layer == "candidate")
        .mark_circle(size=10, color="#b8c0c8", opacity=0.5)
        .encode(x=x, y=y, tooltip=tooltip)
    )
    picks = (
        alt.Chart()
        .transform_filter(alt.datum.layer == "pick")
        .mark_circle(opacity=0.85, stroke="white", strokeWidth=0.5)
        .encode(
            x=x,
            y=y,
            color=alt.Color(
                "method:N",
                title="picked by",
                scale=alt.Scale(domain=list(methods), scheme="category10"),
            ),
            size=alt.Size(
                "count:Q",
                title="runs",
                scale=alt.Scale(range=[30, 300]),
                legend=alt.Legend(format="d", tickMinStep=1),
            ),
            tooltip=[alt.Tooltip("method:N"), alt.Tooltip("count:Q", title="runs"), *tooltip],
        )
    )
    limit = (
        alt.Chart()
        .transform_filter(alt.datum.layer == "limit")
        .mark_rule(color="#c0392b", strokeDash=[5, 3])
        .encode(x="latency:Q", tooltip=[alt.Tooltip("latency:Q", title="limit", format=".3g")])
    )
    chart = alt.layer(candidates, picks, limit, data=alt.NamedData(name=DATASET)).properties(
        width=width, height=height
    )
    return chart.properties(title=title) if title else chart


class NasChart(VegaChart):
    """Accuracy against latency of the candidates, each method's picks highlighted."""

    def __init__(
        self,
        result: NasResult,
        accuracy: np.ndarray,
        latency: np.ndarray,
        limit: float | None = None,
        x_title: str = "latency (ms)",
        title: str = "",
        archs: Sequence[str] | np.ndarray | None = None,
        renderer: str = "canvas",  # thousands of candidates: canvas draws them faster than SVG
        **kwargs: Any,
    ) -> None:
        chart = nas_chart(list(result.methods), x_title=x_title, title=title)
        rows = nas_rows(result, accuracy, latency, limit, archs)
        super().__init__(chart, rows=rows, renderer=renderer, **kwargs)
        self._view = (np.asarray(accuracy, dtype=float), np.asarray(latency, dtype=float), archs)
        self.limit = limit
        self.x_title = x_title
        self.title_text = title
        self.result = result

    def show(self, result: NasResult) -> None:
        """Show another result of the same space (new rows; the spec is kept unless the
        methods changed)."""
        accuracy, latency, archs = self._view
        if list(result.methods) != list(self.result.methods):
            self.set_chart(nas_chart(list(result.methods), self.x_title, self.title_text))
        self.result = result
        self.set_rows(nas_rows(result, accuracy, latency, self.limit, archs))
