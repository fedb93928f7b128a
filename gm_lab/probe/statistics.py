"""Evaluating the per-layer statistics (declared in gm_lab.statistics) on a probed network.

Every conv/linear layer gets a `LayerBundle`: its weights W, the cross-entropy gradient G of W,
its output A and the gradient dA of the loss w.r.t. that output (all on the real minibatch), its
output A_noise on the Gaussian batch, and fixed facts about the module (fan-in, kernel, stride,
...). `compute_statistics` evaluates every registered statistic for every layer and returns one
float64 vector per statistic, in layer order.

Reductions run in torch on the whole tensor (no Python loop over elements) and intermediates
shared by several statistics are computed once per layer (`Summary`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch
from torch import Tensor, nn

from gm_lab.plugins import STATISTICS
from gm_lab.plugins.specs import TENSORS


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


# ---- evaluation ------------------------------------------------------------------------------


def compute_statistics(
    bundles: Iterable[LayerBundle], names: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """Every statistic in `names` (default: all) for every bundle, as float64 vectors.

    Bundles are consumed one at a time, so their cached intermediates can be freed layer by layer.
    """
    chosen = [STATISTICS[n] for n in (STATISTICS.names() if names is None else names)]
    rows: list[list[float]] = []
    with torch.no_grad():
        for bundle in bundles:
            rows.append(
                [float(st.compute(bundle)) if bundle.has(st.needs) else math.nan for st in chosen]
            )
    table = np.asarray(rows, dtype=np.float64).reshape(len(rows), len(chosen))
    return {stat.name: np.ascontiguousarray(table[:, i]) for i, stat in enumerate(chosen)}
