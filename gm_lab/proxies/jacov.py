"""The `jacov` proxy, computed in the probe's shared passes (definition and deviations in
its docstring)."""

from __future__ import annotations

import math

import numpy as np

from gm_lab.plugins import Need, ProxyContext, register_proxy
from gm_lab.proxies._common import JACOV_K


@register_proxy(
    "jacov",
    needs=Need.INPUT_GRADIENT,
    products="jacobian",
    reference=('Mellor et al., "Neural Architecture Search without Training", arXiv v1 2020'),
)
def jacov(ctx: ProxyContext) -> float:
    """jacob_cov (Mellor et al., "Neural Architecture Search without Training", arXiv v1 2020),
    as foresight computes it; see `jacov_score`."""
    return jacov_score(ctx.product("jacobian"))


def jacov_score(jacobian: np.ndarray) -> float:
    """jacob_cov: -Σ_i [log(v_i + k) + 1/(v_i + k)] over the eigenvalues v of the per-sample
    input-Jacobian correlation matrix (Mellor et al. 2020 v1, as in foresight `jacob_cov`).

    eigvalsh replaces the reference's eig (the matrix is symmetric; same values, always real).
    NaN when a sample's Jacobian is constant (correlation undefined).
    """
    with np.errstate(all="ignore"):
        corrs = np.corrcoef(jacobian)
        if not np.all(np.isfinite(corrs)):
            return math.nan
        v = np.linalg.eigvalsh(corrs)
        return float(-np.sum(np.log(v + JACOV_K) + 1.0 / (v + JACOV_K)))
