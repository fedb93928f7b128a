"""AvgPool2d with a lean second derivative, for GraSP's double backward.

An average pool's backward is linear in the incoming gradient and reads its input only for
the shape, so its derivative with respect to that input is zero. PyTorch's double backward
still builds that zero as a full tensor, and in the contiguous layout: added to the gradient
of a channels_last activation, it turns every later gradient contiguous. PyTorch's
channels_last pooling and convolution kernels then take their slow paths, and GraSP's average
pool backwards alone run about six times slower.

`lean_pool` swaps each plain nn.AvgPool2d's forward, for the duration of a block, for an
autograd function that runs PyTorch's own kernels forward and backward (`avg_pool2d`,
`avg_pool2d_backward`), so outputs and first-order gradients are bit for bit those of the
module, and under create_graph builds its gradient from a function of the incoming gradient
alone, differentiated by one more average pool. Checked against autograd's own double backward
in float64 (tests/test_probe_pooling.py).
"""

from __future__ import annotations

import contextlib
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

    def pool(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(
            x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
            self.count_include_pad, self.divisor_override,
        )  # fmt: skip

    def unpool(self, dy: Tensor, x: Tensor) -> Tensor:
        """PyTorch's average-pool backward (the kernel its own autograd node calls)."""
        return torch.ops.aten.avg_pool2d_backward(
            dy, x, list(self.kernel_size), list(self.stride), list(self.padding),
            self.ceil_mode, self.count_include_pad, self.divisor_override,
        )  # fmt: skip


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
    """avg_pool2d whose backward, under create_graph, is an `_Unpool` of the gradient."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, window: _Window) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.window = window  # type: ignore[attr-defined]
        return window.pool(x)

    @staticmethod
    def backward(ctx: FunctionCtx, dy: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (x,) = ctx.saved_tensors  # type: ignore[attr-defined]
        window: _Window = ctx.window  # type: ignore[attr-defined]
        if not torch.is_grad_enabled():  # first order: PyTorch's own kernel
            return window.unpool(dy, x), None
        return _Unpool.apply(dy, x.detach(), window), None


def _lean_forward(pool: nn.AvgPool2d) -> Callable[[Tensor], Tensor]:
    window = _Window(
        _pair(pool.kernel_size),
        _pair(pool.stride if pool.stride is not None else pool.kernel_size),
        _pair(pool.padding),
        bool(pool.ceil_mode),
        bool(pool.count_include_pad),
        pool.divisor_override,
    )

    def forward(x: Tensor) -> Tensor:
        if not (torch.is_grad_enabled() and x.requires_grad and x.dim() == 4):
            return type(pool).forward(pool, x)
        return _AvgPool2d.apply(x, window)

    return forward


def lean_pool(net: nn.Module) -> contextlib.AbstractContextManager[None]:
    """Within the block, `net`'s nn.AvgPool2d layers (exactly that class: a subclass may
    compute something else) compute as before with a lean double backward."""
    return forwards_replaced((m for m in net.modules() if type(m) is nn.AvgPool2d), _lean_forward)
