"""The `naswot` proxy, computed in the probe's shared passes (definition and deviations in
its docstring)."""

from __future__ import annotations

import numpy as np

from gm_lab.plugins import Need, ProxyContext, register_proxy


@register_proxy(
    "naswot",
    needs=Need.FORWARD,
    products="relu_kernel",
    reference=('Mellor et al., "Neural Architecture Search without Training", ICML 2021'),
)
def naswot(ctx: ProxyContext) -> float:
    """NASWOT (Mellor et al., ICML 2021): log|K| of the Hamming-similarity kernel of the binary
    ReLU codes of the batch, K = Σ c cᵀ + (1-c)(1-c)ᵀ, codes c = (input > 0) per sample.

    As the reference (`score_networks.py` of the NASWOT repo): every module whose type name
    contains "ReLU" adds its input's codes (in these networks that is each nn.ReLU and each
    ReLUConvBN, so a ReLUConvBN's input counts twice, as there), and only modules the backward
    visits count (ops whose output cannot reach the loss are left out). The codes come from the
    probe's shared train-mode forward; the reference's backward filter from its backward.
    """
    return naswot_score(ctx.product("relu_kernel"))


def naswot_score(kernel: np.ndarray) -> float:
    """log|K| (Mellor et al., "Neural Architecture Search without Training", ICML 2021).

    As the reference `hooklogdet`: the log of the absolute determinant from slogdet; -inf when
    K is singular (e.g. all codes equal).
    """
    _, logdet = np.linalg.slogdet(kernel)
    return float(logdet)
