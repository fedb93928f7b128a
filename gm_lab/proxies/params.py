"""The `params` proxy, computed in the probe's shared passes (definition and deviations in
its docstring)."""

from __future__ import annotations

from gm_lab.plugins import Need, ProxyContext, register_proxy


@register_proxy(
    "params",
    needs=Need.NETWORK,
    products="",
    reference="the parameter count, used as a baseline in every zero-cost NAS paper",
)
def params(ctx: ProxyContext) -> float:
    """Number of learnable parameters (BN affine parameters and biases included)."""
    return float(sum(p.numel() for p in ctx.net.parameters()))
