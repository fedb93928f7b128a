"""Conv2d with a lean second derivative, for GraSP's double backward.

Differentiating a convolution's backward, PyTorch computes the weight-shaped term
∂⟨u, Wᵀ⋆dy⟩/∂W as a forward convolution of u with dy as its kernel (batch and channels
swapped: a 16×16 or 8×8 kernel over the whole batch), with transposing copies around it: about a
tenth of GraSP's time on CPU. That term is an ordinary weight gradient, with u as the input and
dy as the output gradient, which oneDNN's weight-gradient kernel computes directly.
`lean_conv` swaps each plain nn.Conv2d's forward, for the duration of a block, for an autograd
function that:

- runs PyTorch's own kernels forward and backward (`conv2d`, `convolution_backward`), so
  outputs and first-order gradients are bit for bit those of the module, and computes an input
  or weight gradient only when the running backward call needs it (as PyTorch's own node does;
  every gradient where torch cannot say, see gm_lab.probe.torch_internals);
- under create_graph, builds its gradients from two functions whose derivatives are plain
  convolutions and weight/input gradients (`_InputGrad`, `_WeightGrad`).

Checked against autograd's own double backward in float64 (tests/test_probe_convolution.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx, once_differentiable

from gm_lab.probe import torch_internals
from gm_lab.probe.patching import forwards_replaced


@dataclass(frozen=True)
class _Geometry:
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int

    def backward(
        self, dy: Tensor, x: Tensor, weight: Tensor, mask: tuple[bool, bool, bool]
    ) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        """PyTorch's convolution backward (the kernel its own autograd node calls)."""
        bias_sizes = [weight.shape[0]] if mask[2] else None
        zeros = [0] * len(self.stride)
        grads = torch.ops.aten.convolution_backward(
            dy, x, weight, bias_sizes, self.stride, self.padding, self.dilation, False,
            zeros, self.groups, list(mask),
        )  # fmt: skip
        return tuple(g if m else None for g, m in zip(grads, mask, strict=True))  # type: ignore[return-value]

    def conv(self, x: Tensor, weight: Tensor) -> Tensor:
        return F.conv2d(x, weight, None, self.stride, self.padding, self.dilation, self.groups)


class _InputGrad(torch.autograd.Function):
    """dx = Wᵀ⋆dy: bilinear in (dy, W); its derivatives are a convolution and a weight grad."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: FunctionCtx, dy: Tensor, weight: Tensor, x: Tensor, geometry: _Geometry
    ) -> Tensor:
        ctx.save_for_backward(dy, weight)  # x only gives the result's shape
        ctx.geometry = geometry  # type: ignore[attr-defined]
        return geometry.backward(dy, x, weight, (True, False, False))[0]

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, u: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        dy, weight = ctx.saved_tensors  # type: ignore[attr-defined]
        geometry: _Geometry = ctx.geometry  # type: ignore[attr-defined]
        need_dy, need_weight = ctx.needs_input_grad[:2]  # type: ignore[attr-defined]
        g_dy = geometry.conv(u, weight) if need_dy else None  # ⟨u, Wᵀ⋆dy⟩ = ⟨W⋆u, dy⟩
        g_weight = None
        if need_weight:  # the weight gradient of a convolution of u, output gradient dy
            g_weight = geometry.backward(dy, u, weight, (False, True, False))[1]
        return g_dy, g_weight, None, None


class _WeightGrad(torch.autograd.Function):
    """dW = x ⋆ dy: bilinear in (dy, x); its derivatives are a convolution and an input grad."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: FunctionCtx, dy: Tensor, x: Tensor, weight: Tensor, geometry: _Geometry
    ) -> Tensor:
        ctx.save_for_backward(dy, x)
        ctx.geometry = geometry  # type: ignore[attr-defined]
        return geometry.backward(dy, x, weight, (False, True, False))[1]

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, u: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        dy, x = ctx.saved_tensors  # type: ignore[attr-defined]
        geometry: _Geometry = ctx.geometry  # type: ignore[attr-defined]
        need_dy, need_x = ctx.needs_input_grad[:2]  # type: ignore[attr-defined]
        g_dy = geometry.conv(x, u) if need_dy else None  # ⟨u, x⋆dy⟩ = ⟨x⋆u (u as kernel), dy⟩
        g_x = geometry.backward(dy, x, u, (True, False, False))[0] if need_x else None
        return g_dy, g_x, None, None


