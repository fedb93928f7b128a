"""`VegaChart`: an offline Vega-Lite view whose rows stream in without resetting a brush.

Why not Altair's own display or `alt.JupyterChart`: the first loads Vega from a CDN (nothing
renders offline) and the second re-embeds on every update, which resets selections, and carries
~0.9 MB of JS in each widget's state. This widget ships vega + vega-lite + vega-embed once in
`static/vega_chart.js`; the spec reads the named dataset "rows", the front end applies each new
`rows` value as a Vega changeset (a brush survives), and re-embeds only when `spec` changes.

Trait contract with js/src/vega_chart.js:
- `spec` (Python → JS): Vega-Lite spec without inline data; its data is {"name": "rows"}.
- `rows` (Python → JS): list of row dicts; `key` names the field identifying a row ("" = none).
- `renderer` (Python → JS): "svg" or "canvas".
- `selection` (JS → Python): {"fields": {field: [lo, hi], ...}} of the interval selection
  named "brush", {} when there is no brush.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import altair as alt
import anywidget
import traitlets as t
import vl_convert

from gm_lab.widgets._assets import bundle
from gm_lab.widgets.guard import GuardedState

DATASET = "rows"
RENDERERS = ("svg", "canvas")

SelectCallback = Callable[[list[dict]], Any]


def spec_and_rows(chart: alt.TopLevelMixin | Mapping) -> tuple[dict, list[dict] | None]:
    """A Vega-Lite dict reading the named dataset "rows", and any inline rows taken out of it.

    Accepts an Altair chart (`to_dict()`) or a spec dict. Inline data (`values`, or Altair's
    `datasets` entry) becomes the rows, so a chart built on a DataFrame also streams.
    """
    spec = chart.to_dict() if hasattr(chart, "to_dict") else copy.deepcopy(dict(chart))
    datasets: dict = spec.pop("datasets", None) or {}
    if len(datasets) > 1:
        raise ValueError(
            f"the chart has {len(datasets)} inline datasets ({', '.join(datasets)}): a VegaChart "
            "streams one; put all rows in one dataset with a field telling layers apart"
        )
    found: list[list[dict]] = [list(v) for v in datasets.values()]

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for k, v in node.items():
                if k == "data" and isinstance(v, dict) and ("values" in v or v.get("name")):
                    if "values" in v:
                        found.append(list(v["values"]))
                    elif v["name"] not in datasets and v["name"] != DATASET:
                        raise ValueError(f"the chart reads an unknown named dataset {v['name']!r}")
                    out[k] = {"name": DATASET}
                else:
                    out[k] = walk(v)
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    spec = walk(spec)
    if any(r != found[0] for r in found[1:]):
        raise ValueError("the chart inlines several different datasets: a VegaChart streams one")
    return spec, (found[0] if found else None)


def with_rows(spec: Mapping, rows: list[dict]) -> dict:
    """The spec with the named dataset "rows" inlined: a self-contained chart for export."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                k: ({"values": rows} if k == "data" and v == {"name": DATASET} else walk(v))
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(dict(spec))


def export(spec: Mapping, rows: list[dict], path: Path | str, scale: float = 2.0) -> Path:
    """Write a PNG, SVG or PDF (by suffix) offline through vl-convert's bundled Vega."""
    path = Path(path)
    full = with_rows(spec, rows)
    suffix = path.suffix.lower()
    if suffix == ".png":
        data: bytes | str = vl_convert.vegalite_to_png(full, scale=scale)
    elif suffix == ".svg":
        data = vl_convert.vegalite_to_svg(full)
    elif suffix == ".pdf":
        data = vl_convert.vegalite_to_pdf(full)
    else:
        raise ValueError(f"cannot save a chart as {path.name!r}: use .png, .svg or .pdf")
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def _in_range(value: Any, bounds: Any) -> bool:
    """Whether a row value lies in an interval [lo, hi] (either order) or, for a list of other
    than two numbers (a point-like selection), is one of its values."""
    if value is None:
        return False
    if isinstance(bounds, list | tuple) and len(bounds) == 2:
        lo, hi = bounds
        if all(isinstance(b, int | float) and not isinstance(b, bool) for b in (lo, hi)):
            if not isinstance(value, int | float) or isinstance(value, bool):
                return False
            if isinstance(value, float) and math.isnan(value):
                return False
            return min(lo, hi) <= value <= max(lo, hi)
    if isinstance(bounds, list | tuple):
        return value in bounds
    return value == bounds


def rows_in_selection(rows: Iterable[dict], fields: Mapping[str, Any]) -> list[dict]:
    """The rows inside every range of a brush ({field: [lo, hi]}); none when there is no brush."""
    if not fields:
        return []
    return [r for r in rows if all(_in_range(r.get(f), b) for f, b in fields.items())]


