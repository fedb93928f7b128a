"""The `flops` proxy, computed in the probe's shared passes (definition and deviations in
its docstring)."""

from __future__ import annotations

from gm_lab.plugins import Need, ProxyContext, register_proxy


@register_proxy(
    "flops",
    needs=Need.NETWORK,
    products="",
    reference="NATS-Bench's `flop` count (Dong et al., TPAMI 2021)",
)
def flops(ctx: ProxyContext) -> float:
    """Multiply-accumulates of all conv/linear layers for one sample, plus their bias additions
    (Σ macs_l, from the output shapes of the real forward): NATS-Bench's own `flop` count
    (xautodl), in units of 1, not millions. Pooling and BN are not counted, as there."""
    return ctx.layer_sum("macs_l")
