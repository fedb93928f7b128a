"""Per-layer statistics of a network at initialisation: the vocabulary GP builds proxies from.

Every conv/linear layer gets a `LayerBundle`: its weights W, the cross-entropy gradient G of W,
its output A and the gradient dA of the loss w.r.t. that output (all on the real minibatch), its
output A_noise on the Gaussian batch, and fixed facts about the module (fan-in, kernel, stride,
...). A statistic is one small function of a bundle returning a scalar; `@statistic` registers it,
so adding one is writing one function. `compute_statistics` evaluates every registered statistic
for every layer and returns one float64 vector per statistic, in layer order.

Why this shape: a GP expression over per-layer scalars can be evaluated for thousands of
architectures per second from a cache, while the tensors themselves (hundreds of MB per network)
cannot be kept. Several classic proxies are sums of these statistics (snip, grad_norm, l2_norm,
plain, fisher), so GP can rediscover them.

Conventions: standard deviations are population ones (correction 0, as numpy and ZiCo use); a
ratio whose denominator is 0 is 0 (e.g. the gradient statistics of a layer whose output never
reaches the loss), so vectors stay finite; reductions run in torch on the whole tensor (no Python
loop over elements) and intermediates shared by several statistics are computed once per layer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch
from torch import Tensor, nn

TENSORS: frozenset[str] = frozenset({"W", "G", "A", "dA", "A_noise"})
LOG_EPS = 1e-20  # inside Σ log(|W·G| + ε): a weight with zero gradient adds log(ε), not -inf


@dataclass(frozen=True)
class LayerFacts:
    """What a conv/linear layer is, independent of any input: shapes and its place in the net."""

    name: str
    kind: str  # "conv" or "linear"
    in_channels: int
    out_channels: int
    kernel_size: int  # kernel height (the networks use square kernels); 1 for linear
    kernel_area: int  # kernel height × width; 1 for linear
    stride: int
    groups: int
    bias: bool
    out_positions: int  # output positions per sample (H × W); 1 for linear
    depth: float  # forward position scaled to [0, 1]

    @property
    def fan_in(self) -> int:
        return self.in_channels // self.groups * self.kernel_area

    @property
    def fan_out(self) -> int:
        """As torch.nn.init defines it: output channels × kernel area."""
        return self.out_channels * self.kernel_area

    @property
    def numel(self) -> int:
        return self.out_channels * self.fan_in

    @property
    def macs(self) -> int:
        """Multiply-accumulates for one input sample, plus one addition per output if the layer
        has a bias: how NATS-Bench (xautodl) counts the `flop` of conv/linear layers."""
        per_position = self.numel + (self.out_channels if self.bias else 0)
        return per_position * self.out_positions


def layer_facts(
    name: str, module: nn.Module, output_shape: Sequence[int], depth: float
) -> LayerFacts:
    """Facts of a Conv2d or Linear `module` whose output (batch first) has `output_shape`."""
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        positions = int(np.prod(output_shape[2:])) if len(output_shape) > 2 else 1
        return LayerFacts(
            name=name,
            kind="conv",
            in_channels=module.in_channels,
            out_channels=module.out_channels,
            kernel_size=int(kh),
            kernel_area=int(kh * kw),
            stride=int(module.stride[0]),
            groups=int(module.groups),
            bias=module.bias is not None,
            out_positions=positions,
            depth=depth,
        )
    if isinstance(module, nn.Linear):
        return LayerFacts(
            name=name,
            kind="linear",
            in_channels=module.in_features,
            out_channels=module.out_features,
            kernel_size=1,
            kernel_area=1,
            stride=1,
            groups=1,
            bias=module.bias is not None,
            out_positions=1,
            depth=depth,
        )
    raise TypeError(f"layer {name!r} is a {type(module).__name__}, not Conv2d or Linear")


def _div(num: float, den: float) -> float:
    """num / den, and 0 where den is 0 (see the module doc)."""
    return num / den if den != 0 else 0.0


def _flat(t: Tensor) -> Tensor:
    """A 1-D view of a dense tensor's memory (NCHW or channels_last) for whole-tensor reductions;
    reducing a channels_last tensor through its 4-D strides is several times slower."""
    if t.is_contiguous():
        return t.view(-1)
    if t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last):
        return torch.as_strided(t, (t.numel(),), (1,))
    return t.reshape(-1)


class Summary:
    """Whole-tensor moments of one tensor, each computed on first use and shared.

    Uses the cheapest exact-enough torch kernels: sum and dot (BLAS) instead of std_mean,
    Σ|x| = 2 Σ relu(x) - Σ x, and the count of positives from the same relu; population std
    from the moments (float64 arithmetic on the float32 sums).
    """

    def __init__(self, t: Tensor) -> None:
        self.flat = _flat(t)
        self.n = t.numel()

    @cached_property
    def total(self) -> float:
        return float(self.flat.sum())

    @cached_property
    def mean(self) -> float:
        return self.total / self.n

    @cached_property
    def sumsq(self) -> float:
        return float(torch.dot(self.flat, self.flat))

    @cached_property
    def norm(self) -> float:
        return math.sqrt(self.sumsq)

    @cached_property
    def std(self) -> float:
        return math.sqrt(max(self.sumsq / self.n - self.mean**2, 0.0))

    @cached_property
    def _positive(self) -> tuple[float, float]:
        r = torch.relu(self.flat)
        return float(r.sum()), float(r.sign_().sum())

    @cached_property
    def abs_sum(self) -> float:
        return max(2.0 * self._positive[0] - self.total, 0.0)

    @cached_property
    def abs_mean(self) -> float:
        return self.abs_sum / self.n

    @cached_property
    def active(self) -> float:
        """Fraction of entries > 0."""
        return self._positive[1] / self.n

    @cached_property
    def abs_max(self) -> float:
        lo, hi = torch.aminmax(self.flat)
        return max(-float(lo), float(hi))


@dataclass(eq=False)
class LayerBundle:
    """Tensors and facts of one layer, with shared intermediates computed on first use.

    Tensors are detached; a missing one (None) makes the statistics that need it NaN.
    """

    facts: LayerFacts
    W: Tensor | None = None
    G: Tensor | None = None
    A: Tensor | None = None
    dA: Tensor | None = None
    A_noise: Tensor | None = None
    _available: frozenset[str] = field(init=False, repr=False)
    _summaries: dict[str, Summary] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._available = frozenset(n for n in TENSORS if getattr(self, n) is not None)

    def has(self, needs: frozenset[str]) -> bool:
        return needs <= self._available

    def s(self, name: str) -> Summary:
        """The Summary of tensor `name` (W, G, A, dA, A_noise) or of the products WG, AdA."""
        if name not in self._summaries:
            self._summaries[name] = Summary(getattr(self, name))
        return self._summaries[name]

    @cached_property
    def WG(self) -> Tensor:
        return self.W * self.G

    @cached_property
    def AdA(self) -> Tensor:
        return self.A * self.dA


# ---- the registry ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Statistic:
    """A registered per-layer statistic: its name, the tensors it reads, and its function."""

    name: str
    needs: frozenset[str]
    fn: Callable[[LayerBundle], float]
    doc: str


STATISTICS: dict[str, Statistic] = {}


def statistic(needs: str = "") -> Callable[[Callable[[LayerBundle], float]], Statistic]:
    """Register the decorated function as a statistic named after it (must end in `_l`).

    `needs` lists the tensors it reads, space separated (W G A dA A_noise); facts are always
    available.
    """
    wanted = frozenset(needs.split())
    unknown = wanted - TENSORS
    if unknown:
        raise ValueError(f"unknown tensor(s) {sorted(unknown)}; choose from {sorted(TENSORS)}")

    def register(fn: Callable[[LayerBundle], float]) -> Statistic:
        name = fn.__name__
        if not name.endswith("_l"):
            raise ValueError(f"per-layer statistic {name!r} must end in '_l'")
        if name in STATISTICS:
            raise ValueError(f"statistic {name!r} is registered twice")
        doc = (fn.__doc__ or "").strip()
        STATISTICS[name] = stat = Statistic(name, wanted, fn, doc)
        return stat

    return register


def list_statistics() -> list[str]:
    """Names of all registered statistics, in registration order."""
    return list(STATISTICS)


def compute_statistics(
    bundles: Iterable[LayerBundle], names: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Every statistic in `names` (default: all) for every bundle, as float64 vectors.

    Bundles are consumed one at a time, so their cached intermediates can be freed layer by layer.
    """
    chosen = [STATISTICS[n] for n in (list_statistics() if names is None else names)]
    rows: list[list[float]] = []
    with torch.no_grad():
        for bundle in bundles:
            rows.append(
                [float(st.fn(bundle)) if bundle.has(st.needs) else math.nan for st in chosen]
            )
    table = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(chosen))
    return {stat.name: np.ascontiguousarray(table[:, i]) for i, stat in enumerate(chosen)}


