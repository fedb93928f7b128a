"""Altair chart builders and the rows they plot: pure functions, no widgets.

Every chart reads the named dataset "rows" (no inline data), so `VegaChart` can stream rows into
a live view with a Vega changeset instead of re-embedding it (which would reset a brush). The
row builders turn numpy arrays into JSON-ready dicts (NaN becomes None: JSON has no NaN).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import altair as alt
import numpy as np
from scipy import stats

from gm_lab.predict.protocol import CURVE_SIZES
from gm_lab.sampling import Sample, assign_bins, bin_edges

DATASET = "rows"
Scale = Literal["rank", "log"]
SCALES: tuple[Scale, ...] = ("rank", "log")
X_TITLES: dict[str, str] = {
    "rank": "proxy score rank (1 = lowest; failed scores rank worst)",
    "log": "proxy score, signed log10 |score|",
}
SERIES = ("best", "mean", "held-out")


def _rows_data() -> alt.NamedData:
    return alt.NamedData(name=DATASET)


def _num(value: float) -> float | None:
    """A JSON-safe float: None for NaN/inf, which JSON (and so the widget comm) cannot carry."""
    value = float(value)
    return value if math.isfinite(value) else None


# ---- correlation scatter -------------------------------------------------------------------------
def correlation_scatter(
    title: str = "", scale: Scale = "rank", width: int = 420, height: int = 300
) -> alt.Chart:
    """Proxy score (field "x", filled per `scale` by `scatter_rows`) against test accuracy.

    The x field is precomputed in Python rather than with a Vega-Lite scale so one spec serves
    any data (a symlog constant or a log domain would depend on the scores). An interval
    selection named "brush" on x and y lets a user pick architectures to inspect.
    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {SCALES}")
    brush = alt.selection_interval(name="brush", encodings=["x", "y"])
    chart = (
        alt.Chart(_rows_data())
        .mark_circle(size=28, opacity=0.75)
        .encode(
            x=alt.X("x:Q", title=X_TITLES[scale], scale=alt.Scale(zero=False)),
            y=alt.Y("accuracy:Q", title="test accuracy (%)", scale=alt.Scale(zero=False)),
            color=alt.Color("stratum:O", title="accuracy bin", scale=alt.Scale(scheme="viridis")),
            tooltip=[
                alt.Tooltip("index:Q", title="index"),
                alt.Tooltip("arch:N", title="arch"),
                alt.Tooltip("score:Q", title="score", format=".4g"),
                alt.Tooltip("accuracy:Q", title="accuracy", format=".2f"),
                alt.Tooltip("stratum:O", title="bin"),
            ],
        )
        .add_params(brush)
        .properties(width=width, height=height)
    )
    return chart.properties(title=title) if title else chart


def _worst_filled(scores: np.ndarray) -> np.ndarray:
    """Non-finite scores replaced below every finite one, as gm_lab.metrics' nan_policy="worst"."""
    scores = np.asarray(scores, dtype=float).copy()
    bad = ~np.isfinite(scores)
    if bad.any():
        finite = scores[~bad]
        scores[bad] = (finite.min() - 1.0) if finite.size else 0.0
    return scores


def signed_log(scores: np.ndarray) -> np.ndarray:
    """Monotone log view of scores spanning many magnitudes (NaN stays NaN).

    Scores of one sign and never zero (the usual case): sign · log10|s|, read directly as
    magnitudes. Mixed signs or zeros: sign · log10(1 + |s|/c) with c the smallest nonzero |s|,
    which stays monotone through zero and still separates magnitudes above c.
    """
    s = np.asarray(scores, dtype=float)
    finite = s[np.isfinite(s)]
    out = np.full(s.shape, np.nan)
    ok = np.isfinite(s)
    if finite.size and ((finite > 0).all() or (finite < 0).all()):
        out[ok] = np.sign(s[ok]) * np.log10(np.abs(s[ok]))
        return out
    nonzero = np.abs(finite[finite != 0])
    c = float(nonzero.min()) if nonzero.size else 1.0
    out[ok] = np.sign(s[ok]) * np.log10(1.0 + np.abs(s[ok]) / c)
    return out