def selection_problem(selection: Any) -> str | None:
    """What is wrong with a brush selection from the browser, or None if it is well formed."""
    if not isinstance(selection, dict):
        return f"a selection must be an object, got {type(selection).__name__}"
    fields = selection.get("fields", {})
    if fields is None:
        return None
    if not isinstance(fields, dict):
        return f"'fields' must map field names to ranges, got {type(fields).__name__}"
    for name, bounds in fields.items():
        if not isinstance(bounds, list) or not all(
            isinstance(b, str | int | float) and not isinstance(b, bool) for b in bounds
        ):
            return f"the range of {name!r} must be a list of numbers or labels"
        numbers = [b for b in bounds if isinstance(b, int | float)]
        if any(not math.isfinite(b) for b in numbers):
            return f"the range of {name!r} holds a non-finite number"
    return None


class VegaChart(GuardedState, anywidget.AnyWidget):
    """One Vega-Lite view: set new rows as often as needed, the notebook output never grows."""

    _esm = bundle("vega_chart.js")
    _css = """
    .gm-vega-chart { min-height: 40px; }
    .gm-vega-chart .vega-embed { padding-right: 0; }
    """

    spec = t.Dict().tag(sync=True)
    rows = t.List().tag(sync=True)
    key = t.Unicode("").tag(sync=True)
    renderer = t.Unicode("svg").tag(sync=True)
    selection = t.Dict().tag(sync=True)
    problem = t.Unicode("")  # why the last selection from the browser was ignored ("" if none)

    def __init__(
        self,
        chart: alt.TopLevelMixin | Mapping,
        rows: list[dict] | None = None,
        key: str = "",
        renderer: str = "svg",
        **kwargs: Any,
    ) -> None:
        if renderer not in RENDERERS:
            raise ValueError(f"unknown renderer {renderer!r}; choose one of {RENDERERS}")
        spec, inline = spec_and_rows(chart)
        initial = rows if rows is not None else (inline or [])
        super().__init__(spec=spec, rows=list(initial), key=key, renderer=renderer, **kwargs)
        self._select_callbacks: list[SelectCallback] = []
        self.observe(self._on_selection, names=["selection"])
        self.observe(self._on_rows, names=["rows"])

    # ---- data and spec ------------------------------------------------------------------------
    def set_rows(self, rows: list[dict]) -> None:
        """Replace the rows; the front end applies the difference as a changeset (brush kept)."""
        self.rows = list(rows)

    def set_chart(self, chart: alt.TopLevelMixin | Mapping) -> None:
        """Replace the spec (re-embeds the view: the brush resets); inline rows, if any, too."""
        spec, inline = spec_and_rows(chart)
        with self.hold_sync():
            if inline is not None:
                self.rows = inline
            self.spec = spec
            self.selection = {}

    # ---- selection ----------------------------------------------------------------------------
    @t.validate("selection")
    def _valid_selection(self, proposal: dict) -> dict:
        """A brush is {"fields": {field: [lo, hi] or [values]}}; anything else the browser sends
        is dropped (no brush) and said in `problem`, never raised into the kernel."""
        selection = proposal["value"]
        reason = selection_problem(selection)
        self.problem = f"brush ignored: {reason}" if reason else ""
        return {} if reason else selection

    def refuse_state(self, name: str, value: Any, reason: str) -> None:
        self.problem = f"{name} ignored: {reason}"

    @property
    def brush(self) -> dict[str, Any]:
        """The current brush ranges {field: [lo, hi]}; empty without a brush."""
        return dict(self.selection.get("fields") or {})

    def selected_rows(self) -> list[dict]:
        """Rows inside the brush, computed here so the front end sends only the ranges."""
        return rows_in_selection(self.rows, self.brush)

    def on_select(self, callback: SelectCallback, remove: bool = False) -> None:
        """Call `callback(selected_rows)` when the brush moves, or rows change under a brush."""
        if remove:
            self._select_callbacks = [c for c in self._select_callbacks if c is not callback]
        else:
            self._select_callbacks.append(callback)

    def _notify(self) -> None:
        if not self._select_callbacks:
            return
        selected = self.selected_rows()
        for callback in list(self._select_callbacks):
            callback(selected)

    def _on_selection(self, change: dict) -> None:
        self._notify()

    def _on_rows(self, change: dict) -> None:
        if self.brush:
            self._notify()

    # ---- export -------------------------------------------------------------------------------
    def save(self, path: Path | str, scale: float = 2.0) -> Path:
        """Export the current chart and rows offline as PNG, SVG or PDF (by suffix)."""
        return export(self.spec, self.rows, path, scale)