# ---- module facts -----------------------------------------------------------------------------


@statistic()
def numel_l(b: LayerBundle) -> float:
    """Number of weights."""
    return b.facts.numel


@statistic()
def fan_in_l(b: LayerBundle) -> float:
    """Inputs per output unit: in_channels / groups × kernel area."""
    return b.facts.fan_in


@statistic()
def fan_out_l(b: LayerBundle) -> float:
    """out_channels × kernel area (torch.nn.init's fan_out)."""
    return b.facts.fan_out


@statistic()
def in_channels_l(b: LayerBundle) -> float:
    """Input channels (in_features for the classifier)."""
    return b.facts.in_channels


@statistic()
def out_channels_l(b: LayerBundle) -> float:
    """Output channels (out_features for the classifier)."""
    return b.facts.out_channels


@statistic()
def kernel_size_l(b: LayerBundle) -> float:
    """Kernel side (1 or 3 in these networks; 1 for the classifier)."""
    return b.facts.kernel_size


@statistic()
def stride_l(b: LayerBundle) -> float:
    """Convolution stride (1 for the classifier)."""
    return b.facts.stride


@statistic()
def out_positions_l(b: LayerBundle) -> float:
    """Output spatial positions per sample, H × W (1 for the classifier)."""
    return b.facts.out_positions