def scatter_rows(
    indices: Sequence[int] | np.ndarray,
    archs: Sequence[str] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    accuracy: Sequence[float] | np.ndarray,
    strata: Sequence[int] | np.ndarray | None = None,
    scale: Scale = "rank",
) -> list[dict]:
    """Rows for `correlation_scatter`: "x" is the rank (average ties) or the signed log score.

    Ranks treat failed (non-finite) scores as the worst, like the correlations shown with the
    chart; on the log scale a failed score has no position (x None) and is not drawn.
    """
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {SCALES}")
    scores = np.asarray(scores, dtype=float)
    accuracy = np.asarray(accuracy, dtype=float)
    n = len(scores)
    if not len(indices) == len(archs) == n == len(accuracy):
        raise ValueError(
            f"indices ({len(indices)}), archs ({len(archs)}), scores ({n}) and accuracy "
            f"({len(accuracy)}) must have equal lengths"
        )
    if strata is not None and len(strata) != n:
        raise ValueError(f"strata ({len(strata)}) must have the length of scores ({n})")
    ranks = stats.rankdata(_worst_filled(scores)) if n else np.empty(0)
    x = ranks if scale == "rank" else signed_log(scores)
    return [
        {
            "index": int(indices[i]),
            "arch": str(archs[i]),
            "score": _num(scores[i]),
            "rank": float(ranks[i]),
            "x": _num(x[i]),
            "accuracy": _num(accuracy[i]),
            "stratum": None if strata is None else int(strata[i]),
        }
        for i in range(n)
    ]


def scatter_title(kendall: float, spearman: float, label: str = "", n: int | None = None) -> str:
    """ "label · τ = 0.612 · ρ = 0.801 · n = 1000" (NaN shown as "–": no ranking information)."""

    def fmt(v: float) -> str:
        return "–" if v is None or not math.isfinite(v) else f"{v:.3f}"

    parts = [label] if label else []
    parts += [f"τ = {fmt(kendall)}", f"ρ = {fmt(spearman)}"]
    if n is not None:
        parts.append(f"n = {n}")
    return " · ".join(parts)


# ---- stratification ------------------------------------------------------------------------------
SAMPLE_NAMES = ("search", "held-out")


def strata_chart(title: str = "", width: int = 460) -> alt.VConcatChart:
    """Whole-space accuracy histogram with the bin edges as rules, above the per-bin counts.

    One dataset with a "layer" field ("hist", "edge", "sample") feeds all marks, so a single
    changeset updates the chart; the two panels share the accuracy axis so the bars line up.
    """
    # bin="binned": x..x2 are bin bounds, so bars rise from zero and stack like a histogram's
    acc = alt.X("lo:Q", bin="binned", title="test accuracy (%)", scale=alt.Scale(zero=False))
    hist = (
        alt.Chart()
        .transform_filter(alt.datum.layer == "hist")
        .mark_bar(color="#9aa5b1", binSpacing=0)
        .encode(
            x=acc,
            x2="hi:Q",
            # symlog: the space piles up near the top accuracies; sparse bins stay visible
            y=alt.Y("count:Q", title="architectures (symlog)", scale=alt.Scale(type="symlog")),
            tooltip=[
                alt.Tooltip("lo:Q", format=".2f"),
                alt.Tooltip("hi:Q", format=".2f"),
                alt.Tooltip("count:Q"),
            ],
        )
    )
    edges = (
        alt.Chart()
        .transform_filter(alt.datum.layer == "edge")
        .mark_rule(color="#c0392b", strokeDash=[4, 3])
        .encode(x="lo:Q", tooltip=[alt.Tooltip("lo:Q", title="bin edge", format=".2f")])
    )
    counts = (
        alt.Chart()
        .transform_filter(alt.datum.layer == "sample")
        .mark_bar(stroke="white", strokeWidth=0.5)
        .encode(
            x=alt.X("lo:Q", bin="binned", title="accuracy bin (%)", scale=alt.Scale(zero=False)),
            x2="hi:Q",
            y=alt.Y("count:Q", title="sampled architectures", stack="zero"),
            color=alt.Color(
                "sample:N",
                title="sample",
                scale=alt.Scale(domain=list(SAMPLE_NAMES), range=["#1f77b4", "#ff7f0e"]),
            ),
            tooltip=[
                alt.Tooltip("bin:O", title="bin"),
                alt.Tooltip("sample:N"),
                alt.Tooltip("count:Q"),
                alt.Tooltip("lo:Q", format=".2f"),
                alt.Tooltip("hi:Q", format=".2f"),
            ],
        )
        .properties(width=width, height=110)
    )
    top = alt.layer(hist, edges).properties(width=width, height=170)
    chart = alt.vconcat(top, counts, data=_rows_data()).resolve_scale(x="shared")
    return chart.properties(title=title) if title else chart


