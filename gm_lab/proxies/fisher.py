"""The `fisher` proxy, computed in the probe's shared passes (definition and deviations in
its docstring)."""

from __future__ import annotations

from gm_lab.plugins import Need, ProxyContext, register_proxy


@register_proxy(
    "fisher",
    needs=Need.BACKWARD,
    products="",
    reference=(
        'Theis et al., "Faster gaze prediction with dense networks and Fisher pruning", 2018'
    ),
)
def fisher(ctx: ProxyContext) -> float:
    """Σ_layers ½ Σ_c mean_n (Σ_hw A·dA)² (Theis et al., "Faster gaze prediction with dense
    networks and Fisher pruning", 2018; foresight `fisher` on conv/linear outputs)."""
    return ctx.layer_sum("fisher_l")
