"""`lean_batchnorm`: the same BatchNorm, forward and backward, with a closed-form second order."""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch import nn

from gm_lab.probe.batchnorm import lean_batchnorm


def _second_order(
    bn: nn.Module, x: torch.Tensor, wrt: str, lean: bool
) -> tuple[list[torch.Tensor], ...]:
    """Output, first-order grads and a Hessian-vector product of a nonlinear loss through `bn`."""
    weight_out = torch.linspace(-1, 1, x.numel(), dtype=x.dtype).reshape(x.shape)
    inputs = {"x": [x], "all": [x, bn.weight, bn.bias]}[wrt]
    with lean_batchnorm(bn) if lean else contextlib.nullcontext():
        y = bn(x)
    loss = (y.pow(3) * weight_out).sum()
    grads = torch.autograd.grad(loss, inputs, create_graph=True)
    probe = sum(
        (g * torch.cos(torch.arange(g.numel(), dtype=g.dtype)).reshape(g.shape)).sum()
        for g in grads
    )
    hv = torch.autograd.grad(probe, [x, bn.weight, bn.bias], materialize_grads=True)
    return [y.detach()], [g.detach() for g in grads], list(hv)


@pytest.mark.parametrize(
    ("shape", "layout"),
    [
        ((6, 3, 5, 4), torch.contiguous_format),
        ((6, 3, 5, 4), torch.channels_last),
        ((7, 4), torch.contiguous_format),  # BatchNorm1d
    ],
)
@pytest.mark.parametrize("wrt", ["x", "all"])
def test_lean_batchnorm_matches_autograd_to_second_order(shape, layout, wrt):
    gen = torch.Generator().manual_seed(len(shape))
    x = torch.randn(shape, generator=gen, dtype=torch.float64) * 3 + 1
    x = x.contiguous(memory_format=layout).requires_grad_(True)
    results = []
    for lean in (False, True):
        bn = (nn.BatchNorm2d if len(shape) == 4 else nn.BatchNorm1d)(shape[1]).double().train()
        with torch.no_grad():
            bn.weight.copy_(torch.linspace(0.5, 1.5, shape[1]))
            bn.bias.copy_(torch.linspace(-1, 1, shape[1]))
        results.append((_second_order(bn, x, wrt, lean), bn.running_var.clone()))
    (native, var_native), (lean, var_lean) = results
    torch.testing.assert_close(var_lean, var_native, rtol=0, atol=0)
    for a, b in zip(native[0] + native[1], lean[0] + lean[1], strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=0)  # forward and first order: bit for bit
    for a, b in zip(native[2], lean[2], strict=True):
        assert a.abs().max() > 1e-3  # a real second-order term
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10)


def test_lean_batchnorm_without_affine_parameters_matches_autograd_to_second_order():
    """No γ: the kernel's dγ, which the double backward reads, is still Σ dy·x̂."""
    gen = torch.Generator().manual_seed(3)
    x = (torch.randn(6, 3, 5, 4, generator=gen, dtype=torch.float64) * 3 + 1).requires_grad_(True)
    u = torch.cos(torch.arange(x.numel(), dtype=x.dtype)).reshape(x.shape)
    results = []
    for lean in (False, True):
        bn = nn.BatchNorm2d(3, affine=False).double().train()
        with lean_batchnorm(bn) if lean else contextlib.nullcontext():
            y = bn(x)
        loss = (y.pow(3) * torch.linspace(-1, 1, x.numel(), dtype=x.dtype).reshape(x.shape)).sum()
        (g,) = torch.autograd.grad(loss, x, create_graph=True)
        results.append((g.detach(), torch.autograd.grad((g * u).sum(), x)[0]))
    (g_native, hv_native), (g_lean, hv_lean) = results
    torch.testing.assert_close(g_lean, g_native, rtol=0, atol=0)
    assert hv_native.abs().max() > 1e-3
    torch.testing.assert_close(hv_lean, hv_native, rtol=1e-10, atol=1e-10)


def test_lean_batchnorm_restores_the_module_and_leaves_eval_mode_alone():
    bn = nn.BatchNorm2d(3)
    with lean_batchnorm(bn):
        assert "forward" in vars(bn)
        bn.eval()
        out = bn(torch.randn(2, 3, 4, 4))
        assert out.grad_fn is None or "BatchNormTrain" not in type(out.grad_fn).__name__
    assert "forward" not in vars(bn)
    assert int(bn.num_batches_tracked) == 0

    class Custom(nn.BatchNorm2d):  # its own forward is its business
        pass

    both = nn.Sequential(Custom(3), nn.BatchNorm2d(3))
    with lean_batchnorm(both):
        assert "forward" not in vars(both[0]) and "forward" in vars(both[1])


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_lean_batchnorm_first_order_is_pytorchs_own(layout):
    """Without create_graph the backward calls PyTorch's kernel directly: bit for bit."""
    x = torch.randn(8, 4, 5, 5, generator=torch.Generator().manual_seed(3))
    x = x.contiguous(memory_format=layout).requires_grad_(True)
    grads = []
    for lean in (False, True):
        bn = nn.BatchNorm2d(4).train()
        with lean_batchnorm(bn) if lean else contextlib.nullcontext():
            loss = (bn(x).pow(3)).sum()
        grads.append(torch.autograd.grad(loss, [x, bn.weight, bn.bias]))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=0)
