"""NATS-Bench topology search space (TSS, = NAS-Bench-201): its cell and network.

Arch strings are parsed by `gm_lab.spaces.tss` (torch-free; re-exported here), which is also
the space's `SearchSpace`.
"""

from __future__ import annotations

import torch
from torch import nn

from gm_lab.networks.ops import ResNetBasicblock, make_op
from gm_lab.spaces.base import ArchStringError
from gm_lab.spaces.tss import (
    NUM_CELL_NODES,
    Genotype,
    Node,
    genotype_to_str,
    parse_tss_arch,
)

TSS_C = 16  # channels of the first stage
TSS_N = 5  # cells per stage

__all__ = [
    "NUM_CELL_NODES",
    "TSS_C",
    "TSS_N",
    "ArchStringError",
    "CellNetwork",
    "Genotype",
    "InferCell",
    "Node",
    "TinyNetwork",
    "genotype_to_str",
    "parse_tss_arch",
    "stage_layout",
    "tss_channels",
]


def stage_layout(channels: list[int]) -> list[bool]:
    """Which cells reduce: one ResNet block between each of the three equal-length stages."""
    n, rest = divmod(len(channels), 3)
    if rest != 2:
        raise ValueError(f"a 3-stage layout needs 3N+2 cells, got {len(channels)}")
    return [False] * n + [True] + [False] * n + [True] + [False] * n


def tss_channels(c: int = TSS_C, n: int = TSS_N) -> list[int]:
    """Per-cell output channels of the TSS network (reduction cells included)."""
    return [c] * n + [2 * c] + [2 * c] * n + [4 * c] + [4 * c] * n


class InferCell(nn.Module):
    """A searched cell: each node sums its edges' ops; edges from the input map C_in -> C_out."""

    def __init__(self, genotype: Genotype, c_in: int, c_out: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList()
        self.sources: list[list[int]] = []
        for node in genotype:
            self.sources.append([src for _, src in node])
            for op, src in node:
                self.layers.append(make_op(op, c_in if src == 0 else c_out, c_out))
        self.out_dim = c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        layers = iter(self.layers)
        for sources in self.sources:
            out = None
            for src in sources:
                y = next(layers)(nodes[src])
                out = y if out is None else out + y
            nodes.append(out)
        return nodes[-1]


class CellNetwork(nn.Module):
    """Stem, cells (searched cells and ResNet reduction blocks), BN-ReLU, global pool, linear.

    Shared by TSS (TinyNetwork) and SSS (DynamicShapeTinyNet), which differ only in the channel
    list and the genotype.
    """

    def __init__(self, channels: list[int], genotype: Genotype, num_classes: int) -> None:
        super().__init__()
        reductions = stage_layout(channels)
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels[0], kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(channels[0]),
        )
        self.cells = nn.ModuleList()
        c_prev = channels[0]
        for c_curr, reduction in zip(channels, reductions, strict=True):
            if reduction:
                self.cells.append(ResNetBasicblock(c_prev, c_curr, 2))
            else:
                self.cells.append(InferCell(genotype, c_prev, c_curr))
            c_prev = c_curr
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return logits only (the reference also returns the pooled features)."""
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        x = self.global_pooling(self.lastact(x))
        return self.classifier(x.flatten(1))


class TinyNetwork(CellNetwork):
    """The TSS network: C=16, N=5 cells per stage, the arch's cell everywhere."""

    def __init__(self, arch: str | Genotype, num_classes: int) -> None:
        genotype = parse_tss_arch(arch) if isinstance(arch, str) else arch
        super().__init__(tss_channels(), genotype, num_classes)
        self.arch = genotype_to_str(genotype)
