"""`lean_pool`: the same AvgPool2d, forward and backward, with a lean second order."""

from __future__ import annotations

import contextlib
import platform

import pytest
import torch
from torch import nn
from torch.nn.modules.utils import _pair
from torch.utils._python_dispatch import TorchDispatchMode

from gm_lab.probe import pooling
from gm_lab.probe.batchnorm import lean_batchnorm
from gm_lab.probe.convolution import lean_conv
from gm_lab.probe.pooling import lean_pool

# oneDNN's depthwise kernels on x86 sum a window in the order PyTorch's pool kernels do.
ONEDNN_ON_X86 = platform.machine() in ("x86_64", "AMD64") and torch.backends.mkldnn.is_available()

POOLS = [
    {"kernel_size": 3, "stride": 1, "padding": 1, "count_include_pad": False},  # avg_pool_3x3
    {"kernel_size": 2, "stride": 2},  # a ResNet block's shortcut
    {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
    {"kernel_size": 2, "divisor_override": 3},
]


def _second_order(
    pool: nn.AvgPool2d, x: torch.Tensor, lean: bool
) -> tuple[list[torch.Tensor], ...]:
    """Output, input gradient and a Hessian-vector product of a nonlinear loss of a pool."""
    with lean_pool(pool) if lean else contextlib.nullcontext():
        y = pool(x)
    loss = (y.pow(3) * torch.linspace(-1, 1, y.numel(), dtype=y.dtype).reshape(y.shape)).sum()
    (g,) = torch.autograd.grad(loss, [x], create_graph=True)
    probe = (g * torch.cos(torch.arange(g.numel(), dtype=g.dtype)).reshape(g.shape)).sum()
    (hv,) = torch.autograd.grad(probe, [x])
    return [y.detach()], [g.detach()], [hv]


@pytest.mark.parametrize("pool_args", POOLS)
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])  # float32: convolution path
def test_lean_pool_matches_autograd_to_second_order(pool_args, layout, dtype):
    x = torch.randn(5, 4, 9, 8, generator=torch.Generator().manual_seed(0), dtype=dtype)
    x = x.contiguous(memory_format=layout).requires_grad_(True)
    pool = nn.AvgPool2d(**pool_args)
    native, lean = _second_order(pool, x, lean=False), _second_order(pool, x, lean=True)
    exact = dtype == torch.float64 or ONEDNN_ON_X86
    for a, b in zip(native[0] + native[1], lean[0] + lean[1], strict=True):
        # forward and first order: bit for bit (float32 off x86: to rounding)
        torch.testing.assert_close(b, a, rtol=0 if exact else 1e-6, atol=0 if exact else 1e-6)
    assert native[2][0].abs().max() > 1e-3  # a real second-order term
    tolerance = 1e-12 if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(lean[2][0], native[2][0], rtol=tolerance, atol=tolerance)


