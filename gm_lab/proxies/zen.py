"""The `zen` proxy, computed in the probe's shared passes (definition and deviations in
its docstring)."""

from __future__ import annotations

import numpy as np

from gm_lab.plugins import Need, ProxyContext, register_proxy


@register_proxy(
    "zen",
    needs=Need.FORWARD,
    products="zen_distance bn_running_var",
    reference=(
        'Lin et al., "Zen-NAS: A Zero-Shot NAS for High-Performance Image Recognition", ICCV 2021'
    ),
)
def zen(ctx: ProxyContext) -> float:
    """Zen-score (Lin et al., "Zen-NAS: A Zero-Shot NAS for High-Performance Image Recognition",
    ICCV 2021): log E_n Σ|f(x) - f(x + αε)| + Σ_BN log sqrt(mean running_var), x, ε ~ N(0, 1),
    α = 0.01, f the pre-global-pooling feature map, train-mode BN with running statistics reset
    before the two forwards (the reference reads them after both).

    Deviations: the difference is the L1 distance per sample averaged over the batch, as the
    reference code computes it (the paper writes a norm); the network keeps its seeded
    initialisation instead of the reference's N(0, 1) re-initialisation, so Zen scores the same
    network as every other statistic and shares the probe's noise forward; one repeat, not 32.
    """
    return zen_score(ctx.product("zen_distance"), ctx.product("bn_running_var"))


def zen_score(distance: float, bn_running_var: np.ndarray) -> float:
    """log(mean_n Σ|f(x) - f(x+αε)|) + Σ_BN log sqrt(mean running_var) (Zen-NAS score)."""
    with np.errstate(all="ignore"):
        bn_term = float(np.sum(np.log(np.sqrt(bn_running_var))))
        return float(np.log(distance)) + bn_term
