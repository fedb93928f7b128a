"""Protected numpy implementations of the expression primitives.

Every value is a 2-D float64 array: per-layer vectors are [n, max_layers] (padding included,
its content meaningless), scalars are [n, 1] (one per architecture) or [1, 1] (a constant), so
numpy broadcasting implements the mixed (L, S) -> L operations with no special cases.

Protection, the contract evolution relies on:
- finite inputs give finite outputs: |value| is saturated at LIMIT after every operation that
  could exceed it (sums, products, quotients, squares), log|x| and 1/x are 0 at x = 0 (as the
  probe's statistics define a ratio with a zero denominator), and exp's argument is clamped;
- NaN (a missing statistic or a failed proxy) propagates, so the fitness can rank it worst
  instead of an arbitrary number standing in for it;
- reductions read only the layers inside the mask, never the padding.
Results are new arrays; inputs are never written to, so cached terminals can be shared.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from gm_lab import metrics

LIMIT = 1e300  # saturation bound: far beyond any real statistic, far below float64 overflow
EXP_CLAMP = 50.0  # exp(x) is exp(min(x, 50)) ≈ 5.2e21 at most


@dataclass(frozen=True)
class LayerMask:
    """Which entries of a padded [n, max_layers] array are real layers, in the forms reductions
    need (computed once per sample, shared by every expression evaluated on it)."""

    mask: np.ndarray  # bool[n, m]
    count: np.ndarray  # float64[n, 1], layers per architecture (at least 1, so means are safe)
    rows: np.ndarray  # int64[n], 0..n-1
    median_lo: np.ndarray  # int64[n], sorted position of the lower median
    median_hi: np.ndarray  # int64[n], sorted position of the upper median

    @classmethod
    def from_mask(cls, mask: np.ndarray) -> LayerMask:
        mask = np.asarray(mask, dtype=bool)
        counts = np.maximum(mask.sum(axis=1), 1).astype(np.int64)
        return cls(
            mask=mask,
            count=counts.astype(np.float64)[:, None],
            rows=np.arange(mask.shape[0]),
            median_lo=(counts - 1) // 2,
            median_hi=counts // 2,
        )


def saturate(x: np.ndarray) -> np.ndarray:
    """Clip `x` into [-LIMIT, LIMIT] in place (NaN stays NaN) and return it."""
    return np.clip(x, -LIMIT, LIMIT, out=x)


# ---- element-wise, one argument ---------------------------------------------------------------
def log_abs(x: np.ndarray) -> np.ndarray:
    """log|x|, 0 at x = 0 (no -inf for a zero statistic)."""
    a = np.abs(x)
    return np.log(a, out=np.zeros_like(a), where=a != 0)


def sqrt_abs(x: np.ndarray) -> np.ndarray:
    """sqrt|x|: defined for every input, sign dropped."""
    return np.sqrt(np.abs(x))


def square(x: np.ndarray) -> np.ndarray:
    return saturate(np.square(x))


def exp_clamped(x: np.ndarray) -> np.ndarray:
    """exp(min(x, EXP_CLAMP)): large enough to order anything, never overflows."""
    return np.exp(np.minimum(x, EXP_CLAMP))


def inv(x: np.ndarray) -> np.ndarray:
    """1/x, 0 at x = 0."""
    return saturate(np.divide(1.0, x, out=np.zeros_like(x), where=x != 0))


def neg(x: np.ndarray) -> np.ndarray:
    return np.negative(x)


def absolute(x: np.ndarray) -> np.ndarray:
    return np.abs(x)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return expit(x)


def tanh(x: np.ndarray) -> np.ndarray:
    return np.tanh(x)


def relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


# ---- element-wise, two arguments (broadcasting L with S) ---------------------------------------
def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return saturate(np.add(a, b))


def sub(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return saturate(np.subtract(a, b))


def mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return saturate(np.multiply(a, b))


def div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b, 0 where b = 0 (NaN where a is NaN: a missing value stays missing)."""
    out = np.multiply(a, np.multiply(b, 0.0))  # ±0, or NaN where a or b is NaN; right shape
    return saturate(np.divide(a, b, out=out, where=b != 0))


def maximum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum(a, b)


