"""Train-mode BatchNorm with a lean second derivative, for GraSP's double backward.

GraSP needs a Hessian-vector product, so autograd differentiates every BatchNorm backward
downstream of the layers it perturbs. PyTorch's generic BatchNorm double backward spends about
30 full-tensor passes per layer, half of GraSP's time on CPU. `lean_batchnorm` swaps each
train-mode BatchNorm's forward, for the duration of a block, for an autograd function that:

- runs PyTorch's own kernels forward and backward (`native_batch_norm`,
  `native_batch_norm_backward`), so outputs, running statistics and first-order gradients are
  bit for bit those of the module;
- differentiates that backward in closed form: with x̂ = (x - μ)·r (r = 1/σ), per channel,
  dx = γr(dy - mean(dy) - x̂·mean(dy·x̂)) is affine in x, dy and the incoming u once five
  channel means are known (two of them are the first-order kernel's dβ and dγ, kept), so each
  second-order gradient is one per-channel affine combination of x - μ, u and dy (about 13
  passes in all).

The closed form is checked against autograd's own double backward in float64.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx, once_differentiable

from gm_lab.probe.patching import forwards_replaced


def _channel_view(t: Tensor) -> list[int]:
    """Shape broadcasting a per-channel vector over a [N, C, ...] tensor."""
    return [1, t.shape[1]] + [1] * (t.dim() - 2)


def _channel_mean(t: Tensor) -> Tensor:
    return t.mean([0, *range(2, t.dim())], keepdim=True)


class _BatchNormBackward(torch.autograd.Function):
    """(dy, x, γ) -> (dx, dγ, dβ) of train-mode BatchNorm, differentiable once more."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: FunctionCtx,
        dy: Tensor,
        x: Tensor,
        weight: Tensor | None,
        mean: Tensor,
        invstd: Tensor,
        eps: float,
        mask: tuple[bool, bool, bool],
    ) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        # dγ = Σ dy·x̂ and dβ = Σ dy come with the kernel's dx at no cost: the double backward
        # reads them, so it need not reduce dy·x̂ and dy again.
        dx, d_weight, d_bias = torch.ops.aten.native_batch_norm_backward(
            dy, x, weight, None, None, mean, invstd, True, eps, [mask[0], True, True]
        )
        ctx.save_for_backward(dy, x, weight, mean, invstd, d_weight, d_bias)
        return (
            dx if mask[0] else None,
            d_weight if mask[1] else None,
            d_bias if mask[2] else None,
        )

    @staticmethod
    @once_differentiable
    def backward(  # type: ignore[override]
        ctx: FunctionCtx, u: Tensor | None, u_weight: Tensor | None, u_bias: Tensor | None
    ) -> tuple[Tensor | None, ...]:
        dy, x, weight, mean, invstd, sum_dy_xhat, sum_dy = ctx.saved_tensors  # type: ignore[attr-defined]
        need_dy, need_x, need_weight = ctx.needs_input_grad[:3]  # type: ignore[attr-defined]
        shape = _channel_view(x)
        count = x.numel() // x.shape[1]
        r = invstd.reshape(shape)
        gamma = weight.reshape(shape) if weight is not None else torch.ones_like(r)
        xc = x - mean.reshape(shape)
        a = (sum_dy / count).reshape(shape)  # mean(dy)
        b = (sum_dy_xhat / count).reshape(shape)  # mean(dy·x̂)
        zero = torch.zeros_like(r)
        # g_dy = αx·(x-μ) + αu·u + α0;  g_x = βx·(x-μ) + βu·u + βdy·dy + β0
        alpha_x, alpha_u, alpha_0 = zero, zero, zero
        beta_x, beta_u, beta_dy, beta_0 = zero, zero, zero, zero
        g_weight = None
        if u is not None:  # from <u, dx>, dx = γr(dy - a - x̂b)
            c = _channel_mean(u)
            d = _channel_mean(u * xc) * r  # mean(u·x̂)
            e = _channel_mean(u * dy)
            k = e - c * a - 3 * d * b
            gr, gr2 = gamma * r, gamma * r * r
            alpha_u, alpha_x, alpha_0 = gr, -gr2 * d, -gr * c
            beta_x, beta_u, beta_dy = -gr2 * r * k, -gr2 * b, -gr2 * d
            beta_0 = gr2 * (b * c + d * a)
            if need_weight and weight is not None:
                g_weight = (r * (e - c * a - d * b)).reshape(-1) * count
        if u_weight is not None:  # from <uγ, dγ>, dγ = Σ dy·x̂
            uw = u_weight.reshape(shape)
            alpha_x = alpha_x + uw * r
            beta_dy, beta_x = beta_dy + uw * r, beta_x - uw * r * r * b
            beta_0 = beta_0 - uw * r * a
        if u_bias is not None:  # from <uβ, dβ>, dβ = Σ dy
            alpha_0 = alpha_0 + u_bias.reshape(shape)
        g_dy = g_x = None
        if need_dy:
            g_dy = (xc * alpha_x).add_(alpha_0)
            if u is not None:
                g_dy.addcmul_(u, alpha_u)
        if need_x:
            g_x = (xc * beta_x).add_(beta_0).addcmul_(dy, beta_dy)
            if u is not None:
                g_x.addcmul_(u, beta_u)
        return g_dy, g_x, g_weight, None, None, None, None