@statistic()
def macs_l(b: LayerBundle) -> float:
    """Multiply-accumulates (+ bias additions) per input sample; the `flops` proxy is their sum."""
    return b.facts.macs


@statistic()
def depth_l(b: LayerBundle) -> float:
    """Position in forward order, 0 (stem) to 1 (classifier)."""
    return b.facts.depth


# ---- weights ----------------------------------------------------------------------------------


@statistic("W")
def l2_norm_l(b: LayerBundle) -> float:
    """‖W‖₂ (Frobenius); the `l2_norm` proxy is its sum over layers."""
    return b.s("W").norm


@statistic("W")
def w_mean_l(b: LayerBundle) -> float:
    """Mean weight."""
    return b.s("W").mean


@statistic("W")
def w_std_l(b: LayerBundle) -> float:
    """Standard deviation of the weights (the scale set by the initialiser and fan-in)."""
    return b.s("W").std


@statistic("W")
def w_abs_mean_l(b: LayerBundle) -> float:
    """Mean |W|."""
    return b.s("W").abs_mean


@statistic("W")
def w_abs_max_l(b: LayerBundle) -> float:
    """max |W|."""
    return b.s("W").abs_max


# ---- weight gradients -------------------------------------------------------------------------


@statistic("G")
def grad_norm_l(b: LayerBundle) -> float:
    """‖G‖₂; the `grad_norm` proxy is its sum over layers."""
    return b.s("G").norm


@statistic("G")
def g_mean_l(b: LayerBundle) -> float:
    """Mean gradient."""
    return b.s("G").mean


@statistic("G")
def g_std_l(b: LayerBundle) -> float:
    """Standard deviation of the gradient over the layer's weights."""
    return b.s("G").std


@statistic("G")
def g_abs_mean_l(b: LayerBundle) -> float:
    """Mean |G|."""
    return b.s("G").abs_mean


@statistic("G")
def g_abs_max_l(b: LayerBundle) -> float:
    """max |G|."""
    return b.s("G").abs_max


@statistic("G")
def g_snr_l(b: LayerBundle) -> float:
    """mean|G| / std(G) over the layer's weights: a ZiCo-style signal-to-noise ratio."""
    return _div(b.s("G").abs_mean, b.s("G").std)