def sample_counts(accuracy_all: np.ndarray, edges: np.ndarray, sample: Sample | None) -> np.ndarray:
    """How many of `sample`'s architectures fall in each bin (zeros without a sample)."""
    k = len(edges) - 1
    if sample is None or len(sample) == 0:
        return np.zeros(k, dtype=int)
    acc = np.asarray(accuracy_all, dtype=float)[np.asarray(sample.indices, dtype=int)]
    acc = acc[np.isfinite(acc)]
    return np.bincount(assign_bins(acc, edges), minlength=k).astype(int)


def strata_edges(
    accuracy_all: np.ndarray, search: Sample | None, heldout: Sample | None, bins: int = 10
) -> np.ndarray:
    """The samples' own stratification edges when they have them, else equal-width ones."""
    for sample in (search, heldout):
        if sample is not None and sample.bin_edges is not None:
            return np.asarray(sample.bin_edges, dtype=float)
    acc = np.asarray(accuracy_all, dtype=float)
    return bin_edges(acc[np.isfinite(acc)], bins)


def strata_rows(
    accuracy_all: np.ndarray,
    edges: np.ndarray,
    search: Sample | None = None,
    heldout: Sample | None = None,
    hist_bins: int = 50,
) -> list[dict]:
    """Rows for `strata_chart`: the space pre-binned in numpy (15,625 archs → `hist_bins` rows)."""
    acc = np.asarray(accuracy_all, dtype=float)
    acc = acc[np.isfinite(acc)]
    counts, hist_edges = np.histogram(acc, bins=hist_bins)
    rows: list[dict] = [
        {"layer": "hist", "lo": float(lo), "hi": float(hi), "count": int(c)}
        for lo, hi, c in zip(hist_edges[:-1], hist_edges[1:], counts, strict=True)
    ]
    rows += [{"layer": "edge", "lo": float(e)} for e in edges]
    for name, sample in zip(SAMPLE_NAMES, (search, heldout), strict=True):
        if sample is None:
            continue
        per_bin = sample_counts(accuracy_all, edges, sample)
        rows += [
            {
                "layer": "sample",
                "sample": name,
                "bin": b,
                "lo": float(edges[b]),
                "hi": float(edges[b + 1]),
                "count": int(per_bin[b]),
            }
            for b in range(len(per_bin))
        ]
    return rows


# ---- fitness over generations --------------------------------------------------------------------
def fitness_chart(title: str = "", width: int = 420, height: int = 220) -> alt.Chart:
    """Best / mean / held-out fitness per generation from rows {"generation", "series", "value"}."""
    chart = (
        alt.Chart(_rows_data())
        .mark_line(point=alt.OverlayMarkDef(size=18))
        .encode(
            x=alt.X("generation:Q", title="generation", axis=alt.Axis(tickMinStep=1, format="d")),
            y=alt.Y("value:Q", title="fitness", scale=alt.Scale(zero=False)),
            color=alt.Color("series:N", title="", scale=alt.Scale(domain=list(SERIES))),
            tooltip=[
                alt.Tooltip("generation:Q"),
                alt.Tooltip("series:N"),
                alt.Tooltip("value:Q", format=".4f"),
            ],
        )
        .properties(width=width, height=height)
    )
    return chart.properties(title=title) if title else chart


