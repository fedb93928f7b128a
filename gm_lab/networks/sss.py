"""NATS-Bench size search space (SSS): arch strings of 5 channel counts and their network.

The size space fixes the cell to the best TSS cell and searches only the width of each of the
5 cells (stage 1, reduction, stage 2, reduction, stage 3), e.g. `8:16:24:32:40`.
"""

from __future__ import annotations

from gm_lab.networks.tss import ArchStringError, CellNetwork, Genotype, parse_tss_arch

SSS_CELL_ARCH = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
    "+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
)
SSS_CELL: Genotype = parse_tss_arch(SSS_CELL_ARCH)
SSS_NUM_LAYERS = 5
SSS_CHANNEL_CHOICES: tuple[int, ...] = tuple(range(8, 65, 8))


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


class DynamicShapeTinyNet(CellNetwork):
    """The SSS network: one cell per stage, widths from the arch, the fixed SSS cell."""

    def __init__(self, arch: str | list[int], num_classes: int) -> None:
        channels = parse_sss_arch(arch) if isinstance(arch, str) else list(arch)
        super().__init__(channels, SSS_CELL, num_classes)
        self.arch = ":".join(map(str, channels))
