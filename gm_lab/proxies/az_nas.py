"""AZ-NAS components: expressivity, progressivity and trainability of a network at initialisation.

Lee & Ham, "AZ-NAS: Assembling Zero-Cost Proxies for Network Architecture Search", CVPR 2024,
arXiv 2403.19232; official code cvlab-yonsei/AZ-NAS, `NB201/ZeroShotProxy/compute_az_nas_score.py`
(`compute_nas_score`), `NB201/custom/tss_model.py` (`extract_cell_features`) and
`NB201/tss_general.ipynb` (how they are run and assembled).

The official NB201 procedure, which this file follows:
1. Re-initialise the network (`init_model(model, 'kaiming_norm_fanin')`): Conv2d/Linear weights
   Kaiming-normal (fan_in, ReLU gain), biases 0; affine BatchNorm weight 1, bias 0.
2. Input: `torch.randn(64, 3, R, R)`, Gaussian noise (AZ-NAS is not among the notebook's
   `real_input_metrics`); batch 64 (the train loader's batch size, `weight-sharing.config`), R the
   dataset's resolution (32, or 16 for ImageNet16-120). No labels.
3. The network in train mode (BatchNorm normalises with batch statistics). One forward keeps the
   18 feature maps F_0..F_17 of `extract_cell_features`: the stem's output and the output of
   each of the 17 blocks (15 searched cells and the 2 ResNet reduction blocks).
4. Expressivity of F_i [B, C, H, W]: the channel covariance Σ = XᵀX / (BHW) of the centred
   BHW × C matrix X, its eigenvalues s, p = s / Σs, e_i = −Σ p log(p + 1e−8).
   **s_E = Σ_i e_i**; **s_P = min_i (e_i − e_{i−1})** (17 consecutive differences).
5. Trainability, for each block i = 17 … 1 (in that order): g_out = Rademacher noise (±1, the
   code's `(bernoulli(0.5) − 0.5)·2`) shaped like F_i, back-propagated through the block alone
   to g_in = ∂F_i/∂F_{i−1}ᵀ g_out. If g_in has g_out's shape and equals it exactly, the block is
   an identity and scores −∞. Otherwise, when the block downsamples, g_in is pixel-unshuffled by
   the stride (H_in / H_out), so [B, C_in, H, W] → [B, 4·C_in, H/2, W/2]; M = G_inᵀ G_out / (BHW)
   with G the BHW × C matrices; σ = its largest singular value; the block scores
   −σ − 1/(σ + 1e−6) + 2 (maximal, 0, at σ = 1). **s_T = the mean over the 17 blocks** (−∞ as
   soon as one block is an identity).
6. A NaN s_E, s_P or s_T is reported as −∞ (the code's `if not np.isnan(...) else -np.inf`).
7. s_C = FLOPs (from the NATS-Bench API there): gm_lab's `flops` proxy, so there is no
   `az_complexity` here. The AZ-NAS score is Σ_k log(rank_k / N) over the evaluated population
   of s_E, s_P, s_T and s_C (`gm_lab.aggregate.log_rank_sum`), not a per-architecture proxy.

On a TSS cell whose output is its input plus `none` edges (e.g. node 3 = skip_connect~0 with
every other edge into it `none`), the gradient passes unchanged: s_T = −∞ (the official result).
A cell whose output is zero (only `none` edges into node 3) zeroes every later feature map:
its covariances are 0, s_E and s_P are NaN, hence −∞, and s_T is very negative (σ = 0 → −1e6).

Deviations from the official code:
- The Gaussian input, the Kaiming draws and the Rademacher draws come from one
  `torch.Generator` seeded with `ctx.seed`, in that order (input first, so every architecture
  sees the same input; then the weights in `net.apply` order; then g_out for blocks 17 … 1);
  the official code uses the global RNG (`prepare_seed(rand_seed)` once, then one stream across
  all architectures). The probe's real images are not used.
- Eigenvalues: the covariance and M are summed in float32 as in the official code, but their
  eigen/singular values are found in float64 and the covariance's eigenvalues below 0 set to 0.
  Many TSS feature maps have a nearly rank-deficient channel covariance (smallest normalised
  eigenvalue 1e−8 … 1e−12, mostly cells rich in skip connections); float32 `eigvalsh` then
  returns it slightly below 0, and once it is below −1e−8 the official log(p + 1e−8) is NaN,
  so s_E and s_P become −∞ by rounding alone (2 of 12 random archs on CPU here; which ones
  depends on the hardware's rounding). `az_nas_scores(..., literal=True)` reproduces that
  behaviour for comparison; the registered proxies do not.
- The Rademacher noise is drawn as `random_(0, 2)·2 − 1` in the feature map's memory format
  (channels_last) rather than `bernoulli(0.5)` in NCHW: the same distribution, other numbers
  for a given seed. The official code draws from its global RNG anyway, so no draw is
  reproducible across the two.
- A block whose output does not depend on its input (the official `autograd.grad` would raise)
  gets g_in = 0, hence σ = 0 and a score of −1e6 + 2. gm_lab's `none` op keeps the graph
  (`x.mul(0)`, as xautodl), so this does not happen in TSS networks.
- Features come from `net.stem` and `net.cells` of gm_lab's own TSS/SSS network (the same
  modules, in the same order, as the repository's `custom/tss_model.py`); a network without
  them raises `ProxyUnavailable` (NaN in the probe). Run in channels_last memory format with
  gm_lab's lean average pool (gm_lab.probe.pooling: the same numbers, faster on CPU).
- The three components come from one pass, memoised per (space, arch, dataset, num_classes,
  seed): the probe calls `az_expressivity`, `az_progressivity` and `az_trainability` one after
  another on the same architecture. A context with a custom `build` for the same key reads the
  memo; call `az_nas_scores` directly for such a network.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gm_lab.plugins import Need, ProxyContext, ProxyUnavailable, register_proxy
from gm_lab.plugins.deferred import nn, torch
from gm_lab.plugins.fingerprint import files_digest
from gm_lab.proxies import vkdnw
from gm_lab.spaces.datasets import INPUT_SIZE, normalise_dataset

if TYPE_CHECKING:
    from torch import Generator, Tensor

BATCH_SIZE = 64  # the train loader's batch size in tss_general.ipynb (weight-sharing.config)
PROB_EPS = 1e-8  # log(p + 1e-8) in the expressivity entropy
SIGMA_EPS = 1e-6  # 1 / (σ + 1e-6) in the trainability score
MEMO_SIZE = 8  # architectures whose three components are kept (the probe asks one at a time)
REFERENCE = (
    'Lee & Ham, "AZ-NAS: Assembling Zero-Cost Proxies for Network Architecture Search", '
    "CVPR 2024, arXiv 2403.19232; code cvlab-yonsei/AZ-NAS"
)
# The Kaiming re-initialisation is VKDNW's (the same `init_model` in both repositories): the
# version covers both files, so a change there refreshes cached AZ-NAS values too.
VERSION = files_digest([Path(__file__), Path(vkdnw.__file__)])


@dataclass(frozen=True)
class AzNasScores:
    """The three components of one network, and the per-feature/per-block terms behind them."""

    expressivity: float  # s_E = Σ e_i (−∞ if NaN)
    progressivity: float  # s_P = min_i (e_i − e_{i−1}) (−∞ if NaN)
    trainability: float  # s_T = mean over blocks of −σ − 1/(σ + 1e−6) + 2 (−∞ if NaN)
    entropies: tuple[float, ...]  # e_0 … e_17
    block_scores: tuple[float, ...]  # blocks 1 … 17 (−∞ for an identity block)


@register_proxy(
    "az_expressivity", needs=Need.BACKWARD, sign=1, reference=REFERENCE, version=VERSION
)
def az_expressivity(ctx: ProxyContext) -> float:
    """AZ-NAS expressivity s_E: Σ over the stem and the 17 blocks of the entropy of the normalised
    eigenvalues of the channel covariance of their feature maps (Lee & Ham, CVPR 2024).

    Kaiming re-initialisation, train mode, 64 Gaussian inputs, all seeded by `ctx.seed`; one
    pass shared with `az_progressivity` and `az_trainability`. Details and deviations from the
    official code in the module docstring.
    """
    return _scores(ctx).expressivity


@register_proxy(
    "az_progressivity", needs=Need.BACKWARD, sign=1, reference=REFERENCE, version=VERSION
)
def az_progressivity(ctx: ProxyContext) -> float:
    """AZ-NAS progressivity s_P: the smallest increase of the feature-map entropy from one block
    to the next (Lee & Ham, CVPR 2024).

    Same pass as `az_expressivity`; details in the module docstring.
    """
    return _scores(ctx).progressivity


@register_proxy(
    "az_trainability", needs=Need.BACKWARD, sign=1, reference=REFERENCE, version=VERSION
)
def az_trainability(ctx: ProxyContext) -> float:
    """AZ-NAS trainability s_T: mean over blocks of −σ − 1/σ + 2, σ the spectral norm of the
    block's input-output gradient correlation under Rademacher noise; −∞ if a block is an
    identity (Lee & Ham, CVPR 2024).

    Same pass as `az_expressivity`; details in the module docstring.
    """
    return _scores(ctx).trainability


# ---- the pass ----------------------------------------------------------------------------------


def az_nas_scores(
    net: nn.Module, inputs: Tensor, generator: Generator | None = None, literal: bool = False
) -> AzNasScores:
    """s_E, s_P and s_T of `net` (weights as they are; put in train mode here) on `inputs`, the
    Rademacher noise drawn from `generator` (blocks in reverse order, as the official loop).
    `literal`: the official float32 eigenvalues in the entropies (see `feature_entropy`)."""
    net.train()
    with torch.enable_grad():
        features = cell_features(net, inputs)
        entropies = [feature_entropy(f, literal) for f in features]
        block_scores = []
        for i in reversed(range(1, len(features))):
            g_out = rademacher_like(features[i], generator)
            block_scores.append(block_trainability(features[i - 1], features[i], g_out))
    block_scores.reverse()
    return AzNasScores(
        expressivity=_nan_to_neginf(float(np.sum(entropies))),
        progressivity=_nan_to_neginf(progressivity(entropies)),
        trainability=_nan_to_neginf(float(np.mean(block_scores))),
        entropies=tuple(entropies),
        block_scores=tuple(block_scores),
    )


def cell_features(net: nn.Module, inputs: Tensor) -> list[Tensor]:
    """[stem(x), cell_1(…), …, cell_17(…)]: the official `extract_cell_features`, with graph."""
    stem, cells = getattr(net, "stem", None), getattr(net, "cells", None)
    if stem is None or cells is None:
        raise ProxyUnavailable("AZ-NAS reads the feature maps of `net.stem` and `net.cells`")
    features = [stem(inputs)]
    for cell in cells:
        features.append(cell(features[-1]))
    return features


def feature_entropy(feature: Tensor, literal: bool = False) -> float:
    """e = −Σ p log(p + 1e−8), p the eigenvalues of the channel covariance of `feature`
    [B, C, H, W] (over its B·H·W positions, centred) divided by their sum; NaN if they sum to 0.

    The covariance is summed in float32 (as the official code), its eigenvalues found in float64
    and those below 0, rounding noise of a (nearly) rank-deficient covariance, set to 0.
    `literal=True` keeps the official float32 eigenvalues unclamped: a rounding error below
    −1e−8·Σs then makes log(p + 1e−8), hence e, NaN."""
    channels = feature.shape[1]
    x = feature.detach().permute(0, 2, 3, 1).reshape(-1, channels)
    x = x - x.mean(dim=0, keepdim=True)
    covariance = x.T @ x / x.shape[0]
    if not bool(torch.isfinite(covariance).all()):
        return math.nan
    if literal:
        eigenvalues = torch.linalg.eigvalsh(covariance)
    else:
        eigenvalues = torch.linalg.eigvalsh(covariance.double()).clamp(min=0.0)
    p = eigenvalues / eigenvalues.sum()
    return float(-(p * torch.log(p + PROB_EPS)).sum())


def progressivity(entropies: list[float] | np.ndarray) -> float:
    """s_P = min_i (e_i − e_{i−1}) over consecutive entropies."""
    e = np.asarray(entropies, dtype=float)
    return float(np.min(e[1:] - e[:-1]))


def rademacher_like(t: Tensor, generator: Generator | None = None) -> Tensor:
    """±1 with probability ½ each, shaped like `t` and in its memory format (the official
    `(bernoulli(0.5) − 0.5)·2`, drawn here as `random_(0, 2)·2 − 1`: the same distribution,
    2-3× faster on CPU). A gradient in the graph's own layout (channels_last) keeps the
    backward on its fast kernels."""
    bits = torch.empty_like(t, requires_grad=False).random_(0, 2, generator=generator)
    return bits.mul_(2).sub_(1)


def block_trainability(f_in: Tensor, f_out: Tensor, g_out: Tensor) -> float:
    """−σ − 1/(σ + 1e−6) + 2 for the block mapping `f_in` to `f_out` (σ: `gradient_sigma` of the
    back-propagated `g_out`); −∞ when the gradient passes unchanged (an identity block). Frees
    the graph between the two."""
    if f_out.requires_grad:
        (g_in,) = torch.autograd.grad(f_out, f_in, g_out, allow_unused=True)
    else:
        g_in = None
    if g_in is None:  # f_out does not depend on f_in
        g_in = torch.zeros_like(f_in)
    if g_in.shape == g_out.shape and torch.equal(g_in, g_out):
        return -math.inf
    return sigma_score(gradient_sigma(g_in, g_out))


def gradient_sigma(g_in: Tensor, g_out: Tensor) -> float:
    """σ: the largest singular value of G_inᵀ G_out / (B·H·W), the gradients as (B·H·W) × C
    matrices; `g_in` pixel-unshuffled by H_in / H_out first when the block downsamples.
    The product is summed in float32 (as the official code), its SVD taken in float64."""
    if g_in.shape[2:] != g_out.shape[2:]:
        g_in = torch.nn.functional.pixel_unshuffle(g_in, g_in.shape[2] // g_out.shape[2])
    rows_in = g_in.permute(0, 2, 3, 1).reshape(-1, g_in.shape[1])
    rows_out = g_out.permute(0, 2, 3, 1).reshape(-1, g_out.shape[1])
    matrix = (rows_in.T @ rows_out / rows_out.shape[0]).double()
    if not bool(torch.isfinite(matrix).all()):
        return math.nan
    return float(torch.linalg.svdvals(matrix).max())


def sigma_score(sigma: float) -> float:
    """−σ − 1/(σ + 1e−6) + 2: 0 at σ = 1, lower for gradients that shrink or grow."""
    return -sigma - 1.0 / (sigma + SIGMA_EPS) + 2.0


def _nan_to_neginf(value: float) -> float:
    return -math.inf if math.isnan(value) else value


# ---- the registered proxies' context -----------------------------------------------------------

_MEMO: OrderedDict[tuple, AzNasScores] = OrderedDict()
_MEMO_LOCK = threading.Lock()


def _scores(ctx: ProxyContext) -> AzNasScores:
    """The components of the context's architecture, computed once per memo key."""
    key = (ctx.space, ctx.arch, ctx.dataset, int(ctx.num_classes), int(ctx.seed))
    with _MEMO_LOCK:
        if key in _MEMO:
            _MEMO.move_to_end(key)
            return _MEMO[key]
    scores = _compute(ctx)
    with _MEMO_LOCK:
        _MEMO[key] = scores
        while len(_MEMO) > MEMO_SIZE:
            _MEMO.popitem(last=False)
    return scores


