"""The cost per architecture of an expression as the widgets show it next to its τ (issue #18 §1):
"0.21 s/arch (1.05 × fwd+bwd)", from the cost module (gm_lab.expressions.cost), so a widget, `gm-lab
score` and `gm-lab evolve` never disagree about what a proxy costs."""

from __future__ import annotations

import html

from deap import gp

from gm_lab.expressions.cost import PassCosts, expression_cost, load_pass_costs


class CostLabel:
    """Prices expressions on one space; the pass costs of each dataset are loaded once (a
    rescoring stays milliseconds)."""

    def __init__(self, space: str = "tss") -> None:
        self.space = space
        self._costs: dict[str, PassCosts | None] = {}

    def costs(self, dataset: str) -> PassCosts | None:
        """This machine's (or the shipped) pass costs; None where the space has none."""
        if dataset not in self._costs:
            try:
                self._costs[dataset] = load_pass_costs(self.space, dataset)
            except ValueError:  # no pass costs for this space: show no cost rather than fail
                self._costs[dataset] = None
        return self._costs[dataset]

    def text(self, tree: gp.PrimitiveTree, dataset: str) -> str:
        """The cost as "0.21 s/arch (1.05 × fwd+bwd)"; "" without pass costs."""
        costs = self.costs(dataset)
        return "" if costs is None else cost_text(expression_cost(tree, costs), costs)

    def html(self, tree: gp.PrimitiveTree, dataset: str) -> str:
        """The text in a span whose tooltip says where the costs come from; "" without."""
        costs, text = self.costs(dataset), self.text(tree, dataset)
        if costs is None:
            return ""
        title = html.escape(f"cost per architecture at use time; pass costs: {costs.source}")
        return f"<span class='gm-cost' title='{title}'>{html.escape(text)}</span>"


def cost_text(seconds: float, costs: PassCosts) -> str:
    """Seconds per architecture and the multiple of one plain forward+backward."""
    shown = f"{seconds:.2f} s" if seconds >= 0.1 else f"{seconds * 1000:.3g} ms"
    ratio = seconds / costs.reference if costs.reference > 0 else float("nan")
    return f"{shown}/arch ({ratio:.2f} × fwd+bwd)"
