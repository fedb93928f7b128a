"""The Pareto front chart of a tau+cost search: correlation against seconds per architecture.

Pure chart and row builders (no widget): the search emits its front in every `GenerationEvent`
and its classic proxies as reference points (`Search.reference_points`); the dashboard turns
them into rows here and streams them into one `VegaChart`. The front is drawn as a staircase
(what a cost budget buys: the best correlation at or below each cost), its members as large
dots, the classic proxies as grey squares with their names, every mark with the expression in
its tooltip.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import altair as alt

DATASET = "rows"  # the named dataset every gm_lab chart reads (gm_lab.widgets.vega)
LAYERS = ("front", "classic")


def _num(value: Any) -> float | None:
    """A JSON-safe float: None for missing, NaN or inf values."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def pareto_chart(
    title: str = "", metric: str = "kendall", width: int = 420, height: int = 300
) -> alt.LayerChart:
    """Search-sample correlation (y) against cost in seconds per architecture (x) from
    `pareto_rows`: the front joined as a staircase and highlighted, the classic proxies as
    labelled reference points."""
    symbol = "τ" if metric == "kendall" else "ρ"
    x = alt.X("cost:Q", title="seconds per architecture (probe passes needed)")
    y = alt.Y("fitness:Q", title=f"{symbol} on the search sample", scale=alt.Scale(zero=False))
    tooltip = [
        alt.Tooltip("expr:N", title="expression"),
        alt.Tooltip("fitness:Q", title=f"search {symbol}", format=".4f"),
        alt.Tooltip("heldout:Q", title="held-out τ", format=".4f"),
        alt.Tooltip("cost:Q", title="s / arch", format=".4g"),
        alt.Tooltip("cost_ratio:Q", title="× forward+backward", format=".2f"),
        alt.Tooltip("layer:N", title="kind"),
    ]
    front = alt.Chart().transform_filter(alt.datum.layer == "front")
    classic = alt.Chart().transform_filter(alt.datum.layer == "classic")
    staircase = front.mark_line(interpolate="step-after", color="#e45756", strokeWidth=2).encode(
        x=x, y=y, order=alt.Order("cost:Q")
    )
    members = front.mark_circle(size=90, color="#e45756", opacity=0.95).encode(
        x=x, y=y, tooltip=tooltip
    )
    references = classic.mark_square(size=50, color="#888", opacity=0.8).encode(
        x=x, y=y, tooltip=tooltip
    )
    labels = classic.mark_text(align="left", dx=6, dy=-4, fontSize=10, color="#666").encode(
        x=x, y=y, text="expr:N"
    )
    chart = alt.layer(
        references, labels, staircase, members, data=alt.NamedData(name=DATASET)
    ).properties(width=width, height=height)
    return chart.properties(title=title) if title else chart


def pareto_rows(
    front: Iterable[Mapping[str, Any]], references: Iterable[Mapping[str, Any]] = ()
) -> list[dict[str, Any]]:
    """Rows for `pareto_chart` from a `GenerationEvent.front` and `Search.reference_points()`
    (dicts with "expr", "fitness", "cost", "cost_ratio" and, for front members,
    "heldout_kendall"); points without a finite correlation or cost are left out."""
    rows = []
    for layer, points in (("front", front), ("classic", references)):
        for point in points:
            fitness, cost = _num(point.get("fitness")), _num(point.get("cost"))
            if fitness is None or cost is None:
                continue
            rows.append(
                {
                    "layer": layer,
                    "expr": str(point["expr"]),
                    "fitness": fitness,
                    "cost": cost,
                    "cost_ratio": _num(point.get("cost_ratio")),
                    "heldout": _num(point.get("heldout_kendall")),
                }
            )
    return rows