# ---- weights × gradients ----------------------------------------------------------------------


@statistic("W G")
def snip_l(b: LayerBundle) -> float:
    """Σ|W·G| (SNIP saliency); the `snip` proxy is its sum over layers."""
    return b.s("WG").abs_sum


@statistic("W G")
def log_snip_l(b: LayerBundle) -> float:
    """Σ log(|W·G| + 1e-20): SNIP in log space, dominated by typical rather than largest terms."""
    return float(b.WG.abs().add_(LOG_EPS).log_().sum())


@statistic("W G")
def plain_l(b: LayerBundle) -> float:
    """Σ W·G (first-order loss change when the weights are scaled); sums to `plain`."""
    return b.s("WG").total


@statistic("W G")
def wg_cos_l(b: LayerBundle) -> float:
    """Cosine between W and G: how much of the gradient points along the weights."""
    return _div(b.s("WG").total, b.s("W").norm * b.s("G").norm)


@statistic("W G")
def g_w_ratio_l(b: LayerBundle) -> float:
    """‖G‖ / ‖W‖: relative size of one gradient step (layer-wise learning speed)."""
    return _div(b.s("G").norm, b.s("W").norm)


# ---- outputs on the real batch and their gradients --------------------------------------------


@statistic("A")
def a_mean_l(b: LayerBundle) -> float:
    """Mean output (before the following BN)."""
    return b.s("A").mean


@statistic("A")
def a_std_l(b: LayerBundle) -> float:
    """Standard deviation of the outputs: signal scale at this depth."""
    return b.s("A").std


@statistic("A")
def a_abs_mean_l(b: LayerBundle) -> float:
    """Mean |A|."""
    return b.s("A").abs_mean


@statistic("A")
def a_abs_max_l(b: LayerBundle) -> float:
    """max |A|."""
    return b.s("A").abs_max


@statistic("A")
def a_active_l(b: LayerBundle) -> float:
    """Fraction of outputs > 0 (units a following ReLU would let through)."""
    return b.s("A").active


@statistic("dA")
def da_norm_l(b: LayerBundle) -> float:
    """‖dA‖₂: how strongly the loss reacts to this layer's output."""
    return b.s("dA").norm


@statistic("dA")
def da_std_l(b: LayerBundle) -> float:
    """Standard deviation of dA."""
    return b.s("dA").std


@statistic("dA")
def da_abs_mean_l(b: LayerBundle) -> float:
    """Mean |dA|."""
    return b.s("dA").abs_mean


@statistic("A dA")
def a_da_l(b: LayerBundle) -> float:
    """Σ|A·dA|: first-order saliency of the layer's output units."""
    return b.s("AdA").abs_sum


@statistic("A dA")
def fisher_l(b: LayerBundle) -> float:
    """½ Σ_channels mean_batch (Σ_positions A·dA)²: the Fisher channel saliency of Theis et al.

    (2018) as the foresight `fisher` measure computes it; the `fisher` proxy is its sum.
    """
    prod = b.AdA
    per_channel = prod.sum(dim=tuple(range(2, prod.dim()))) if prod.dim() > 2 else prod
    return 0.5 * float(per_channel.pow(2).mean(0).sum())


# ---- outputs on the Gaussian noise batch ------------------------------------------------------


@statistic("A_noise")
def an_mean_l(b: LayerBundle) -> float:
    """Mean output on Gaussian input."""
    return b.s("A_noise").mean


@statistic("A_noise")
def an_std_l(b: LayerBundle) -> float:
    """Standard deviation of the output on Gaussian input."""
    return b.s("A_noise").std


@statistic("A_noise")
def an_abs_mean_l(b: LayerBundle) -> float:
    """Mean |A| on Gaussian input."""
    return b.s("A_noise").abs_mean


@statistic("A_noise")
def an_active_l(b: LayerBundle) -> float:
    """Fraction of outputs > 0 on Gaussian input."""
    return b.s("A_noise").active


@statistic("A A_noise")
def an_a_std_ratio_l(b: LayerBundle) -> float:
    """std(A on noise) / std(A on images): how differently the layer treats noise and data."""
    return _div(b.s("A_noise").std, b.s("A").std)