def minimum(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.minimum(a, b)


# ---- across the layers of each architecture (masked) -------------------------------------------
def _masked(x: np.ndarray, layers: LayerMask, fill: float) -> np.ndarray:
    return np.where(layers.mask, x, fill)


def _rows_sumsq(dev: np.ndarray) -> np.ndarray:
    """Σ dev² per row, [n, 1] (one BLAS-like pass)."""
    return np.einsum("ij,ij->i", dev, dev)[:, None]


def _overflowed(result: np.ndarray) -> np.ndarray:
    """Rows whose fast result is not finite: recomputed scaled (NaN rows stay NaN there too)."""
    return np.flatnonzero(~np.isfinite(result[:, 0]))


def _scaled(x: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x / s, s) with s = max |x| over the real layers of each row (1 where that is 0): the
    slow but overflow-free route for rows whose squares overflowed."""
    peak = np.abs(np.where(mask, x, 0.0)).max(axis=1, keepdims=True)
    scale = np.where(peak > 0, peak, 1.0)
    return x / scale, scale


def reduce_sum(x: np.ndarray, layers: LayerMask) -> np.ndarray:
    return saturate(_masked(x, layers, 0.0).sum(axis=1, keepdims=True))


def reduce_mean(x: np.ndarray, layers: LayerMask) -> np.ndarray:
    return saturate(_masked(x, layers, 0.0).sum(axis=1, keepdims=True) / layers.count)


def reduce_max(x: np.ndarray, layers: LayerMask) -> np.ndarray:
    return saturate(_masked(x, layers, -np.inf).max(axis=1, keepdims=True))


def reduce_min(x: np.ndarray, layers: LayerMask) -> np.ndarray:
    return saturate(_masked(x, layers, np.inf).min(axis=1, keepdims=True))


def _std(x: np.ndarray, mask: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(x - mean, population std) per row over the real layers; std may overflow to inf."""
    mean = np.where(mask, x, 0.0).sum(axis=1, keepdims=True) / count
    dev = x - mean
    return dev, np.sqrt(_rows_sumsq(np.where(mask, dev, 0.0)) / count)


def reduce_std(x: np.ndarray, layers: LayerMask) -> np.ndarray:
    """Population standard deviation over the layers. Rows whose squares overflow (values
    beyond ~1e154) are recomputed on x / max|x|, so the result stays right, not just finite."""
    _, std = _std(x, layers.mask, layers.count)
    redo = _overflowed(std)
    if redo.size:
        y, scale = _scaled(x[redo], layers.mask[redo])
        std[redo] = _std(y, layers.mask[redo], layers.count[redo])[1] * scale
    return saturate(std)


def reduce_l2(x: np.ndarray, layers: LayerMask) -> np.ndarray:
    """sqrt(Σ x²) over the layers; overflowing rows are recomputed scaled, as in reduce_std."""
    l2 = np.sqrt(_rows_sumsq(_masked(x, layers, 0.0)))
    redo = _overflowed(l2)
    if redo.size:
        y, scale = _scaled(x[redo], layers.mask[redo])
        l2[redo] = np.sqrt(_rows_sumsq(np.where(layers.mask[redo], y, 0.0))) * scale
    return saturate(l2)


def reduce_median(x: np.ndarray, layers: LayerMask) -> np.ndarray:
    """Median over the layers: padding sorts last as +inf and is never picked; NaN propagates."""
    ordered = np.sort(_masked(x, layers, np.inf), axis=1)
    lo = ordered[layers.rows, layers.median_lo]
    hi = ordered[layers.rows, layers.median_hi]
    median = 0.5 * lo + 0.5 * hi
    median[np.isnan(_masked(x, layers, 0.0)).any(axis=1)] = np.nan
    return saturate(median[:, None])


def standardise(x: np.ndarray, layers: LayerMask) -> np.ndarray:
    """(x - mean) / std across each architecture's layers; 0 where all layers are equal.

    A NaN layer makes the whole row NaN (std is NaN, and NaN != 0 divides). Rows whose squares
    overflow are recomputed on x / max|x|, which does not change the result.
    """
    dev, std = _std(x, layers.mask, layers.count)
    redo = _overflowed(std)
    if redo.size:
        y, _ = _scaled(x[redo], layers.mask[redo])
        dev[redo], std[redo] = _std(y, layers.mask[redo], layers.count[redo])
    return saturate(np.divide(dev, std, out=np.zeros_like(dev), where=std != 0))


def log_rank(x: np.ndarray) -> np.ndarray:
    """log(rank / n) among the architectures scored together (rows), per column: see
    `gm_lab.metrics.log_rank`. Population-relative, not a property of one network."""
    out = np.empty(x.shape)
    for column in range(x.shape[1]):
        out[:, column] = metrics.log_rank(x[:, column])
    return out