class _Conv2d(torch.autograd.Function):
    """conv2d whose backward computes only the gradients the running call needs and, under
    create_graph, is built from `_InputGrad` and `_WeightGrad`."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: FunctionCtx,
        x: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        geometry: _Geometry,
        nodes: tuple[object | None, object | None],
    ) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.geometry, ctx.nodes = geometry, nodes  # type: ignore[attr-defined]
        return F.conv2d(
            x, weight, bias, geometry.stride, geometry.padding, geometry.dilation, geometry.groups
        )

    @staticmethod
    def backward(ctx: FunctionCtx, dy: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        x, weight = ctx.saved_tensors  # type: ignore[attr-defined]
        geometry: _Geometry = ctx.geometry  # type: ignore[attr-defined]
        # PyTorch's own node skips a gradient that no input of the running call depends on;
        # so do we, asking the engine about the views `_lean_forward` put in front.
        need_x, need_weight = (
            node is not None and _will_execute(node)
            for node in ctx.nodes  # type: ignore[attr-defined]
        )
        need_bias = ctx.needs_input_grad[2]  # type: ignore[attr-defined]
        if not torch.is_grad_enabled():  # first order: PyTorch's own kernel, one call
            return (*geometry.backward(dy, x, weight, (need_x, need_weight, need_bias)), None, None)
        g_x = _InputGrad.apply(dy, weight, x, geometry) if need_x else None
        g_weight = _WeightGrad.apply(dy, x, weight, geometry) if need_weight else None
        g_bias = dy.sum([0, *range(2, dy.dim())]) if need_bias else None
        return g_x, g_weight, g_bias, None, None


def _will_execute(node: object) -> bool:
    """Whether the running backward call executes `node` (so needs its input's gradient);
    True, every gradient computed, where torch cannot say (gm_lab.probe.torch_internals)."""
    return torch_internals.will_execute(node)


def _lean_forward(conv: nn.Conv2d) -> Callable[[Tensor], Tensor]:
    padding: tuple[int, ...] = tuple(conv.padding)  # ints: `_plain` refuses "same"/"valid"
    geometry = _Geometry(tuple(conv.stride), padding, tuple(conv.dilation), conv.groups)

    def forward(x: Tensor) -> Tensor:
        if not (torch.is_grad_enabled() and conv.weight.requires_grad):
            return type(conv).forward(conv, x)
        # Views of the input and weight: their autograd nodes tell the backward whether the
        # running call needs those gradients (a leaf's own node cannot be asked that).
        x, weight = x.view_as(x), conv.weight.view_as(conv.weight)
        return _Conv2d.apply(x, weight, conv.bias, geometry, (x.grad_fn, weight.grad_fn))

    return forward


def _plain(module: nn.Module) -> bool:
    """Exactly nn.Conv2d (a subclass may compute something else), zero padding given as ints."""
    return (
        type(module) is nn.Conv2d
        and module.padding_mode == "zeros"
        and not isinstance(module.padding, str)
    )


def lean_conv(net: nn.Module) -> contextlib.AbstractContextManager[None]:
    """Within the block, `net`'s plain Conv2d layers compute as before with a lean double
    backward; other modules are left alone."""
    torch_internals.will_execute_available()  # its one-off check, before any backward asks
    return forwards_replaced((m for m in net.modules() if _plain(m)), _lean_forward)
