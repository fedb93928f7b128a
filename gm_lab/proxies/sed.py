"""`sed_like`: a data-free, network-free local-entropy proxy for NATS-Bench TSS, derived from
the principles of SED (Wu, Huang, Xu, Hao, "Zero-Shot NAS via the Suppression of Local Entropy
Decrease", AAAI 2025, arXiv 2411.06236). It is NOT the paper's SED: the paper's formula could
not be read, so this is our own derivation, named `sed_like` on purpose.

What we could and could not read (searched in the stored public copies):

- Read: the abstract (arXiv v2/v3 pages) and two third-party summaries (chatpaper.com,
  themoonlight.io). They say: SED uses the topology only (no data, no forward or backward
  pass); feature maps are modelled with one-dimensional and multivariate Gaussian entropies;
  Proposition 1: a feature map of zero entropy gives no useful feedback to the kernels that
  produce it; Proposition 2: higher local entropy helps classification; Propositions 3-5:
  large pooling kernels, small convolution kernels and excessive skip connections decrease
  the local entropy of feature maps (larger convolution kernels increase the multivariate
  Gaussian entropy); it defines a "skip SED", a "conv SED" and a "pool SED" (how they are
  computed and combined is not said).
- Not found: the paper body (formulas, per-operation terms, how the three terms combine), any
  official code (searched GitHub repositories, code and issues for "SED", "local entropy
  decrease", the title and the arXiv number), and any NAS-Bench-201 Kendall/Spearman figure of
  the paper (the abstract gives none). So there is no paper figure to compare with.

Derivation (second-order Gaussian model of the network at initialisation, white Gaussian input,
vectorised over architectures; every quantity is an expectation over the random weights):

A feature map is a stationary Gaussian field described by
  v   its variance per pixel and channel,
  r   its spatial autocorrelation r(dx, dy), r(0, 0) = 1 (even in each axis; lags 0..8 kept),
  d   the participation ratio of its C x C channel covariance Σ, d = (tr Σ)² / tr(Σ²) in [1, C],
      i.e. the effective number of independent Gaussian channels.
Its *local entropy* is the log of the effective number of independent Gaussian variables in
the 3 x 3 x C window that the next 3x3 kernel reads. For a channel x space separable covariance
the participation ratio of the window is a product, so

  H_loc = ln d + ln m(r),   m(r) = 81 / Σ_{dx,dy=-2..2} (3-|dx|)(3-|dy|) r(dx,dy)²,

the collision (Rényi-2) entropy of the window's normalised eigenvalue spectrum: ln(9C) for a
white field with isotropic channels, -inf for a dead (all-zero) map (Proposition 1).

Operations of the cell (every TSS cell maps C -> C channels, stride 1):

- none: the edge carries nothing (a node fed only by dead edges is dead, v = 0).
- skip_connect: the same field is added again: it carries v, r and the *same* channel
  covariance, so it adds no independent direction; a node summing several skips of one source
  gets variance (Σ coefficients)² v, and that source then dominates the node's mixture.
- avg_pool_3x3 (stride 1): y = P x, P the 3 x 3 box filter. It averages 9 correlated
  Gaussians: autocovariance Cov_y = B * Cov_x with B the 5x5 triangle kernel (box ⋆ box), so
  the variance drops (to v/9 for a white field) and neighbours become correlated
  (r(1,0) = 2/3, r(1,1) = 4/9, r(2,0) = 1/3, r(2,2) = 1/9 for a white input): m falls from 9 to
  81/25, so H_loc decreases by ln(9/3.24) ≈ 1.02 nats (the paper's pooling statement).
- nor_conv_kxk = ReLU -> conv k x k (random i.i.d. zero-mean weights) -> BN. The ReLU maps the
  correlations by the arc-cosine kernel κ(ρ) = (√(1-ρ²) + ρ(π - arccos ρ) - 1)/(π - 1); the
  random conv preserves the expected autocorrelation (E[w_a w_b] = 0 for a ≠ b); BN sets v = 1.
  Its output is uncorrelated with every other field (E[w] = 0): a fresh Gaussian source. Its
  channel covariance is W^T Σ_in W over n = d_in · m_k(κ(r_in)) effective inputs (m_1 = 1,
  m_3 = m above); for Gaussian W (Wishart) (E tr A)² / E tr(A²) gives
      d_out = n C / (n + C + 1),
  so a 1x1 conv on a C-dimensional input halves the effective dimension (n = C) while a 3x3
  conv (n ≈ 9C) keeps it near 0.9 C: small kernels decrease the local entropy, large ones
  raise it (the paper's convolution statement).
- a node sums its edges. Fields from different sources are independent with random relative
  orientation (E tr(Σ_a Σ_b) = tr Σ_a tr Σ_b / C):
      d_sum = (Σ v_s)² / (Σ_s v_s²/d_s + ((Σ v_s)² - Σ v_s²)/C),
  and the autocovariances add. Components of one source reaching a node through several
  skip/pool paths are exactly correlated: node k = Σ_s poly_{s,k}(P) x_s with a polynomial in
  P whose coefficients count the paths (P^j: j pools on the path), so its autocovariance is
  (poly ⊛ poly)(P) applied to the source's autocovariance. Adding a skip beside one more skip
  of the same source raises that source's share quadratically and lowers d (the paper's "excess
  skips" statement); a first skip beside fresh convs mostly adds an independent source and
  raises it.

Network (C = 16): stem conv 3x3 (3 -> 16, no ReLU) + BN on a white input, d = 27·16/44, r
white; 5 cells; ResNet reduction block (ReLU-conv3x3 stride 2-BN -> ReLU-conv3x3-BN, plus
AvgPool 2x2 -> conv 1x1 without BN, whose default-init weight variance 1/(3 fan-in) gives
variance v g/3, g the pooled variance factor); 5 cells at 2C; reduction; 5 cells at 4C.

Score: the mean of H_loc over the 17 block outputs (15 cells, 2 reduction blocks): high when
the local entropy is kept up all along the network, i.e. when its decrease is suppressed.
Higher is better (sign +1); -inf for a network whose output does not depend on its input.

Choices, approximations and what was compared:

- Variants compared on a development set (the 14,625 TSS architectures outside the 1,000-arch
  benchmark sample of benchmarks/sed_like.py, CIFAR-10/100/IN16 test accuracy): H_loc of the
  last block only vs the mean over the 17 blocks (and the sum over the three stage ends, no
  better). Kendall τ was equal within 0.01; the mean over blocks had the higher Spearman ρ and
  is the closer reading of "suppression of the decrease along the network", so it is the
  score. Nothing else was fitted to accuracies: κ, the Wishart ratio, the 1/3 shortcut variance
  and the white input follow from the model and PyTorch's default initialisation.
- Approximations: expectations over the weights (no finite-width fluctuations); the ReLU's
  effect on channel correlations is ignored (only its spatial effect is kept); channel and
  spatial covariances are treated as separable; the conv sources entering one node are merged
  into one source (exact without pooling; with pooling their spatial correlations are pooled
  together); spatial correlations beyond lag 8 are set to zero (the lags 0..2 that H_loc and
  the conv ratios read are exact within a cell given its input; the larger lags, and so later
  cells and the stride-2 blocks, lose what lies beyond lag 8); zero padding, feature-map size
  and the ImageNet16 resolution are not modelled, so the score is the same for the three
  datasets.
- Cost: all 15,625 cells are scored at once (numpy, float32 spatial arrays; the 9,445 distinct
  canonical cells computed once each) in about 1.5 s of CPU, 0.1 ms per architecture; the
  registered proxy computes that table on its first call and then looks up, so scoring every
  TSS architecture through the probe takes a few seconds in all (benchmarks/PROXIES.md).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence

import numpy as np

from gm_lab.plugins import Need, ProxyContext, register_proxy

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NONE, SKIP, CONV1, CONV3, POOL = range(5)
EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
N_CELLS = 15625  # 5 ** 6
LAGS = 8  # spatial autocorrelations kept for lags 0..LAGS in each axis
C_STEM = 16
CELLS_PER_STAGE = 5
N_BLOCKS = 3 * CELLS_PER_STAGE + 2
_MAX_POW = 3  # pools on a path inside a cell
_CHUNK = 4096
_F = np.float32  # spatial arrays; variances and channel ratios stay float64

# ---- parsing (torch-free; gm_lab.networks.tss imports torch) ------------------------------------


def parse_cell(arch: str) -> tuple[int, ...]:
    """The 6 op codes (indices into OPS) of a TSS arch string, in the string's edge order
    (1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2). Raises ValueError on anything else."""
    if not isinstance(arch, str):
        raise ValueError(f"expected a TSS arch string, got {type(arch).__name__}")
    nodes = arch.split("+")
    if len(nodes) != 3:
        raise ValueError(f"invalid TSS arch string {arch!r}: expected 3 nodes joined by '+'")
    codes = []
    for k, part in enumerate(nodes, start=1):
        if len(part) < 2 or part[0] != "|" or part[-1] != "|":
            raise ValueError(f"invalid TSS arch string {arch!r}: node {k} must be wrapped in '|'")
        edges = part[1:-1].split("|")
        if len(edges) != k:
            raise ValueError(f"invalid TSS arch string {arch!r}: node {k} needs {k} edge(s)")
        for src, edge in enumerate(edges):
            op, sep, source = edge.partition("~")
            if not sep or source != str(src) or op not in OPS:
                raise ValueError(f"invalid TSS arch string {arch!r}: bad edge {edge!r}")
            codes.append(OPS.index(op))
    return tuple(codes)


def cell_index(codes: Sequence[int]) -> int:
    """Position of a cell in the base-5 enumeration of all 5**6 cells (edge 0 most significant)."""
    index = 0
    for code in codes:
        index = 5 * index + int(code)
    return index


def all_cells() -> np.ndarray:
    """The op codes of all 15,625 TSS cells, shape (15625, 6), in `cell_index` order."""
    return np.array(list(itertools.product(range(5), repeat=6)), dtype=np.int8)


def canonical_cells(codes: np.ndarray) -> np.ndarray:
    """`codes` with every op that cannot change the cell's output set to none: edges leaving a
    node that no input reaches, edges entering a node that reaches no output, and all edges of a
    cell whose output is dead. Cells with equal canonical codes compute the same function up to
    weights (9,445 distinct among the 15,625) and get the same score."""
    codes = np.asarray(codes)
    on = codes != NONE
    alive = [np.ones(len(codes), bool), on[:, 0]]
    alive.append(on[:, 1] | (on[:, 2] & alive[1]))
    alive.append(on[:, 3] | (on[:, 4] & alive[1]) | (on[:, 5] & alive[2]))
    reach = {3: np.ones(len(codes), bool), 2: on[:, 5]}
    reach[1] = on[:, 4] | (on[:, 2] & reach[2])
    keep = np.stack([alive[i] & reach[k] & alive[3] for i, k in EDGES], axis=1)
    return np.where(keep, codes, NONE).astype(codes.dtype)


# ---- the Gaussian field operations --------------------------------------------------------------


def box_filter(c: np.ndarray) -> np.ndarray:
    """Convolve a (cross-)covariance kept as an even quadrant (lags 0..L, 0..L, archs) with the
    3x3 box: Cov(P x, y) from Cov(x, y), P the 3x3 average pool. Twice gives the
    autocovariance of P x (the 5x5 triangle kernel). Lags beyond L count as zero."""
    s = c.copy()
    s[:-1] += c[1:]
    s[1:] += c[:-1]
    s[0] += c[1]  # lag -1 is lag 1
    t = s.copy()
    t[:, :-1] += s[:, 1:]
    t[:, 1:] += s[:, :-1]
    t[:, 0] += s[:, 1]
    t *= 1.0 / 9.0
    return t


def relu_correlation(r: np.ndarray) -> np.ndarray:
    """Correlation of ReLU(x), ReLU(y) (centred) for standard Gaussians of correlation r."""
    r = np.clip(r, -1.0, 1.0)
    return (np.sqrt(1.0 - r * r) + r * (np.pi - np.arccos(r)) - 1.0) / (np.pi - 1.0)


_W = np.abs(np.arange(-2, 3))
_PAIRS3 = np.outer(3 - _W, 3 - _W).astype(np.float64)[:, :, None]  # pairs per offset in 3x3


def window_ratio(r: np.ndarray) -> np.ndarray:
    """m(r): participation ratio of the 9x9 correlation matrix of a 3x3 window (9 if white)."""
    sub = r[_W[:, None], _W[None, :]].astype(np.float64)
    with np.errstate(divide="ignore"):
        return 81.0 / np.sum(_PAIRS3 * sub * sub, axis=(0, 1))


def conv_ratio(n: np.ndarray | float, c: int) -> np.ndarray:
    """Channel participation ratio of a random conv's C outputs over n effective inputs
    (Wishart: E[tr A]² / E[tr A²] = n C / (n + C + 1))."""
    return np.asarray(n, dtype=np.float64) * c / (np.asarray(n, dtype=np.float64) + c + 1.0)


def mix_ratio(vs: Sequence[np.ndarray], ds: Sequence[np.ndarray], c: int) -> np.ndarray:
    """Channel participation ratio of a sum of independent fields of variances `vs` and ratios
    `ds` in random relative orientation; NaN where the sum is dead."""
    vs = [np.asarray(v, dtype=np.float64) for v in vs]
    total = sum(vs)
    squares = sum(v * v for v in vs)
    with np.errstate(divide="ignore", invalid="ignore"):
        own = sum(
            np.where(v > 0, v * v / np.asarray(d, dtype=np.float64), 0.0)
            for v, d in zip(vs, ds, strict=True)
        )
        den = own + (total * total - squares) / c
        return np.where(total > 0, total * total / np.where(den > 0, den, 1.0), np.nan)


def local_entropy(v: np.ndarray, r: np.ndarray, d: np.ndarray) -> np.ndarray:
    """H_loc = ln d + ln m(r) in nats; -inf for a dead map."""
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.log(np.asarray(d, dtype=np.float64) * window_ratio(r))
    return np.where(np.asarray(v) > 0, h, -np.inf)


def _normalise(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    v = cov[0, 0].astype(np.float64)
    with np.errstate(divide="ignore"):
        inverse = np.where(v > 0, 1.0 / np.where(v > 0, v, 1.0), 0.0).astype(_F)
    return v, cov * inverse


def _pool2_matrix(lags: int) -> np.ndarray:
    """Linear map of a quadrant autocorrelation to that of AvgPool2d(2, stride 2), new lags."""
    size = lags + 1
    m = np.zeros((size, size, size, size))
    for dx, dy in itertools.product(range(size), repeat=2):
        for ax, bx, ay, by in itertools.product((0, 1), repeat=4):
            lx, ly = abs(2 * dx + bx - ax), abs(2 * dy + by - ay)
            if lx < size and ly < size:
                m[dx, dy, lx, ly] += 1.0 / 16.0
    return m.reshape(size * size, size * size)


_POOL2 = _pool2_matrix(LAGS).astype(_F)


def _subsample2(r: np.ndarray) -> np.ndarray:
    out = np.zeros_like(r)
    half = LAGS // 2 + 1
    out[:half, :half] = r[0 : 2 * half : 2, 0 : 2 * half : 2]
    return out


# ---- cell, reduction block, stem ----------------------------------------------------------------


def _path_polynomials(codes: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
    """q[(s, k)]: coefficients (powers of P, 0..6) of the autocovariance that source s (0: the
    cell input; k >= 1: the convs entering node k) contributes to node k >= s. They depend only
    on the cell, not on the field."""
    n = codes.shape[0]
    skip = [(codes[:, e] == SKIP).astype(_F) for e in range(6)]
    pool = [(codes[:, e] == POOL).astype(_F) for e in range(6)]
    poly: dict[tuple[int, int], np.ndarray] = {}
    for s in range(4):
        unit = np.zeros((_MAX_POW + 1, n), _F)
        unit[0] = 1.0
        poly[(s, s)] = unit
        for k in range(s + 1, 4):
            acc = np.zeros((_MAX_POW + 1, n), _F)
            for e, (i, kk) in enumerate(EDGES):
                if kk == k and i >= s:
                    acc += skip[e] * poly[(s, i)]
                    acc[1:] += pool[e] * poly[(s, i)][:-1]
            poly[(s, k)] = acc
    q = {}
    for key, p in poly.items():
        out = np.zeros((2 * _MAX_POW + 1, n), _F)
        for a, b in itertools.product(range(_MAX_POW + 1), repeat=2):
            out[a + b] += p[a] * p[b]
        q[key] = out
    return q


def _powers(cov: np.ndarray, top: int) -> list[np.ndarray]:
    out = [cov]
    for _ in range(top):
        out.append(box_filter(out[-1]))
    return out


def _cell(codes, q, v0, r0, d0, c):
    """One searched cell on the field (v0, r0, d0) with C = c channels."""
    conv1 = [(codes[:, e] == CONV1).astype(np.float64) for e in range(6)]
    conv3 = [(codes[:, e] == CONV3).astype(np.float64) for e in range(6)]
    powers = {0: _powers((v0.astype(_F) * r0), 2 * _MAX_POW)}  # P^j applied to each source
    ratio = {0: d0}
    nodes: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def node(i: int):
        if i not in nodes:
            total, vs, ds = None, [], []
            for s in range(i + 1):
                part = None
                for j in range(2 * (i - s) + 1):
                    term = q[(s, i)][j] * powers[s][j]
                    part = term if part is None else part + term
                total = part if total is None else total + part
                vs.append(part[0, 0])
                ds.append(ratio[s])
            v, r = _normalise(total)
            nodes[i] = (v, r, mix_ratio(vs, ds, c))
        return nodes[i]

    relu: dict[int, tuple] = {}
    for k in (1, 2, 3):
        conv_cov, vs, ds = None, [], []
        for e, (i, kk) in enumerate(EDGES):
            if kk != k:
                continue
            if i not in relu:
                v, r, d = node(i)
                alive = (v > 0).astype(np.float64)
                rr = relu_correlation(r).astype(_F)
                rr[0, 0] = 1.0
                rr *= alive.astype(_F)
                d = np.nan_to_num(d)
                m = np.where(alive > 0, window_ratio(rr), 0.0)
                relu[i] = (alive, rr, conv_ratio(d, c), conv_ratio(d * m, c))
            alive, rr, d1, d3 = relu[i]
            live = (conv1[e] + conv3[e]) * alive
            term = live.astype(_F) * rr
            conv_cov = term if conv_cov is None else conv_cov + term
            vs.append(live)
            ds.append(np.where(conv3[e] > 0, d3, d1))
        powers[k] = _powers(conv_cov, 2 * (3 - k))
        ratio[k] = np.nan_to_num(mix_ratio(vs, ds, c), nan=1.0)
    return node(3)


def _reduction(v, r, d, c_out):
    """ResNetBasicblock(stride 2): ReLU-conv3x3/2-BN -> ReLU-conv3x3-BN, plus AvgPool 2x2 ->
    conv1x1 (no BN, PyTorch default init: weight variance 1/(3 fan-in))."""
    alive = (v > 0).astype(np.float64)
    d = np.nan_to_num(d)
    rr = relu_correlation(r).astype(_F)
    d_a = conv_ratio(d * np.where(alive > 0, window_ratio(rr), 0.0), c_out)
    r_b = relu_correlation(_subsample2(rr)).astype(_F)
    d_b = conv_ratio(d_a * np.where(alive > 0, window_ratio(r_b), 0.0), c_out)
    pooled = (_POOL2 @ r.reshape((LAGS + 1) ** 2, -1)).reshape(r.shape)
    g = pooled[0, 0].astype(np.float64)
    v_sc = v * g / 3.0
    with np.errstate(divide="ignore", invalid="ignore"):
        r_sc = np.where(g > 0, pooled / np.where(g > 0, g, 1.0), 0.0).astype(_F)
    d_sc = conv_ratio(d, c_out)
    v_new = alive + v_sc
    cov = alive.astype(_F) * r_b + v_sc.astype(_F) * r_sc
    _, r_new = _normalise(cov)
    return v_new, r_new, mix_ratio([alive, v_sc], [d_b, d_sc], c_out)


def _stem(n: int):
    """Stem conv 3x3 (3 -> 16, no ReLU) + BN on a white Gaussian input."""
    r = np.zeros((LAGS + 1, LAGS + 1, n), _F)
    r[0, 0] = 1.0
    return np.ones(n), r, conv_ratio(np.full(n, 27.0), C_STEM)


def block_entropies(codes: np.ndarray) -> np.ndarray:
    """H_loc (nats) after each of the 17 blocks (15 cells, 2 reduction blocks), shape (17, N),
    for cells given as op codes of shape (N, 6)."""
    codes = np.asarray(codes)
    if (
        codes.ndim != 2
        or codes.shape[1] != 6
        or codes.min(initial=0) < 0
        or codes.max(initial=0) > 4
    ):
        raise ValueError("codes must have shape (N, 6) with values 0..4 (indices into OPS)")
    parts = [_block_entropies(codes[i : i + _CHUNK]) for i in range(0, len(codes), _CHUNK)]
    return np.concatenate(parts, axis=1) if parts else np.zeros((N_BLOCKS, 0))


def _block_entropies(codes: np.ndarray) -> np.ndarray:
    q = _path_polynomials(codes)
    v, r, d = _stem(codes.shape[0])
    out, c = [], C_STEM
    for stage in range(3):
        for _ in range(CELLS_PER_STAGE):
            v, r, d = _cell(codes, q, v, r, d, c)
            out.append(local_entropy(v, r, d))
        if stage < 2:
            c *= 2
            v, r, d = _reduction(v, r, d, c)
            out.append(local_entropy(v, r, d))
    return np.array(out)


def scores_of_codes(codes: np.ndarray) -> np.ndarray:
    """`sed_like` (mean of H_loc over the 17 blocks) of cells given as op codes (N, 6); each
    distinct canonical cell is computed once."""
    canonical = canonical_cells(np.asarray(codes).reshape(-1, 6))
    unique, inverse = np.unique(canonical, axis=0, return_inverse=True)
    return block_entropies(unique).mean(axis=0)[inverse.reshape(-1)]


def sed_like_scores(archs: Sequence[str]) -> np.ndarray:
    """`sed_like` of each TSS arch string."""
    return scores_of_codes(np.array([parse_cell(a) for a in archs], dtype=np.int8))


def sed_like_score(arch: str) -> float:
    """`sed_like` of one TSS arch string, computed on its own."""
    return float(sed_like_scores([arch])[0])


@functools.lru_cache(maxsize=1)
def sed_like_table() -> np.ndarray:
    """`sed_like` of all 15,625 TSS cells in `cell_index` order (read-only; computed once)."""
    table = scores_of_codes(all_cells())
    table.setflags(write=False)
    return table


@register_proxy(
    "sed_like",
    needs=Need.ARCHITECTURE,
    sign=1,
    reference=(
        "our derivation from the principles of SED (Wu et al., AAAI 2025, arXiv 2411.06236); "
        "not the paper's formula, which was not reachable"
    ),
    spaces="tss",
)
def sed_like(ctx: ProxyContext) -> float:
    """Data-free local Gaussian entropy from the cell alone (SED-inspired, not SED's formula).

    The local entropy of the 3x3xC window propagated through the cell under Gaussian
    assumptions (pools and 1x1 convs lower it, 3x3 convs raise it, excess skips dominate),
    averaged over the 17 blocks."""
    return float(sed_like_table()[cell_index(parse_cell(ctx.arch))])
