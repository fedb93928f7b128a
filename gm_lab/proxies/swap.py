"""SWAP and regularised SWAP: the number of distinct sample-wise activation patterns.

Peng et al., "SWAP-NAS: Sample-Wise Activation Patterns for Ultra-fast NAS", ICLR 2024,
arXiv 2403.04161; official code pym1024/SWAP (`src/metrics/swap.py`, `correlation.py`,
`src/utils/utilities.py`). No labels, no gradients. The conv and linear weights are re-drawn
from N(0, 1) (biases 0, BatchNorm/GroupNorm weight 1 and bias 0: `network_weight_gaussian_init`),
and 16 images go through the network in train mode. A forward hook on every `nn.ReLU` whose
input is 4-D keeps its output; the outputs, each flattened per sample and concatenated, form a
B × neurons matrix whose sign is taken (ReLU outputs are ≥ 0, so the sign is the binary code
x > 0 of the ReLU's input). SWAP = the number of distinct rows of its transpose, i.e. of
distinct patterns (a B-bit code per neuron) over the batch. The score is the mean over several
re-draws of the weights. A ReLU called twice on the same tensor (the edges leaving a cell's
input node) repeats patterns and so adds nothing.

Regularised SWAP (`swap_reg`) multiplies every re-draw's count by
f = exp(−(P_k − μ)² / σ), P_k the number of learnable parameters in thousands (the reference's
`count_parameters` and `cal_regular_factor`, no factor 2).

μ and σ for NAS-Bench-201: NOT found. The official repositories (pym1024/SWAP, and its
successor pym1024/SWAP_Universal) only run DARTS (without regularisation) and FlexiBERT; the
paper's NAS-Bench-201 values could not be read here. Our documented choice, derived from the
search space alone (no accuracy was looked at): μ = P_k of the largest network of the space for
the dataset's class count (TSS: every edge `nor_conv_3x3`, 1531.5 k parameters with 10
classes; SSS: all channels 64), and σ = 2·s², s the standard deviation of P_k over all
architectures of the space with the same class count (TSS: s = 232.8 k, σ = 108,384), so that
f is a Gaussian of the size with the space's own spread, peaking at its largest network (f is
1 there, e^−1 at √2·s = 329 k below it, ~e^−13 at the median TSS network). See
`regularisation_constants`; benchmarks/new_proxies.py reports how τ varies with σ.

Deviations from the official code:
- Re-draws: `SWAP_DRAWS` = 4 instead of the reference's 32 (`--repeats 32`). One re-draw is a
  forward pass at batch 16: 0.14 s of CPU on one core (mean over 20 random TSS architectures,
  benchmarks/new_proxies.py), so 32 cost ~4.4 s per architecture and 4 cost ~0.6 s (network
  build included). Over those 20 architectures, Kendall τ between the 4-draw and the 32-draw
  means was 0.95, and τ with CIFAR-10 test accuracy 0.79 with 4 draws, 0.74 with 32 (CIFAR-100
  0.76 / 0.73, ImageNet16-120 0.72 / 0.69). Re-draw k is the same whatever their number
  (below), so `--swap-draws 32` of that script reports τ for 1..32 re-draws from one run.
- Re-draw k (k = 0, 1, ...) comes from its own `torch.Generator`, seeded with
  `numpy.random.SeedSequence([ctx.seed, k])` (conv/linear weights in module order); the
  reference draws them one after another from the global RNG, which it never seeds
  (`SWAP.reinit` only seeds when the seed changes). Own generators make draw k the same
  whatever the number of draws and whatever the classifier's size: SWAP does not hook the
  classifier, so it is the same for the three datasets of an architecture.
- The 16 images are the first 16 of the probe's real minibatch (`ctx.images[:16]`, test split);
  the reference takes the first 16 of an unshuffled CIFAR-10 training loader.
- Patterns are counted as packed integer codes (B ≤ 53 samples) instead of
  `torch.unique(dim=0)` on the float sign matrix, and a ReLU applied again to a tensor already
  seen is skipped; exactly the same count, and the whole matrix is never held.
  A NaN activation counts as 0 (the reference's `torch.sign` keeps NaN).
- The network is run in channels_last memory format (a re-draw took ~0.6× the time of NCHW on
  this project's CPUs); the order of neurons does not change the number of distinct patterns,
  and the weights are drawn in the contiguous layout, so the draw does not depend on it.
- μ and σ: our choice above (the reference's NAS-Bench-201 values are unknown).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from gm_lab.plugins import Need, ProxyContext, register_proxy
from gm_lab.plugins.deferred import nn, torch

if TYPE_CHECKING:
    from torch import Generator, Tensor

SWAP_BATCH = 16  # reference `--input_samples 16`
SWAP_DRAWS = 4  # the reference averages 32 re-draws; see the module docstring
TABLE_BITS = 20  # up to this batch size, distinct codes are marked in a 2^B table
REFERENCE = (
    'Peng et al., "SWAP-NAS: Sample-Wise Activation Patterns for Ultra-fast NAS", ICLR 2024, '
    "arXiv 2403.04161; code pym1024/SWAP"
)


@register_proxy("swap", needs=Need.FORWARD, sign=1, reference=REFERENCE)
def swap(ctx: ProxyContext) -> float:
    """SWAP: number of distinct sample-wise ReLU activation patterns over 16 images, mean over
    N(0, 1) re-draws of the conv/linear weights (Peng et al., ICLR 2024).

    Definition, re-draw count and deviations from the official code in the module docstring.
    """
    counts = swap_pattern_counts(ctx.network(), ctx.images[:SWAP_BATCH], SWAP_DRAWS, ctx.seed)
    return float(sum(counts) / len(counts))


@register_proxy("swap_reg", needs=Need.FORWARD, sign=1, reference=REFERENCE, spaces="tss sss")
def swap_reg(ctx: ProxyContext) -> float:
    """Regularised SWAP: SWAP × exp(−(P_k − μ)²/σ), P_k the parameters in thousands, μ and σ
    derived from the search space's size range (Peng et al., ICLR 2024).

    The official NAS-Bench-201 μ, σ are unknown; our choice is in the module docstring.
    """
    net = ctx.network()
    mu, sigma = regularisation_constants(ctx.space, ctx.num_classes)
    factor = regular_factor(sum(p.numel() for p in net.parameters()), mu, sigma)
    counts = swap_pattern_counts(net, ctx.images[:SWAP_BATCH], SWAP_DRAWS, ctx.seed)
    return float(sum(counts) / len(counts)) * factor


def draw_generator(seed: int, draw: int) -> Generator:
    """The generator of re-draw `draw` for `seed`: seeded by SeedSequence([seed, draw])."""
    state = np.random.SeedSequence([int(seed), int(draw)]).generate_state(1, dtype=np.uint64)
    return torch.Generator().manual_seed(int(state[0]))


def gaussian_reinit_(net: nn.Module, generator: Generator) -> nn.Module:
    """The reference's `network_weight_gaussian_init`, drawn from `generator`: conv and linear
    weights N(0, 1), their biases 0; BatchNorm2d/GroupNorm weight 1, bias 0. In place."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                # drawn in the contiguous layout, so the draw does not depend on memory format
                m.weight.copy_(torch.randn(m.weight.shape, generator=generator))
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                if m.weight is not None:
                    m.weight.fill_(1.0)
                if m.bias is not None:
                    m.bias.zero_()
    return net