@pytest.fixture(params=[1, 2], ids=["1 thread", "2 threads"])
def threads(request):
    before = torch.get_num_threads()
    torch.set_num_threads(request.param)
    yield request.param
    torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("shape", "kernel_size"),
    [((64, 16, 32, 32), 3), ((64, 32, 16, 16), 3), ((64, 64, 8, 8), 3), ((3, 17, 9, 7), 3),
     ((2, 24, 11, 11), 5), ((1, 8, 6, 6), (3, 5))],
)  # fmt: skip
@pytest.mark.parametrize("count_include_pad", [False, True])
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_stride_one_pools_are_bit_for_bit_pytorchs_kernels(
    shape, kernel_size, count_include_pad, layout, threads
):
    """The depthwise-convolution pool and its backward give PyTorch's results: bit for bit with
    oneDNN on x86 (the probe's cached numbers rely on it), to float32 rounding elsewhere."""
    gen = torch.Generator().manual_seed(threads)
    x = torch.randn(shape, generator=gen).contiguous(memory_format=layout).requires_grad_(True)
    dy = torch.randn(shape, generator=gen).contiguous(memory_format=layout)
    k = _pair(kernel_size)
    pool = nn.AvgPool2d(k, 1, (k[0] // 2, k[1] // 2), count_include_pad=count_include_pad)
    reference = pool(x)
    (reference_grad,) = torch.autograd.grad(reference, [x], dy)
    with lean_pool(pool):
        with torch.no_grad():
            plain = pool(x)
        out = pool(x)
    (grad,) = torch.autograd.grad(out, [x], dy)
    assert pooling._Window.of(pool)._as_convolution(x)  # the convolution path was the one compared
    for result, expected in ((plain, reference), (out, reference), (grad, reference_grad)):
        if ONEDNN_ON_X86:
            assert torch.equal(result, expected)
        else:
            torch.testing.assert_close(result, expected, rtol=1e-6, atol=1e-6)
        assert result.stride() == expected.stride()  # the same memory format too


@pytest.mark.parametrize(
    ("pool_args", "dtype"),
    [({"kernel_size": 2, "stride": 2}, torch.float32),  # a ResNet shortcut: PyTorch's kernels
     ({"kernel_size": 3, "stride": 1, "padding": 1, "divisor_override": 2}, torch.float32),
     ({"kernel_size": 3, "stride": 1, "padding": 1}, torch.float64)],
)  # fmt: skip
def test_other_pools_use_pytorchs_kernels(pool_args, dtype):
    x = torch.randn(4, 8, 10, 10, dtype=dtype).contiguous(memory_format=torch.channels_last)
    pool = nn.AvgPool2d(**pool_args)
    assert not pooling._Window.of(pool)._as_convolution(x)
    with lean_pool(pool):
        assert torch.equal(pool(x), nn.AvgPool2d(**pool_args)(x))


class _Layouts(TorchDispatchMode):
    """Records the ops returning a batch of feature maps ([batch, C, H>1, W], C one of
    `channels`) not channels_last."""

    def __init__(self, batch: int, channels: set[int]) -> None:
        super().__init__()
        self.batch = batch
        self.channels = channels
        self.contiguous: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if any(r.alias_info is not None for r in func._schema.returns):
            return out  # a view or an in-place op: no new tensor
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if self._feature_maps(t) and not t.is_contiguous(memory_format=torch.channels_last):
                self.contiguous.append(func.__name__)
        return out

    def _feature_maps(self, t: object) -> bool:
        return (
            isinstance(t, torch.Tensor)
            and t.dim() == 4
            and t.shape[0] == self.batch
            and t.shape[1] in self.channels  # not a map seen as (N, H, W, C)
            and t.shape[2] > 1
        )


def test_second_order_gradients_stay_channels_last():
    """PyTorch's pool double backward adds a contiguous zero tensor to a gradient, which sends
    every later kernel down its slow path; the lean pool keeps GraSP's tensors channels_last."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
        nn.Conv2d(8, 8, 1, bias=False), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.AvgPool2d(6), nn.Flatten(),
        nn.Linear(8, 3),
    ).to(memory_format=torch.channels_last)  # fmt: skip
    x = torch.randn(6, 3, 12, 12).contiguous(memory_format=torch.channels_last)
    weights = [m.weight for m in net if isinstance(m, (nn.Conv2d, nn.Linear))]
    with lean_batchnorm(net), lean_conv(net), lean_pool(net):
        loss = nn.functional.cross_entropy(net(x), torch.tensor([0, 1, 2, 0, 1, 2]))
        grads = torch.autograd.grad(loss, weights, create_graph=True)
    s = sum((g * w.detach()).sum() for g, w in zip(grads[1:], weights[1:], strict=True))
    layouts = _Layouts(batch=len(x), channels={3, 8})
    with layouts:
        hv = torch.autograd.grad(s, weights)
    assert layouts.contiguous == []
    assert all(h.abs().sum() > 0 for h in hv[:-1])  # the second order reached every conv


def test_lean_pool_restores_the_module_and_leaves_others_alone():
    class Custom(nn.AvgPool2d):  # its own forward is its business
        pass

    net = nn.Sequential(nn.AvgPool2d(2), Custom(2), nn.AdaptiveAvgPool2d(1))
    with lean_pool(net):
        assert [("forward" in vars(m)) for m in net] == [True, False, False]
        x = torch.randn(1, 3, 4, 4, requires_grad=True)
        with torch.no_grad():  # nothing to differentiate: no autograd node
            assert net[0](x).grad_fn is None
        assert type(net[0](x).grad_fn).__name__ == "_AvgPool2dBackward"
    assert not any("forward" in vars(m) for m in net)
