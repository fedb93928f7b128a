"""`split_backward`: one backward in two calls, a graph recorded only after the cut."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gm_lab.networks import build_network
from gm_lab.probe import probe as probe_module
from gm_lab.probe import torch_internals
from gm_lab.probe.backward_split import split_backward
from gm_lab.probe.probe import _forward, _lean_second_order
from gm_lab.probe.products import grasp_by_invariance, grasp_exact

# What only the fast path does (GM_LAB_TORCH_FALLBACK=1 runs the public path instead).
fast_path_only = pytest.mark.skipif(
    not torch_internals.fast_path_available(), reason="torch's private autograd API is off"
)


class _Reduction(nn.Module):
    """A stem, then a ResNet-style reduction block (pooled 1x1 shortcut computed first, as
    in NATS-Bench) and a classifier: the pool reads the tensor the other branch reads too."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.pool = nn.AvgPool2d(2)
        self.shortcut = nn.Conv2d(4, 6, 1, bias=False)
        self.branch = nn.Sequential(nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.BatchNorm2d(6))
        self.head = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        self.cut_tensor = pooled = self.pool(x)
        y = F.relu(self.shortcut(pooled) + self.branch(x))
        return self.head(y.mean((2, 3)))


def _setup() -> tuple[_Reduction, torch.Tensor, list[torch.Tensor]]:
    torch.manual_seed(0)
    net = _Reduction().double()
    x = torch.randn(6, 3, 8, 8, dtype=torch.float64)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    loss = F.cross_entropy(net(x), labels)
    weights = [net.stem[0].weight, net.shortcut.weight, net.branch[0].weight, net.head.weight]
    return net, loss, weights


def test_split_gives_one_backwards_gradients_and_a_graph_after_the_cut() -> None:
    net, loss, weights = _setup()
    cut = torch_internals.sequence_nr(
        net.cut_tensor.grad_fn
    )  # the pool's node: the stem lies before it
    reference = torch.autograd.grad(loss, weights, retain_graph=True)
    down, up = split_backward(loss, cut, weights[1:], weights[:1])
    for ref, got in zip(reference, up + down, strict=True):
        assert torch.equal(got.detach(), ref)
    assert not up[0].requires_grad and all(g.requires_grad for g in down)
    # the recorded part is differentiable again: a Hessian-vector product through it equals
    # one through a create_graph backward of everything
    fresh = torch.autograd.grad(loss, weights[1:], create_graph=True, retain_graph=True)
    hv_split = torch.autograd.grad(
        sum((g * g.detach()).sum() for g in down), weights, retain_graph=True
    )
    hv_full = torch.autograd.grad(sum((g * g.detach()).sum() for g in fresh), weights)
    for a, b in zip(hv_split, hv_full, strict=True):
        assert a.abs().max() > 0
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_the_pool_read_by_both_sides_is_not_counted_twice() -> None:
    """The stem's gradient comes through the pool and the branch: with the pool kept before
    the cut and resumed as well as captured, the stem's gradient would include it twice."""
    net, loss, weights = _setup()
    cut = torch_internals.sequence_nr(net.cut_tensor.grad_fn)
    reference = torch.autograd.grad(loss, [weights[0], net.cut_tensor], retain_graph=True)
    assert reference[1].abs().max() > 0  # gradient does flow through the pool
    _, (stem,) = split_backward(loss, cut, weights[1:], weights[:1])
    assert torch.equal(stem, reference[0])


def test_a_cut_before_everything_records_it_all_and_unreached_tensors_get_zeros() -> None:
    _, loss, weights = _setup()
    unused = torch.zeros(3, requires_grad=True)
    down, up = split_backward(loss, -1, [*weights, unused], [])
    reference = torch.autograd.grad(loss, weights, retain_graph=True)
    assert up == []
    assert all(torch.equal(a.detach(), b) for a, b in zip(down, reference, strict=False))
    assert torch.equal(down[-1], torch.zeros(3))


@fast_path_only
def test_a_weight_used_on_both_sides_of_the_cut_is_refused() -> None:
    conv = nn.Conv2d(2, 2, 1)
    x = torch.randn(1, 2, 3, 3)
    first = conv(x)
    pooled = F.avg_pool2d(first, 1)
    loss = conv(pooled).sum()  # the same weight after the cut
    with pytest.raises(ValueError, match="also used after the cut"):
        split_backward(loss, torch_internals.sequence_nr(pooled.grad_fn), [], [conv.weight])
    with pytest.raises(ValueError, match="no autograd graph"):
        split_backward(torch.zeros(()), 0, [], [])


@fast_path_only
def test_the_probes_pass_2_split_on_a_nats_bench_network_is_bit_for_bit() -> None:
    """On a real TSS network, with the probe's lean layers: the split pass 2 gives exactly the
    plain call's weight and output gradients, and GraSP by invariance from its graph agrees
    with the exact double backward."""
    arch = (
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|"
        "+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
    )
    net = build_network("tss", arch, 10, 0).to(memory_format=torch.channels_last).train()
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(16, 3, 32, 32, generator=gen).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (16,), generator=gen)
    with _lean_second_order(net):
        layers = [m.weight for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        loss = F.cross_entropy(net(images), labels)
        exact = grasp_exact(layers, list(torch.autograd.grad(loss, layers, create_graph=True)))
        fwd = _forward(net, images, labels, relu_kernel=False, jacobian=False)
        weights = [m.weight for m in fwd.modules]  # in call order
        cut = probe_module._graph_cut(fwd)
        assert cut is not None and cut > 0
        split = probe_module._split_shared_backward(fwd, weights, cut)
        plain = torch.autograd.grad(fwd.loss, weights + fwd.outputs, retain_graph=True)
        for a, b in zip(split, plain, strict=True):
            assert torch.equal(a.detach(), b)
        n = len(weights)
        with_graph = [g.requires_grad for g in split[:n]]
        assert any(with_graph) and not all(with_graph)  # stage 1 runs without a graph
        graph = [g if g.requires_grad else None for g in split[:n]]
        detached = [g.detach() for g in split[:n]]
        value = grasp_by_invariance(fwd.loss, weights, detached, fwd.bn_fed, graph)
    scale = float(sum(g.pow(2).sum() for g in detached))
    assert value != 0 and abs(value - exact) <= 1e-3 * scale