def activation_pattern_count(net: nn.Module, images: Tensor) -> int:
    """Distinct sample-wise patterns of one forward of `images` through `net` as it is.

    A pattern is one neuron's binary code (output > 0) over the B samples, for every neuron of
    every `nn.ReLU` call whose input is 4-D. 0 if no such ReLU runs. Each pattern is packed into
    the exact integer Σ_b 2^b·bit_b (a float32/float64 matrix-vector product, exact below 2^24 /
    2^53); up to `TABLE_BITS` samples the codes found are marked in a 2^B table. A ReLU applied
    again to a tensor it already saw (unchanged) is skipped: its patterns are already counted.
    """
    batch = images.shape[0]
    dtype = torch.float32 if batch <= 24 else torch.float64 if batch <= 53 else None
    weights = None if dtype is None else torch.pow(2.0, torch.arange(batch, dtype=dtype))
    table = torch.zeros(1 << batch, dtype=torch.bool) if batch <= TABLE_BITS else None
    found: list[Tensor] = []
    seen: dict[tuple[int, int], Tensor] = {}  # holds the inputs, so their ids are not reused

    def hook(_module: nn.Module, inp: tuple, out: Tensor) -> None:
        if not (isinstance(inp, tuple) and inp and inp[0].dim() == 4):
            return
        key = (id(inp[0]), inp[0]._version)
        if key in seen:  # an in-place ReLU bumps its input's version, so it is never skipped
            return
        seen[key] = inp[0]
        x = out.detach()
        if x.is_contiguous(memory_format=torch.channels_last):
            x = x.permute(0, 2, 3, 1)  # read as it lies in memory: neuron order is irrelevant
        if weights is None:
            bits = torch.gt(x, 0).reshape(batch, -1)
            found.append(torch.unique(bits.T.to(torch.uint8), dim=0))
            return
        bits = torch.gt(x, 0, out=torch.empty(x.shape, dtype=dtype)).reshape(batch, -1)
        codes = torch.mv(bits.T, weights).to(torch.int64)
        if table is not None:
            table[codes] = True
        else:
            found.append(torch.unique(codes))

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.ReLU)]
    try:
        with torch.no_grad():
            net(images)
    finally:
        for h in handles:
            h.remove()
    if table is not None:
        return int(table.sum())
    if not found:
        return 0
    if weights is not None:
        return int(torch.unique(torch.cat(found)).numel())
    return int(torch.unique(torch.cat(found), dim=0).shape[0])


