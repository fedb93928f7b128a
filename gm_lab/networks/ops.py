"""The NAS-Bench-201 / NATS-Bench candidate operations, mirroring xautodl's `cell_operations.py`.

Parameter counts in the benchmark tables depend on every detail here (conv bias off because BN is
affine, FactorizedReduce instead of Identity when channels change, the 1x1 preprocess of pooling),
so the structure follows the reference one to one rather than a "cleaner" equivalent.
"""

from __future__ import annotations

import torch
from torch import nn

from gm_lab.spaces.tss import OP_NAMES


class ReLUConvBN(nn.Module):
    """ReLU -> Conv2d -> BatchNorm2d; the conv has a bias only when the BN is not affine."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: int,
        stride: int,
        padding: int,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=padding, bias=not affine),
            nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track_running_stats),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Zero(nn.Module):
    """The `none` op: a zero tensor shaped like the op's output, so a cell keeps its shapes."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.c_in = c_in
        self.c_out = c_out
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.c_in == self.c_out:
            return x.mul(0.0)
        shape = list(x.shape)
        shape[1] = self.c_out
        return x.new_zeros(shape)


class FactorizedReduce(nn.Module):
    """`skip_connect` when shape changes: 1x1 conv + BN (stride 1), or two offset 1x1 convs (2)."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        stride: int,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"FactorizedReduce supports stride 1 or 2, got {stride}")
        self.stride = stride
        self.relu = nn.ReLU(inplace=False)
        if stride == 2:
            halves = (c_out // 2, c_out - c_out // 2)
            self.convs = nn.ModuleList(
                nn.Conv2d(c_in, h, 1, stride=2, padding=0, bias=not affine) for h in halves
            )
            self.pad = nn.ConstantPad2d((0, 1, 0, 1), 0.0)
        else:
            self.conv = nn.Conv2d(c_in, c_out, 1, stride=1, padding=0, bias=not affine)
        self.bn = nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track_running_stats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 2:
            x = self.relu(x)
            shifted = self.pad(x)[:, :, 1:, 1:]
            out = torch.cat([self.convs[0](x), self.convs[1](shifted)], dim=1)
        else:
            out = self.conv(x)  # the reference applies no ReLU on the stride-1 path
        return self.bn(out)


class AvgPool(nn.Module):
    """`avg_pool_3x3`: a ReLUConvBN 1x1 first when channels change, then 3x3 average pooling."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        stride: int,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__()
        self.preprocess = (
            None if c_in == c_out else ReLUConvBN(c_in, c_out, 1, 1, 0, affine, track_running_stats)
        )
        self.op = nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.preprocess is not None:
            x = self.preprocess(x)
        return self.op(x)


class ResNetBasicblock(nn.Module):
    """The fixed reduction cell between stages: two 3x3 ReLUConvBN plus a pooled 1x1 shortcut."""

    def __init__(self, inplanes: int, planes: int, stride: int = 2) -> None:
        super().__init__()
        if stride != 2:
            raise ValueError(f"ResNetBasicblock is only used to reduce (stride 2), got {stride}")
        self.conv_a = ReLUConvBN(inplanes, planes, 3, stride, 1)
        self.conv_b = ReLUConvBN(planes, planes, 3, 1, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(inplanes, planes, kernel_size=1, stride=1, padding=0, bias=False),
        )
        self.out_dim = planes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


def make_op(name: str, c_in: int, c_out: int, stride: int = 1) -> nn.Module:
    """Build candidate op `name` (affine BN, tracked running stats, as in the benchmark)."""
    if name == "none":
        return Zero(c_in, c_out, stride)
    if name == "skip_connect":
        if stride == 1 and c_in == c_out:
            return nn.Identity()
        return FactorizedReduce(c_in, c_out, stride)
    if name == "nor_conv_1x1":
        return ReLUConvBN(c_in, c_out, 1, stride, 0)
    if name == "nor_conv_3x3":
        return ReLUConvBN(c_in, c_out, 3, stride, 1)
    if name == "avg_pool_3x3":
        return AvgPool(c_in, c_out, stride)
    raise ValueError(f"unknown op {name!r}; expected one of {', '.join(OP_NAMES)}")
