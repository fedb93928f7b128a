"""Rank and linear correlations between proxy scores and ground-truth accuracy.

NaN and constant scores are handled explicitly, never by whatever scipy happens to do:
- a non-finite score (NaN, ±inf from a failed proxy) ranks below every finite score by default
  (`nan_policy="worst"`); `"omit"` drops those architectures; `"raise"` refuses them;
- a constant score (or constant truth) carries no ranking information: the correlation is NaN,
  and callers that need a number (GP fitness) treat NaN as the worst value.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import stats

NanPolicy = Literal["worst", "omit", "raise"]


def _prepare(
    scores: np.ndarray, truth: np.ndarray, nan_policy: NanPolicy
) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=float)
    truth = np.asarray(truth, dtype=float)
    if scores.shape != truth.shape or scores.ndim != 1:
        raise ValueError(f"scores {scores.shape} and truth {truth.shape} must be equal 1-D shapes")
    if not np.isfinite(truth).all():
        raise ValueError("ground truth contains NaN/inf: sample only architectures with results")
    bad = ~np.isfinite(scores)
    if bad.any():
        if nan_policy == "raise":
            raise ValueError(f"{int(bad.sum())} of {bad.size} scores are NaN or infinite")
        if nan_policy == "omit":
            return scores[~bad], truth[~bad]
        if nan_policy != "worst":
            raise ValueError(f"unknown nan_policy {nan_policy!r}")
        scores = scores.copy()
        finite = scores[~bad]
        scores[bad] = (finite.min() - 1.0) if finite.size else 0.0
    return scores, truth


def _degenerate(scores: np.ndarray, truth: np.ndarray) -> bool:
    return scores.size < 2 or np.ptp(scores) == 0 or np.ptp(truth) == 0


def degenerate_reason(scores: np.ndarray) -> str | None:
    """Why scores cannot rank a sample (said wherever their correlation is shown), or None.

    "constant over the sample (every architecture scores 0)", "NaN or infinite for all 600
    architectures"; a partial share of NaN is named too ("NaN or infinite for 412 of 600
    architectures"), as those rank last and the correlation rests on the others.
    """
    scores = np.asarray(scores, dtype=float)
    bad = ~np.isfinite(scores)
    if scores.size < 2:
        return f"{scores.size} architecture(s): nothing to rank"
    if bad.all():
        return f"NaN or infinite for all {scores.size} architectures"
    finite = scores[~bad]
    if np.ptp(finite) == 0 and not bad.any():
        return f"constant over the sample (every architecture scores {finite[0]:g})"
    if np.ptp(finite) == 0:
        return (
            f"constant over the {finite.size} architectures with a finite score "
            f"({finite[0]:g}); NaN or infinite for the other {int(bad.sum())}"
        )
    if bad.any():
        return f"NaN or infinite for {int(bad.sum())} of {scores.size} architectures"
    return None


def kendall(scores: np.ndarray, truth: np.ndarray, nan_policy: NanPolicy = "worst") -> float:
    """Kendall τ-b (ties handled) between scores and truth; NaN if either is constant."""
    s, t = _prepare(scores, truth, nan_policy)
    return float("nan") if _degenerate(s, t) else float(stats.kendalltau(s, t, variant="b")[0])


def spearman(scores: np.ndarray, truth: np.ndarray, nan_policy: NanPolicy = "worst") -> float:
    """Spearman ρ; NaN if either is constant."""
    s, t = _prepare(scores, truth, nan_policy)
    return float("nan") if _degenerate(s, t) else float(stats.spearmanr(s, t)[0])


def pearson(scores: np.ndarray, truth: np.ndarray, nan_policy: NanPolicy = "worst") -> float:
    """Pearson r (linear; sensitive to scale, so usually on log scores); NaN if constant."""
    s, t = _prepare(scores, truth, nan_policy)
    return float("nan") if _degenerate(s, t) else float(stats.pearsonr(s, t)[0])


def top_k_overlap(
    scores: np.ndarray, truth: np.ndarray, k: int | float = 0.1, nan_policy: NanPolicy = "worst"
) -> float:
    """Fraction of the truly best k architectures that the scores also put in their top k.

    `k` is a count, or a fraction of the sample when below 1. Ties are broken by position.
    """
    s, t = _prepare(scores, truth, nan_policy)
    count = round(k * s.size) if k < 1 else int(k)
    if not 1 <= count <= s.size:
        raise ValueError(f"top-k size {count} is outside 1..{s.size}")
    top_scores = set(np.argsort(-s, kind="stable")[:count].tolist())
    top_truth = set(np.argsort(-t, kind="stable")[:count].tolist())
    return len(top_scores & top_truth) / count


def correlations(
    scores: np.ndarray, truth: np.ndarray, nan_policy: NanPolicy = "worst"
) -> dict[str, float]:
    """Kendall, Spearman, Pearson and top-10% overlap in one dictionary."""
    return {
        "kendall": kendall(scores, truth, nan_policy),
        "spearman": spearman(scores, truth, nan_policy),
        "pearson": pearson(scores, truth, nan_policy),
        "top10_overlap": top_k_overlap(scores, truth, 0.1, nan_policy)
        if np.asarray(scores).size >= 10
        else float("nan"),
    }


def log_rank(values: np.ndarray) -> np.ndarray:
    """log(rank / n) of each value among `values` (1-D), ranks ascending with ties averaged and n
    the number of non-NaN values; NaN stays NaN. The term of the population aggregations of
    AZ-NAS and VKDNW_agg (gm_lab.aggregate); the GP operator `logrank` applies it per column."""
    values = np.asarray(values, dtype=float)
    out = np.full(values.shape, np.nan)
    known = ~np.isnan(values)
    if known.any():
        out[known] = np.log(stats.rankdata(values[known]) / known.sum())
    return out
