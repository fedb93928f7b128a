"""The `l2_norm` proxy, computed in the probe's shared passes (definition and deviations in
its docstring)."""

from __future__ import annotations

from gm_lab.plugins import Need, ProxyContext, register_proxy


@register_proxy(
    "l2_norm",
    needs=Need.NETWORK,
    products="",
    reference=('Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021'),
)
def l2_norm(ctx: ProxyContext) -> float:
    """Σ_layers ‖W‖₂ (foresight `l2_norm`, Abdelfattah et al. ICLR 2021)."""
    return ctx.layer_sum("l2_norm_l")
