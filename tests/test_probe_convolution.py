"""`lean_conv`: the same Conv2d, forward and backward, with a lean second order."""

from __future__ import annotations

import contextlib

import pytest
import torch
from torch import nn

from gm_lab.probe import convolution, torch_internals
from gm_lab.probe.convolution import lean_conv


def _second_order(conv: nn.Conv2d, x: torch.Tensor, lean: bool) -> tuple[list[torch.Tensor], ...]:
    """Output, first-order grads and a Hessian-vector product of a nonlinear loss of a conv."""
    params = [x, conv.weight] + ([conv.bias] if conv.bias is not None else [])
    with lean_conv(conv) if lean else contextlib.nullcontext():
        y = conv(x)
    loss = (y.pow(3) * torch.linspace(-1, 1, y.numel(), dtype=y.dtype).reshape(y.shape)).sum()
    grads = torch.autograd.grad(loss, params, create_graph=True)
    probe = sum(
        (g * torch.cos(torch.arange(g.numel(), dtype=g.dtype)).reshape(g.shape)).sum()
        for g in grads
    )
    hv = torch.autograd.grad(probe, params, materialize_grads=True)
    return [y.detach()], [g.detach() for g in grads], list(hv)


@pytest.mark.parametrize(
    "conv_args",
    [
        {"kernel_size": 3, "padding": 1, "bias": True},
        {"kernel_size": 3, "padding": 1, "stride": 2, "bias": False},  # a ResNet block's conv_a
        {"kernel_size": 1, "groups": 2, "bias": False},
        {"kernel_size": 3, "padding": 2, "dilation": 2, "bias": False},
    ],
)
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_lean_conv_matches_autograd_to_second_order(conv_args, layout):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, 4, 9, 8, generator=gen, dtype=torch.float64)
    x = x.contiguous(memory_format=layout).requires_grad_(True)
    torch.manual_seed(1)
    conv = nn.Conv2d(4, 6, **conv_args).double().to(memory_format=layout)
    native, lean = _second_order(conv, x, lean=False), _second_order(conv, x, lean=True)
    for a, b in zip(native[0] + native[1], lean[0] + lean[1], strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=0)  # forward and first order: bit for bit
    for a, b in zip(native[2], lean[2], strict=True):
        assert a.abs().max() > 1e-3  # a real second-order term
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10)


@pytest.mark.skipif(
    not torch_internals.fast_path_available(), reason="torch's private autograd API is off"
)
def test_lean_conv_computes_only_the_gradients_the_call_needs(monkeypatch):
    masks: list[tuple[bool, bool, bool]] = []
    backward = convolution._Geometry.backward

    def spy(self, dy, x, weight, mask):
        masks.append(mask)
        return backward(self, dy, x, weight, mask)

    monkeypatch.setattr(convolution._Geometry, "backward", spy)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.ReLU(), nn.Conv2d(4, 2, 1, bias=False))
    x = torch.randn(2, 3, 6, 6, requires_grad=True)
    with lean_conv(net):
        out = net(x).square().sum()
    (gx,) = torch.autograd.grad(out, [x], retain_graph=True)  # input only, as jacov asks
    assert masks == [(True, False, False), (True, False, False)]
    masks.clear()
    g1, g0 = torch.autograd.grad(out, [net[2].weight, net[0].weight])
    assert masks == [(True, True, False), (False, True, False)]  # no input grad below conv 0
    reference = torch.autograd.grad(net(x).square().sum(), [x, net[2].weight, net[0].weight])
    for a, b in zip(reference, (gx, g1, g0), strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=0)


def test_lean_conv_restores_the_module_and_leaves_other_convs_alone():
    class Custom(nn.Conv2d):  # its own forward is its business
        pass

    net = nn.Sequential(
        nn.Conv2d(3, 3, 3), Custom(3, 3, 3), nn.Conv2d(3, 3, 3, padding="same"),
        nn.Conv2d(3, 3, 3, padding=1, padding_mode="reflect"),
    )  # fmt: skip
    with lean_conv(net):
        assert [("forward" in vars(m)) for m in net] == [True, False, False, False]
        with torch.no_grad():  # nothing to differentiate: PyTorch's own forward
            assert net[0](torch.randn(1, 3, 5, 5)).grad_fn is None
    assert not any("forward" in vars(m) for m in net)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_lean_conv_first_order_is_pytorchs_own(layout):
    """Without create_graph the backward calls PyTorch's kernel directly: bit for bit."""
    x = torch.randn(8, 4, 9, 9, generator=torch.Generator().manual_seed(3))
    x = x.contiguous(memory_format=layout).requires_grad_(True)
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=1).to(memory_format=layout)
    grads = []
    for lean in (False, True):
        with lean_conv(conv) if lean else contextlib.nullcontext():
            loss = conv(x).pow(3).sum()
        grads.append(torch.autograd.grad(loss, [x, conv.weight, conv.bias]))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=0)