def fitness_rows(generation: int, **series: float) -> list[dict]:
    """Rows of one generation, e.g. `fitness_rows(3, best=0.61, held_out=0.5)`.

    Keyword names become series names with "_" → "-" ("held_out" → "held-out").
    """
    return [
        {"generation": int(generation), "series": name.replace("_", "-"), "value": _num(value)}
        for name, value in series.items()
    ]


# ---- accuracy predictor --------------------------------------------------------------------------
# The view is embedded before its rows arrive: without `resize`, Vega sizes the padding for the
# empty axes once and later labels (feature names, tick values) are clipped.
_GROW = alt.AutoSizeParams(type="pad", resize=True)


def prediction_scatter(title: str = "", width: int = 360, height: int = 300) -> alt.LayerChart:
    """Predicted against true test accuracy of held-out architectures, with the y = x diagonal
    (a perfect predictor's points lie on it). Rows: `prediction_rows` ("point" and "diagonal"
    layers of one dataset, so one changeset updates both)."""
    x = alt.X("true:Q", title="true test accuracy (%)", scale=alt.Scale(zero=False))
    y = alt.Y("predicted:Q", title="predicted test accuracy (%)", scale=alt.Scale(zero=False))
    points = (
        alt.Chart()
        .transform_filter(alt.datum.layer == "point")
        .mark_circle(size=26, opacity=0.7, color="#1f77b4")
        .encode(
            x=x,
            y=y,
            tooltip=[
                alt.Tooltip("index:Q", title="index"),
                alt.Tooltip("arch:N", title="arch"),
                alt.Tooltip("true:Q", title="true", format=".2f"),
                alt.Tooltip("predicted:Q", title="predicted", format=".2f"),
                alt.Tooltip("error:Q", title="predicted - true", format="+.2f"),
            ],
        )
    )
    diagonal = (
        alt.Chart()
        .transform_filter(alt.datum.layer == "diagonal")
        .mark_line(color="#888", strokeDash=[4, 3])
        .encode(x=x, y=y)
    )
    chart = alt.layer(diagonal, points, data=_rows_data()).properties(
        width=width, height=height, autosize=_GROW
    )
    return chart.properties(title=title) if title else chart


def prediction_rows(
    indices: Sequence[int] | np.ndarray,
    archs: Sequence[str] | np.ndarray,
    predicted: Sequence[float] | np.ndarray,
    truth: Sequence[float] | np.ndarray,
) -> list[dict]:
    """Rows for `prediction_scatter`: one "point" per architecture and the diagonal's two ends
    (spanning both axes' range)."""
    predicted = np.asarray(predicted, dtype=float)
    truth = np.asarray(truth, dtype=float)
    n = len(predicted)
    if not len(indices) == len(archs) == n == len(truth):
        raise ValueError(
            f"indices ({len(indices)}), archs ({len(archs)}), predicted ({n}) and truth "
            f"({len(truth)}) must have equal lengths"
        )
    rows: list[dict] = [
        {
            "layer": "point",
            "index": int(indices[i]),
            "arch": str(archs[i]),
            "true": _num(truth[i]),
            "predicted": _num(predicted[i]),
            "error": _num(predicted[i] - truth[i]),
        }
        for i in range(n)
    ]
    both = np.concatenate([predicted, truth])
    both = both[np.isfinite(both)]
    if both.size:
        lo, hi = float(both.min()), float(both.max())
        rows += [{"layer": "diagonal", "true": v, "predicted": v} for v in (lo, hi)]
    return rows


