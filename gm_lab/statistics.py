"""The per-layer statistics: the vocabulary GP builds proxies from, one function per statistic.

Every conv/linear layer of a probed network gets a `LayerBundle` (gm_lab.probe.statistics): its
weights W, the cross-entropy gradient G of W, its output A and the gradient dA of the loss
w.r.t. that output (all on the real minibatch), its output A_noise on the Gaussian batch, and
fixed facts about the module (fan-in, kernel, stride, ...). A statistic is one small function of
a bundle returning a scalar; `@register_statistic("W G")` registers it (naming the tensors it
reads), so adding one is writing one function here, or in a notebook, or in a package exposing
the `gm_lab.statistics` entry point.

Why this shape: a GP expression over per-layer scalars can be evaluated for thousands of
architectures per second from a cache, while the tensors themselves (hundreds of MB per network)
cannot be kept. Several classic proxies are sums of these statistics (snip, grad_norm, l2_norm,
plain, fisher), so GP can rediscover them.

Conventions: standard deviations are population ones (correction 0, as numpy and ZiCo use); a
ratio whose denominator is 0 is 0 (e.g. the gradient statistics of a layer whose output never
reaches the loss), so vectors stay finite. The functions only call the bundle's shared
summaries and tensor methods, so this module loads without torch (the catalogue of GP
terminals is read from it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gm_lab.plugins import register_statistic

if TYPE_CHECKING:
    from gm_lab.probe.statistics import LayerBundle

LOG_EPS = 1e-20  # inside Σ log(|W·G| + ε): a weight with zero gradient adds log(ε), not -inf


def _div(num: float, den: float) -> float:
    """num / den, and 0 where den is 0 (see the module doc)."""
    return num / den if den != 0 else 0.0


# ---- module facts -----------------------------------------------------------------------------


@register_statistic()
def numel_l(b: LayerBundle) -> float:
    """Number of weights."""
    return b.facts.numel


@register_statistic()
def fan_in_l(b: LayerBundle) -> float:
    """Inputs per output unit: in_channels / groups × kernel area."""
    return b.facts.fan_in


@register_statistic()
def fan_out_l(b: LayerBundle) -> float:
    """out_channels × kernel area (torch.nn.init's fan_out)."""
    return b.facts.fan_out


@register_statistic()
def in_channels_l(b: LayerBundle) -> float:
    """Input channels (in_features for the classifier)."""
    return b.facts.in_channels


@register_statistic()
def out_channels_l(b: LayerBundle) -> float:
    """Output channels (out_features for the classifier)."""
    return b.facts.out_channels


@register_statistic()
def kernel_size_l(b: LayerBundle) -> float:
    """Kernel side (1 or 3 in these networks; 1 for the classifier)."""
    return b.facts.kernel_size


@register_statistic()
def stride_l(b: LayerBundle) -> float:
    """Convolution stride (1 for the classifier)."""
    return b.facts.stride


@register_statistic()
def out_positions_l(b: LayerBundle) -> float:
    """Output spatial positions per sample, H × W (1 for the classifier)."""
    return b.facts.out_positions


@register_statistic()
def macs_l(b: LayerBundle) -> float:
    """Multiply-accumulates (+ bias additions) per input sample; the `flops` proxy is their sum."""
    return b.facts.macs


@register_statistic()
def depth_l(b: LayerBundle) -> float:
    """Position in forward order, 0 (stem) to 1 (classifier)."""
    return b.facts.depth


# ---- weights ----------------------------------------------------------------------------------


@register_statistic("W")
def l2_norm_l(b: LayerBundle) -> float:
    """‖W‖₂ (Frobenius); the `l2_norm` proxy is its sum over layers."""
    return b.s("W").norm


@register_statistic("W")
def w_mean_l(b: LayerBundle) -> float:
    """Mean weight."""
    return b.s("W").mean


@register_statistic("W")
def w_std_l(b: LayerBundle) -> float:
    """Standard deviation of the weights (the scale set by the initialiser and fan-in)."""
    return b.s("W").std


@register_statistic("W")
def w_abs_mean_l(b: LayerBundle) -> float:
    """Mean |W|."""
    return b.s("W").abs_mean


@register_statistic("W")
def w_abs_max_l(b: LayerBundle) -> float:
    """max |W|."""
    return b.s("W").abs_max


# ---- weight gradients -------------------------------------------------------------------------


@register_statistic("G")
def grad_norm_l(b: LayerBundle) -> float:
    """‖G‖₂; the `grad_norm` proxy is its sum over layers."""
    return b.s("G").norm


@register_statistic("G")
def g_mean_l(b: LayerBundle) -> float:
    """Mean gradient."""
    return b.s("G").mean


@register_statistic("G")
def g_std_l(b: LayerBundle) -> float:
    """Standard deviation of the gradient over the layer's weights."""
    return b.s("G").std


@register_statistic("G")
def g_abs_mean_l(b: LayerBundle) -> float:
    """Mean |G|."""
    return b.s("G").abs_mean


@register_statistic("G")
def g_abs_max_l(b: LayerBundle) -> float:
    """max |G|."""
    return b.s("G").abs_max


@register_statistic("G")
def g_snr_l(b: LayerBundle) -> float:
    """mean|G| / std(G) over the layer's weights: a ZiCo-style signal-to-noise ratio."""
    return _div(b.s("G").abs_mean, b.s("G").std)


# ---- weights × gradients ----------------------------------------------------------------------


@register_statistic("W G")
def snip_l(b: LayerBundle) -> float:
    """Σ|W·G| (SNIP saliency); the `snip` proxy is its sum over layers."""
    return b.s("WG").abs_sum


@register_statistic("W G")
def log_snip_l(b: LayerBundle) -> float:
    """Σ log(|W·G| + 1e-20): SNIP in log space, dominated by typical rather than largest terms."""
    return float(b.WG.abs().add_(LOG_EPS).log_().sum())


@register_statistic("W G")
def plain_l(b: LayerBundle) -> float:
    """Σ W·G (first-order loss change when the weights are scaled); sums to `plain`."""
    return b.s("WG").total


@register_statistic("W G")
def wg_cos_l(b: LayerBundle) -> float:
    """Cosine between W and G: how much of the gradient points along the weights."""
    return _div(b.s("WG").total, b.s("W").norm * b.s("G").norm)


@register_statistic("W G")
def g_w_ratio_l(b: LayerBundle) -> float:
    """‖G‖ / ‖W‖: relative size of one gradient step (layer-wise learning speed)."""
    return _div(b.s("G").norm, b.s("W").norm)


# ---- outputs on the real batch and their gradients --------------------------------------------


@register_statistic("A")
def a_mean_l(b: LayerBundle) -> float:
    """Mean output (before the following BN)."""
    return b.s("A").mean


@register_statistic("A")
def a_std_l(b: LayerBundle) -> float:
    """Standard deviation of the outputs: signal scale at this depth."""
    return b.s("A").std


@register_statistic("A")
def a_abs_mean_l(b: LayerBundle) -> float:
    """Mean |A|."""
    return b.s("A").abs_mean


@register_statistic("A")
def a_abs_max_l(b: LayerBundle) -> float:
    """max |A|."""
    return b.s("A").abs_max


@register_statistic("A")
def a_active_l(b: LayerBundle) -> float:
    """Fraction of outputs > 0 (units a following ReLU would let through)."""
    return b.s("A").active


@register_statistic("dA")
def da_norm_l(b: LayerBundle) -> float:
    """‖dA‖₂: how strongly the loss reacts to this layer's output."""
    return b.s("dA").norm


@register_statistic("dA")
def da_std_l(b: LayerBundle) -> float:
    """Standard deviation of dA."""
    return b.s("dA").std


@register_statistic("dA")
def da_abs_mean_l(b: LayerBundle) -> float:
    """Mean |dA|."""
    return b.s("dA").abs_mean


@register_statistic("A dA")
def a_da_l(b: LayerBundle) -> float:
    """Σ|A·dA|: first-order saliency of the layer's output units."""
    return b.s("AdA").abs_sum


@register_statistic("A dA")
def fisher_l(b: LayerBundle) -> float:
    """½ Σ_channels mean_batch (Σ_positions A·dA)²: the Fisher channel saliency of Theis et al.

    (2018) as the foresight `fisher` measure computes it; the `fisher` proxy is its sum.
    """
    prod = b.AdA
    per_channel = prod.sum(dim=tuple(range(2, prod.dim()))) if prod.dim() > 2 else prod
    return 0.5 * float(per_channel.pow(2).mean(0).sum())


# ---- outputs on the Gaussian noise batch ------------------------------------------------------


@register_statistic("A_noise")
def an_mean_l(b: LayerBundle) -> float:
    """Mean output on Gaussian input."""
    return b.s("A_noise").mean


@register_statistic("A_noise")
def an_std_l(b: LayerBundle) -> float:
    """Standard deviation of the output on Gaussian input."""
    return b.s("A_noise").std


@register_statistic("A_noise")
def an_abs_mean_l(b: LayerBundle) -> float:
    """Mean |A| on Gaussian input."""
    return b.s("A_noise").abs_mean


@register_statistic("A_noise")
def an_active_l(b: LayerBundle) -> float:
    """Fraction of outputs > 0 on Gaussian input."""
    return b.s("A_noise").active


@register_statistic("A A_noise")
def an_a_std_ratio_l(b: LayerBundle) -> float:
    """std(A on noise) / std(A on images): how differently the layer treats noise and data."""
    return _div(b.s("A_noise").std, b.s("A").std)
