"""The `grasp` proxy, computed in the probe's shared passes (definition and deviations in
its docstring)."""

from __future__ import annotations

from gm_lab.plugins import Need, ProxyContext, register_proxy


@register_proxy(
    "grasp",
    needs=Need.SECOND_ORDER,
    products="grasp",
    reference=(
        'Wang et al., "Picking Winning Tickets Before Training by Preserving Gradient '
        'Flow", ICLR 2020'
    ),
)
def grasp(ctx: ProxyContext) -> float:
    """-Σ W·(Hg), Hg = ∂(g·stopgrad(g))/∂W over conv/linear weights W (Wang et al., "Picking
    Winning Tickets Before Training by Preserving Gradient Flow", ICLR 2020; foresight `grasp`,
    T = 1, one iteration). Exact second-order value; see `grasp_by_invariance` for how the
    probe avoids most of the double backward.
    """
    return float(ctx.product("grasp"))