def swap_pattern_counts(net: nn.Module, images: Tensor, draws: int, seed: int) -> list[int]:
    """SWAP's count for each of `draws` N(0, 1) re-draws of `net`'s weights (re-draw k from
    `draw_generator(seed, k)`), the network in train mode and channels_last, one forward of
    `images` each. Count k depends neither on `draws` nor on the classifier's size."""
    net = net.train().to(memory_format=torch.channels_last)
    images = images.to(memory_format=torch.channels_last)
    counts = []
    for k in range(draws):
        gaussian_reinit_(net, draw_generator(seed, k))
        counts.append(activation_pattern_count(net, images))
    return counts


def regular_factor(n_params: int, mu: float, sigma: float) -> float:
    """The reference's `cal_regular_factor`: exp(−(P_k − μ)² / σ), P_k = `n_params` / 1000."""
    return math.exp(-((n_params / 1e3 - mu) ** 2) / sigma)


# Largest network of each space, and the moments of its parameter count over all its
# architectures, in thousands: P_k = b + (c + 1)·K / 1000 for K classes (b the backbone, c the
# classifier's input width in thousands: constant in TSS, the last width in SSS), so
# var(P_k) = var(b) + K²·var(c) + 2K·cov(b, c). The test recomputes μ and σ by enumerating
# the spaces with gm_lab.networks.count_params.
LARGEST_ARCH = {
    "tss": "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
    "sss": "64:64:64:64:64",
}
SIZE_MOMENTS = {  # (var(b), var(c), cov(b, c))
    "tss": (54191.886336, 0.0, 0.0),
    "sss": (12106.481646, 0.000336, 0.884604),
}


def regularisation_constants(space: str, num_classes: int) -> tuple[float, float]:
    """Our (μ, σ) for `space` (module docstring): μ = thousands of parameters of the space's
    largest network with `num_classes` classes, σ = 2·s², s² the variance of the thousands of
    parameters over every architecture of the space with `num_classes` classes."""
    from gm_lab.networks import count_params

    if space not in LARGEST_ARCH:
        raise ValueError(f"no SWAP regularisation constants for search space {space!r}")
    var_b, var_c, cov_bc = SIZE_MOMENTS[space]
    k = num_classes
    variance = var_b + k * k * var_c + 2 * k * cov_bc
    return count_params(space, LARGEST_ARCH[space], k) / 1e3, 2.0 * variance