def importance_chart(title: str = "", width: int = 300, height: int = 300) -> alt.Chart:
    """Horizontal bars of feature importances, largest on top (rows: `importance_rows`)."""
    chart = (
        alt.Chart(_rows_data())
        .mark_bar(color="#4c78a8")
        .encode(
            x=alt.X(
                "importance:Q",
                title="share of the total importance",
                axis=alt.Axis(format=".0%", tickCount=5),
            ),
            y=alt.Y("feature:N", title=None, sort=alt.EncodingSortField("rank", order="ascending")),
            tooltip=[
                alt.Tooltip("feature:N"),
                alt.Tooltip("importance:Q", format=".2%"),
                alt.Tooltip("rank:Q"),
            ],
        )
        .properties(width=width, height=height, autosize=_GROW)
    )
    return chart.properties(title=title) if title else chart


def importance_rows(importances: dict[str, float], top: int = 15) -> list[dict]:
    """The `top` largest importances as rows {"feature", "importance", "rank"} (rank 1 = the
    largest; ties kept in the given order)."""
    ordered = sorted(importances.items(), key=lambda kv: -kv[1])[:top]
    return [
        {"feature": name, "importance": _num(value), "rank": rank}
        for rank, (name, value) in enumerate(ordered, 1)
    ]


def learning_curve_chart(
    title: str = "", sizes: Sequence[int] = CURVE_SIZES, width: int = 360, height: int = 240
) -> alt.LayerChart:
    """Held-out Kendall τ against the number of labelled training architectures (log axis,
    ticks at `sizes`): each run as a faint dot, the mean over seeds as a line, ± one std as a
    bar (rows: `curve_rows`)."""
    x = alt.X(
        "train_n:Q",
        title="labelled training architectures",
        scale=alt.Scale(type="log", nice=False, padding=12),
        axis=alt.Axis(values=[int(n) for n in sizes], format="d"),
    )
    runs = (
        alt.Chart()
        .transform_filter(alt.datum.layer == "run")
        .mark_circle(size=18, opacity=0.35, color="#888")
        .encode(
            x=x,
            y=alt.Y("kendall:Q", title="held-out Kendall τ", scale=alt.Scale(zero=False)),
            tooltip=[
                alt.Tooltip("train_n:Q", title="train-n"),
                alt.Tooltip("seed:Q"),
                alt.Tooltip("kendall:Q", title="τ", format=".4f"),
            ],
        )
    )
    mean = alt.Chart().transform_filter(alt.datum.layer == "mean")
    line = mean.mark_line(point=True, color="#1f77b4").encode(
        x=x,
        y="kendall:Q",
        tooltip=[
            alt.Tooltip("train_n:Q", title="train-n"),
            alt.Tooltip("kendall:Q", title="mean τ", format=".4f"),
            alt.Tooltip("std:Q", title="std", format=".4f"),
            alt.Tooltip("n:Q", title="seeds"),
        ],
    )
    spread = mean.mark_rule(color="#1f77b4").encode(x=x, y="lo:Q", y2="hi:Q")
    chart = alt.layer(runs, spread, line, data=_rows_data()).properties(
        width=width, height=height, autosize=_GROW
    )
    return chart.properties(title=title) if title else chart


def curve_rows(table: Sequence[dict]) -> list[dict]:
    """Rows for `learning_curve_chart` from `gm_lab.predict.protocol.curve_table`: every run's τ
    and, per train size, the mean ± std over its runs."""
    rows: list[dict] = []
    for entry in table:
        n = int(entry["train_n"])
        rows += [
            {"layer": "run", "train_n": n, "seed": int(r["seed"]), "kendall": _num(r["kendall"])}
            for r in entry["runs"]
        ]
        tau = entry["kendall"]
        mean, std = float(tau["mean"]), float(tau["std"])
        rows.append(
            {
                "layer": "mean",
                "train_n": n,
                "kendall": _num(mean),
                "std": _num(std),
                "lo": _num(mean - std),
                "hi": _num(mean + std),
                "n": int(tau["n"]),
            }
        )
    return rows
