"""Population-level aggregation of proxies by ranks (torch-free).

Some scores are not a function of one architecture but of the population evaluated with it:
AZ-NAS (Lee & Ham, CVPR 2024, arXiv 2403.19232; code cvlab-yonsei/AZ-NAS,
`NB201/tss_general.ipynb`) assembles its components as Σ_k log(rank_k / N), and VKDNW_agg
(Týbl & Neumann, CVPR 2025) does the same over its own set of proxies.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gm_lab.metrics import log_rank


def log_rank_sum(columns: Sequence[np.ndarray]) -> np.ndarray:
    """Σ_k log(rank_k / N) for each of N architectures, over the proxy columns k.

    `columns`: one array of N values per proxy, higher meaning better (negate a lower-is-better
    proxy first). rank_k are the ascending ranks of column k among the N (1 = lowest, N =
    highest; ties get the average of their ranks, `scipy.stats.rankdata`'s default), so each
    term lies in [log(1/N), 0] and the best architecture on every proxy scores 0. This is the
    official AZ-NAS assembly, `np.log(stats.rankdata(v) / l)` summed over the components
    (s_E, s_P, s_T and FLOPs there).

    The score is relative: it depends on which architectures are ranked together, so compute it
    once over the whole evaluated population, not per architecture or per batch.

    NaN counts as −∞ (the lowest rank, tied with the other NaN and −∞ values), as the official
    code reports a NaN component as −∞ before ranking. Returns a float64 array of length N.

    >>> log_rank_sum([np.array([1.0, 3.0, 2.0])]).round(4).tolist()
    [-1.0986, 0.0, -0.4055]
    """
    if len(columns) == 0:
        raise ValueError("log_rank_sum needs at least one column")
    arrays = [np.asarray(c, dtype=float).reshape(-1) for c in columns]
    n = arrays[0].size
    if any(a.size != n for a in arrays):
        sizes = sorted({a.size for a in arrays})
        raise ValueError(f"every column must hold one value per architecture; got sizes {sizes}")
    total = np.zeros(n)
    if n == 0:
        return total
    for values in arrays:
        total += log_rank(np.where(np.isnan(values), -np.inf, values))
    return total
