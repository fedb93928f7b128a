"""Proxy explorer: pick an evolved or classic proxy, edit it as a tree or as text, and see its τ, ρ,
cost per architecture and scatter update at once, next to a baseline proxy on the same
architectures.

Rescoring is one vectorised evaluation over the cached statistics (milliseconds for 1,000
architectures), so every accepted edit is rescored immediately; invalid edits never get here
(the tree editor validates them).
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Sequence

import ipywidgets as w
import numpy as np
from deap import gp

from gm_lab.evolution import Search, SearchConfig, load_data
from gm_lab.evolution.fitness import Split
from gm_lab.evolution.result import SearchResult
from gm_lab.expressions import explain_degenerate, parse, proxy_names, to_text
from gm_lab.metrics import degenerate_reason
from gm_lab.sampling import assign_bins, bin_edges
from gm_lab.widgets.cost import CostLabel
from gm_lab.widgets.dashboard import STANDIN_STYLE
from gm_lab.widgets.scatter import CorrelationScatter
from gm_lab.widgets.tree_editor import ExpressionEditor

DEFAULT_EXPRESSION = "mean(log(snip_l))"


class ProxyExplorer(w.VBox):
    """Edit and rescore proxies on the splits of a search (or of any sample).

    `splits`: the architectures to score on (search / held-out, per dataset); `candidates`:
    label -> expression text offered in the picker (hall of fame entries, say); every classic
    proxy the splits carry is offered too, and is the baseline choice. `space`: whose pass costs
    price the expressions (the cost shown next to τ).
    """

    def __init__(
        self,
        splits: Sequence[Split],
        candidates: dict[str, str] | None = None,
        expression: str | None = None,
        baseline: str = "synflow",
        bins: int = 10,
        space: str = "tss",
    ) -> None:
        if not splits:
            raise ValueError("the explorer needs at least one split of probed architectures")
        self.splits = {f"{s.dataset}/{s.role}": s for s in splits}
        self.bins = bins
        self.cost = CostLabel(space)
        classic = sorted(set.intersection(*(set(s.arrays.proxies) for s in splits)))
        self.classic = [p for p in classic if p in proxy_names()]
        self.last_seconds = 0.0  # time of the last rescoring, edit to pushed view

        self.split_picker = w.Dropdown(
            options=list(self.splits), value=_default_split(self.splits), description="sample"
        )
        self.picker = w.Dropdown(description="proxy", layout={"width": "520px"})
        self.editor = ExpressionEditor(expression or _first(candidates) or DEFAULT_EXPRESSION)
        self.scores = w.HTML()
        self.scores.add_class("gm-tau")
        self.scatter = CorrelationScatter()
        self.baseline_picker = w.Dropdown(
            options=self.classic,
            value=baseline if baseline in self.classic else (self.classic or [None])[0],
            description="baseline",
        )
        self.baseline_scores = w.HTML()
        self.baseline_scores.add_class("gm-baseline-tau")
        self.baseline_scatter = CorrelationScatter()
        self.set_candidates(candidates or {})

        self.picker.observe(self._on_pick, "value")
        self.split_picker.observe(lambda _c: self.rescore_all(), "value")
        self.baseline_picker.observe(lambda _c: self._score_baseline(), "value")
        self.editor.on_change(lambda _tree: self.rescore())
        super().__init__(
            [
                w.HBox([self.picker, self.split_picker]),
                self.editor,
                w.HBox(
                    [
                        w.VBox([self.scores, self.scatter]),
                        w.VBox([self.baseline_picker, self.baseline_scores, self.baseline_scatter]),
                    ]
                ),
            ]
        )
        self.add_class("gm-explorer")
        self.rescore_all()

    # ---- construction from the engine ---------------------------------------------------------
    @classmethod
    def from_search(cls, search: Search, **kwargs) -> ProxyExplorer:
        """On a prepared search's splits, offering its hall of fame (call `update_from` later to
        follow it)."""
        data = search.prepare()
        kwargs.setdefault("space", search.config.space)
        explorer = cls(data.splits, bins=search.config.bins, **kwargs)
        explorer.update_from(search.result())
        return explorer

    @classmethod
    def for_sample(cls, config: SearchConfig, **kwargs) -> ProxyExplorer:
        """On a sample drawn and probed as `gm-lab score` / `gm-lab evolve` would (blocks while
        probing what the cache lacks, in worker processes)."""
        kwargs.setdefault("space", config.space)
        return cls(load_data(config, progress=True).splits, bins=config.bins, **kwargs)

    def update_from(self, result: SearchResult) -> None:
        """Offer a search's hall of fame (best first)."""
        self.set_candidates(
            {
                f"#{rank} τ={_fmt(r.search_kendall)} ({r.size} nodes): {r.expr}": r.expr
                for rank, r in enumerate(result.hall_of_fame, 1)
            }
        )

    def set_candidates(self, candidates: dict[str, str]) -> None:
        """The picker's entries: `candidates` then every classic proxy; keeps the choice made."""
        options = [*candidates.items(), *((f"classic: {p}", p) for p in self.classic)]
        current = self.picker.value
        with self.picker.hold_trait_notifications():
            self.picker.options = [("(pick a proxy to edit)", None), *options]
            values = {v for _, v in options}
            self.picker.value = current if current in values else None

    # ---- scoring --------------------------------------------------------------------------------
    @property
    def split(self) -> Split:
        return self.splits[self.split_picker.value]

    @property
    def expression(self) -> gp.PrimitiveTree:
        return self.editor.expression

    def rescore(self) -> dict[str, float]:
        """Score the editor's expression on the chosen split and refresh its τ/ρ and scatter."""
        began = time.perf_counter()
        split, tree = self.split, self.editor.expression
        scores = split.scores(tree)
        with self.hold_sync():
            result = self._show(
                self.scatter,
                self.scores,
                scores,
                tree,
                f"{split.dataset} {split.role}",
                explain_degenerate(tree, split.context, scores),
            )
        self.last_seconds = time.perf_counter() - began
        return result

    def rescore_all(self) -> None:
        self.rescore()
        self._score_baseline()

    def _score_baseline(self) -> None:
        name = self.baseline_picker.value
        if name is not None:
            values = np.asarray(self.split.arrays.proxies[name], dtype=float)
            self._show(
                self.baseline_scatter,
                self.baseline_scores,
                values,
                parse(name),
                f"baseline {name}",
                degenerate_reason(values),
            )

    def _show(
        self,
        scatter: CorrelationScatter,
        scores_html: w.HTML,
        scores: np.ndarray,
        tree: gp.PrimitiveTree,
        label: str,
        reason: str | None,
    ) -> dict[str, float]:
        """Put `scores` of the chosen split on `scatter` and its τ/ρ and cost per architecture
        over `tree`'s text, with why they cannot rank (`reason`) and whether the images were a
        stand-in."""
        split = self.split
        scatter.update(
            split.arrays.indices,
            split.arrays.archs,
            scores,
            split.truth,
            strata=self._strata(split),
            label=label,
        )
        result = {"kendall": scatter.kendall, "spearman": scatter.spearman}
        cost = self.cost.html(tree, split.dataset)
        scores_html.value = _score_html(
            to_text(tree), result, len(split), reason, split.standin_label, cost
        )
        return result

    def _strata(self, split: Split) -> np.ndarray:
        return assign_bins(split.truth, bin_edges(split.truth, self.bins))

    def _on_pick(self, change: dict) -> None:
        if change["new"] is not None:
            self.editor.set_expression(parse(change["new"]))


def _default_split(splits: dict[str, Split]) -> str:
    return next((k for k in splits if k.endswith("/heldout")), next(iter(splits)))


def _first(candidates: dict[str, str] | None) -> str | None:
    return next(iter(candidates.values()), None) if candidates else None


def _score_html(
    label: str,
    result: dict[str, float],
    n: int,
    reason: str | None,
    standin: str | None,
    cost: str = "",
) -> str:
    """τ, the cost per architecture (`cost`, HTML), ρ and n, then why the scores cannot rank
    (`reason`) and the stand-in note, right under the figures they qualify."""
    shown = f"<br><span class='gm-note'>{html.escape(reason)}</span>" if reason else ""
    if standin:
        shown += (
            f"<br><span class='gm-standin' style='{STANDIN_STYLE}'>{html.escape(standin)}</span>"
        )
    return (
        f"<b>τ = <span class='gm-tau-value'>{_fmt(result['kendall'])}</span></b> · "
        + (f"{cost} · " if cost else "")
        + f"ρ = {_fmt(result['spearman'])} · n = {n}<br><code>{html.escape(label)}</code>{shown}"
    )


def _fmt(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.3f}"
