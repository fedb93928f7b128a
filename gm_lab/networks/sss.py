"""NATS-Bench size search space (SSS): the network of an arch string of 5 channel counts
(parsed by `gm_lab.spaces.sss`, torch-free, re-exported here).

The size space fixes the cell to the best TSS cell and searches only the width of each of the
5 cells (stage 1, reduction, stage 2, reduction, stage 3), e.g. `8:16:24:32:40`.
"""

from __future__ import annotations

from gm_lab.networks.tss import CellNetwork
from gm_lab.spaces.base import ArchStringError
from gm_lab.spaces.sss import (
    SSS_CELL,
    SSS_CELL_ARCH,
    SSS_CHANNEL_CHOICES,
    SSS_NUM_LAYERS,
    parse_sss_arch,
)

__all__ = [
    "SSS_CELL",
    "SSS_CELL_ARCH",
    "SSS_CHANNEL_CHOICES",
    "SSS_NUM_LAYERS",
    "ArchStringError",
    "DynamicShapeTinyNet",
    "parse_sss_arch",
]


class DynamicShapeTinyNet(CellNetwork):
    """The SSS network: one cell per stage, widths from the arch, the fixed SSS cell."""

    def __init__(self, arch: str | list[int], num_classes: int) -> None:
        channels = parse_sss_arch(arch) if isinstance(arch, str) else list(arch)
        super().__init__(channels, SSS_CELL, num_classes)
        self.arch = ":".join(map(str, channels))
