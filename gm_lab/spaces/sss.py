"""NATS-Bench size search space (SSS): architecture strings of 5 channel counts, parsed without
torch, and the `SearchSpace` that builds and counts its networks (gm_lab.networks.sss).

The size space fixes the cell to the best TSS cell and searches only the width of each of the
5 cells (stage 1, reduction, stage 2, reduction, stage 3), e.g. `8:16:24:32:40`.
"""

from __future__ import annotations

import itertools
from typing import Any

from gm_lab.spaces.base import ArchStringError, register_space
from gm_lab.spaces.nats import NatsSpace
from gm_lab.spaces.tss import Genotype, parse_tss_arch

SSS_CELL_ARCH = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
)
SSS_CELL: Genotype = parse_tss_arch(SSS_CELL_ARCH)
SSS_NUM_LAYERS = 5
SSS_CHANNEL_CHOICES: tuple[int, ...] = tuple(range(8, 65, 8))

_WIDTH = f"(?:{'|'.join(map(str, SSS_CHANNEL_CHOICES))})"


def parse_sss_arch(arch: str) -> list[int]:
    """Parse `c1:c2:c3:c4:c5` into channel counts, raising ArchStringError naming the problem."""
    if not isinstance(arch, str):
        raise ArchStringError(arch, f"expected a str, got {type(arch).__name__}")
    parts = arch.split(":")
    if len(parts) != SSS_NUM_LAYERS:
        raise ArchStringError(
            arch, f"expected {SSS_NUM_LAYERS} channel counts separated by ':', found {len(parts)}"
        )
    channels = []
    for position, part in enumerate(parts, start=1):
        if not part.isdigit() or int(part) not in SSS_CHANNEL_CHOICES:
            raise ArchStringError(
                arch,
                f"channel count {position} is {part!r}; expected one of "
                f"{', '.join(map(str, SSS_CHANNEL_CHOICES))}",
            )
        channels.append(int(part))
    return channels


class SizeSpace(NatsSpace):
    """NATS-Bench SSS: 32,768 width configurations of the fixed SSS cell."""

    name = "sss"
    display_name = "NATS-Bench SSS"
    n_archs = 32_768
    arch_pattern = rf"{_WIDTH}(?::{_WIDTH}){{{SSS_NUM_LAYERS - 1}}}"
    official_name = "NATS-sss-v1_0-50262"
    hp = "90"  # the full training schedule, in epochs
    download = "sss"
    download_adds = "NATS-Bench SSS ground truth: 32,768 channel configurations"

    def check_arch(self, arch: object) -> str:
        parse_sss_arch(arch)  # type: ignore[arg-type]  # names the problem
        return arch  # type: ignore[return-value]

    def archs(self) -> list[str]:
        return [
            ":".join(map(str, c))
            for c in itertools.product(SSS_CHANNEL_CHOICES, repeat=SSS_NUM_LAYERS)
        ]

    def make_network(self, arch: str, num_classes: int) -> Any:
        from gm_lab.networks.sss import DynamicShapeTinyNet

        return DynamicShapeTinyNet(arch, num_classes)

    def cell_layout(self, arch: str) -> tuple[list[int], Genotype]:
        return parse_sss_arch(arch), SSS_CELL


SSS = SizeSpace()
register_space(SSS)
