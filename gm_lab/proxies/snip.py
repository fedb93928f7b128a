"""The `snip` proxy, computed in the probe's shared passes (definition and deviations in
its docstring)."""

from __future__ import annotations

from gm_lab.plugins import Need, ProxyContext, register_proxy


@register_proxy(
    "snip",
    needs=Need.BACKWARD,
    products="",
    reference=('Lee et al., "SNIP: Single-shot Network Pruning", ICLR 2019'),
)
def snip(ctx: ProxyContext) -> float:
    """Σ|W·∂L/∂W| (Lee et al., "SNIP: Single-shot Network Pruning", ICLR 2019; foresight `snip`)."""
    return ctx.layer_sum("snip_l")
