"""The `grad_norm` proxy, computed in the probe's shared passes (definition and deviations in
its docstring)."""

from __future__ import annotations

from gm_lab.plugins import Need, ProxyContext, register_proxy


@register_proxy(
    "grad_norm",
    needs=Need.BACKWARD,
    products="",
    reference=('Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021'),
)
def grad_norm(ctx: ProxyContext) -> float:
    """Σ_layers ‖∂L/∂W‖₂, cross-entropy on the batch (foresight `grad_norm`; Abdelfattah et al.)."""
    return ctx.layer_sum("grad_norm_l")
