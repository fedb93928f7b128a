"""The `epe_nas` proxy, computed in the probe's shared passes (definition and deviations in
its docstring)."""

from __future__ import annotations

import numpy as np

from gm_lab.plugins import Need, ProxyContext, register_proxy
from gm_lab.proxies._common import JACOV_K


@register_proxy(
    "epe_nas",
    needs=Need.INPUT_GRADIENT,
    products="jacobian",
    reference=(
        'Lopes et al., "EPE-NAS: Efficient Performance Estimation Without Training for '
        'Neural Architecture Search", ICANN 2021'
    ),
)
def epe_nas(ctx: ProxyContext) -> float:
    """EPE-NAS (Lopes et al. 2021) on the jacov Jacobian and the batch labels; see
    `epe_nas_score`."""
    return epe_nas_score(ctx.product("jacobian"), ctx.labels.numpy(), ctx.num_classes)


def epe_nas_score(jacobian: np.ndarray, labels: np.ndarray, num_classes: int) -> float:
    """EPE-NAS (Lopes et al., "EPE-NAS: Efficient Performance Estimation Without Training for
    Neural Architecture Search", ICANN 2021), as its reference `eval_score_perclass`.

    Per class c: s_c = Σ log(|corr(J_c)| + k) over the correlation matrix of that class's
    per-sample Jacobians (divided by its size when there are more than 100 classes). Score:
    Σ_c |s_c| for ≤ 100 classes, else Σ_c Σ_c' |s_c - s_c'| / #classes. As in the reference, a
    class with one sample gives corr = 1 (s_c ≈ 1e-5), and with > 100 classes it is skipped
    (the reference's `len()` of a scalar raises and the class is passed over).
    """
    labels = np.asarray(labels).reshape(-1)
    per_class: list[float] = []
    with np.errstate(all="ignore"):
        for c in np.unique(labels):
            rows = jacobian[labels == c]
            if rows.shape[0] == 1:
                if num_classes > 100:
                    continue
                corrs = np.corrcoef(rows[0])
            else:
                corrs = np.corrcoef(rows)
            s = float(np.sum(np.log(np.abs(corrs) + JACOV_K)))
            if num_classes > 100:
                s /= len(corrs)
            per_class.append(s)
        values = np.asarray(per_class, dtype=np.float64)
        if num_classes <= 100:
            return float(np.sum(np.abs(values)))
        if values.size == 0:
            return 0.0
        return float(np.sum(np.abs(values[:, None] - values[None, :])) / values.size)