class _BatchNormTrain(torch.autograd.Function):
    """Train-mode BatchNorm with `_BatchNormBackward` as its backward."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: FunctionCtx,
        x: Tensor,
        weight: Tensor | None,
        bias: Tensor | None,
        running_mean: Tensor | None,
        running_var: Tensor | None,
        momentum: float,
        eps: float,
    ) -> Tensor:
        out, mean, invstd = torch.native_batch_norm(
            x, weight, bias, running_mean, running_var, True, momentum, eps
        )
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.eps = eps  # type: ignore[attr-defined]
        return out

    @staticmethod
    def backward(ctx: FunctionCtx, dy: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        x, weight, mean, invstd = ctx.saved_tensors  # type: ignore[attr-defined]
        mask = tuple(ctx.needs_input_grad[:3])  # type: ignore[attr-defined]
        eps: float = ctx.eps  # type: ignore[attr-defined]
        if torch.is_grad_enabled():  # create_graph: a node whose own backward is the lean one
            grads = _BatchNormBackward.apply(dy, x, weight, mean, invstd, eps, mask)
        else:  # first order: PyTorch's kernel, without a function node's overhead
            grads = torch.ops.aten.native_batch_norm_backward(
                dy, x, weight, None, None, mean, invstd, True, eps, list(mask)
            )
        return (*grads, None, None, None, None)


def _lean_forward(bn: nn.modules.batchnorm._BatchNorm) -> Callable[[Tensor], Tensor]:
    """`bn.forward` through `_BatchNormTrain` while `bn` trains with running statistics (the
    bookkeeping of nn.BatchNorm's own forward), else the module's own forward."""

    def forward(x: Tensor) -> Tensor:
        if not (bn.training and bn.track_running_stats and bn.num_batches_tracked is not None):
            return type(bn).forward(bn, x)
        bn._check_input_dim(x)
        bn.num_batches_tracked.add_(1)
        momentum = 1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum
        return _BatchNormTrain.apply(
            x, bn.weight, bn.bias, bn.running_mean, bn.running_var, momentum, bn.eps
        )

    return forward


# Exactly these classes: a subclass may compute something else in its own forward.
PLAIN_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def lean_batchnorm(net: nn.Module) -> contextlib.AbstractContextManager[None]:
    """Within the block, `net`'s plain BatchNorms compute as before with a lean double
    backward; other modules, BatchNorm subclasses included, are left alone."""
    return forwards_replaced(
        (m for m in net.modules() if type(m) in PLAIN_BATCHNORMS), _lean_forward
    )
