"""The `plain` proxy, computed in the probe's shared passes (definition and deviations in
its docstring)."""

from __future__ import annotations

from gm_lab.plugins import Need, ProxyContext, register_proxy


@register_proxy(
    "plain",
    needs=Need.BACKWARD,
    products="",
    reference=('Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021'),
)
def plain(ctx: ProxyContext) -> float:
    """Σ W·∂L/∂W (foresight `plain`, Abdelfattah et al. ICLR 2021)."""
    return ctx.layer_sum("plain_l")
