"""AvgPool2d for the probe: the same numbers from faster kernels, and a lean second derivative.

Two costs of PyTorch's average pool on CPU, both removed by `lean_pool` (the first without
changing a bit, the second changing GraSP by float rounding only, as its gradients are summed
in another order):

- **Its kernels are slow on channels_last maps with few channels** (3-4× a depthwise
  convolution at 64×16×32×32), and TSS networks pool in every cell. A stride-1 window centred
  by its padding (`avg_pool_3x3`) is a depthwise convolution with a kernel of ones followed by
  a division by each window's count of valid positions. On x86 CPUs oneDNN sums the window in
  the order PyTorch's pool kernel does (row by row, from zero), so the sums and the divisions,
  hence the results, are bit for bit PyTorch's (elsewhere they agree to float32 rounding). The
  backward, Σ over the windows holding a position of dy/count, is the same convolution of
  dy/count: it visits those windows in the order PyTorch's backward kernel adds them. Other
  windows, and other dtypes than float32 (oneDNN's), use PyTorch's kernels.
- **Its double backward** builds the zero derivative with respect to the pool's input as a full
  tensor, and in the contiguous layout: added to the gradient of a channels_last activation,
  it turns every later gradient contiguous, and channels_last pooling and convolution kernels
  then take their slow paths (GraSP's pool backwards ran about six times slower). The lean
  pool's backward, under create_graph, is a function of the incoming gradient alone,
  differentiated by one more average pool.

Checked against PyTorch's kernels and autograd's double backward (tests/test_probe_pooling.py).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx, once_differentiable
from torch.nn.modules.utils import _pair

from gm_lab.probe.patching import forwards_replaced


@dataclass(frozen=True)
class _Window:
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    ceil_mode: bool
    count_include_pad: bool
    divisor_override: int | None

    @classmethod
    def of(cls, pool: nn.AvgPool2d) -> _Window:
        """The window of a module, its sizes as pairs (the stride defaults to the kernel)."""
        return cls(
            _pair(pool.kernel_size),
            _pair(pool.stride if pool.stride is not None else pool.kernel_size),
            _pair(pool.padding),
            bool(pool.ceil_mode),
            bool(pool.count_include_pad),
            pool.divisor_override,
        )

    def _as_convolution(self, t: Tensor) -> bool:
        """Whether `t` pools as a depthwise convolution: a stride-1 window centred by its
        padding (the output keeps the input's size), float32, 4-D."""
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        return (
            self.stride == (1, 1)
            and kh % 2 == 1
            and kw % 2 == 1
            and (ph, pw) == (kh // 2, kw // 2)
            and self.divisor_override is None
            and t.dtype == torch.float32
            and t.dim() == 4
        )

    def _window_sums(self, t: Tensor) -> Tensor:
        ones = _ones_kernel(t.shape[1], self.kernel_size)
        return F.conv2d(t, ones, None, 1, self.padding, 1, t.shape[1])

    def _counts(self, t: Tensor) -> Tensor:
        return _window_counts(t.shape[-2], t.shape[-1], self.kernel_size, self.count_include_pad)

    def pool(self, x: Tensor) -> Tensor:
        if self._as_convolution(x):
            return _divide(self._window_sums(x), self._counts(x), inplace=True)
        return F.avg_pool2d(
            x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
            self.count_include_pad, self.divisor_override,
        )  # fmt: skip

    def unpool(self, dy: Tensor, x: Tensor) -> Tensor:
        """The gradient with respect to the input: PyTorch's average-pool backward."""
        if self._as_convolution(dy):
            return self._window_sums(_divide(dy, self._counts(dy), inplace=False))
        return torch.ops.aten.avg_pool2d_backward(
            dy, x, list(self.kernel_size), list(self.stride), list(self.padding),
            self.ceil_mode, self.count_include_pad, self.divisor_override,
        )  # fmt: skip


@functools.lru_cache(maxsize=64)
def _ones_kernel(channels: int, kernel_size: tuple[int, int]) -> Tensor:
    return torch.ones(channels, 1, *kernel_size)


@functools.lru_cache(maxsize=64)
def _window_counts(
    height: int, width: int, kernel_size: tuple[int, int], include_pad: bool
) -> Tensor:
    """The divisor of each output position: the window's size, or its count of valid positions."""
    if include_pad:
        return torch.full((height, width), float(kernel_size[0] * kernel_size[1]))
    padding = (kernel_size[0] // 2, kernel_size[1] // 2)
    ones = torch.ones(1, 1, height, width)
    return F.conv2d(ones, torch.ones(1, 1, *kernel_size), padding=padding)[0, 0]


def _divide(t: Tensor, counts: Tensor, *, inplace: bool) -> Tensor:
    """t / counts, counts [H, W] broadcast over batch and channels, in the layout of t. A
    channels_last map is divided as it lies in memory (N, H, W, C): broadcast over its inner
    dimension the division runs ten times faster than over a strided one."""
    if t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous():
        nhwc = t.permute(0, 2, 3, 1)
        nhwc = nhwc.div_(counts.unsqueeze(-1)) if inplace else nhwc / counts.unsqueeze(-1)
        return nhwc.permute(0, 3, 1, 2)
    return t.div_(counts) if inplace else t / counts


class _Unpool(torch.autograd.Function):
    """dx = Pᵀdy: linear in dy alone (x gives the shape), so its derivative is P u."""

    @staticmethod
    def forward(ctx: FunctionCtx, dy: Tensor, x: Tensor, window: _Window) -> Tensor:  # type: ignore[override]
        ctx.window = window  # type: ignore[attr-defined]
        return window.unpool(dy, x)

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, u: Tensor) -> tuple[Tensor | None, None, None]:  # type: ignore[override]
        window: _Window = ctx.window  # type: ignore[attr-defined]
        return window.pool(u), None, None


class _AvgPool2d(torch.autograd.Function):
    """An average pool whose backward, under create_graph, is an `_Unpool` of the gradient."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, window: _Window) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.window = window  # type: ignore[attr-defined]
        return window.pool(x)

    @staticmethod
    def backward(ctx: FunctionCtx, dy: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (x,) = ctx.saved_tensors  # type: ignore[attr-defined]
        window: _Window = ctx.window  # type: ignore[attr-defined]
        if not torch.is_grad_enabled():  # first order
            return window.unpool(dy, x), None
        return _Unpool.apply(dy, x.detach(), window), None


def _lean_forward(pool: nn.AvgPool2d) -> Callable[[Tensor], Tensor]:
    window = _Window.of(pool)

    def forward(x: Tensor) -> Tensor:
        if not (torch.is_grad_enabled() and x.requires_grad):
            return window.pool(x)
        return _AvgPool2d.apply(x, window)

    return forward


def lean_pool(net: nn.Module) -> contextlib.AbstractContextManager[None]:
    """Within the block, `net`'s nn.AvgPool2d layers (exactly that class: a subclass may
    compute something else) compute the same numbers with faster kernels and a lean double
    backward."""
    return forwards_replaced((m for m in net.modules() if type(m) is nn.AvgPool2d), _lean_forward)