def _compute(ctx: ProxyContext, literal: bool = False) -> AzNasScores:
    """The official procedure on the context's network: seeded Gaussian input, Kaiming
    re-initialisation, then the pass (channels_last, lean average pool)."""
    net, inputs, generator = prepared(ctx)
    with _lean_pool(net):
        return az_nas_scores(net, inputs, generator, literal)


def prepared(ctx: ProxyContext) -> tuple[nn.Module, Tensor, Generator]:
    """The context's network re-initialised, its Gaussian input (channels_last both) and the
    generator they came from, which then draws the Rademacher noise."""
    resolution = input_resolution(ctx.dataset)
    generator = torch.Generator().manual_seed(int(ctx.seed))
    inputs = torch.randn(BATCH_SIZE, 3, resolution, resolution, generator=generator)
    net = vkdnw.kaiming_normal_fanin_init(ctx.network(), generator)
    net = net.to(memory_format=torch.channels_last)
    return net, inputs.contiguous(memory_format=torch.channels_last), generator


def input_resolution(dataset: str) -> int:
    """The side of the Gaussian input: the dataset's image size (32, or 16 for ImageNet16-120)."""
    return INPUT_SIZE[normalise_dataset(dataset)]


def _lean_pool(net: nn.Module) -> contextlib.AbstractContextManager[None]:
    """gm_lab's faster average pool (the same numbers on x86 CPUs; gm_lab.probe.pooling)."""
    from gm_lab.probe.pooling import lean_pool

    return lean_pool(net)
