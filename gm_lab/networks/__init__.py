"""Our own PyTorch definitions of the NATS-Bench networks (TSS and SSS), no xautodl needed.

`build_network(space, ...)` makes a seeded network of any registered search space
(`gm_lab.spaces`); `count_params` gives its parameter count (without building it for TSS/SSS).
"""

from gm_lab.networks.build import build_network, count_parameters
from gm_lab.networks.counting import count_params
from gm_lab.networks.ops import OP_NAMES
from gm_lab.networks.sss import SSS_CELL_ARCH, DynamicShapeTinyNet, parse_sss_arch
from gm_lab.networks.tss import (
    ArchStringError,
    CellNetwork,
    InferCell,
    TinyNetwork,
    genotype_to_str,
    parse_tss_arch,
)

__all__ = [
    "OP_NAMES",
    "SSS_CELL_ARCH",
    "ArchStringError",
    "CellNetwork",
    "DynamicShapeTinyNet",
    "InferCell",
    "TinyNetwork",
    "build_network",
    "count_parameters",
    "count_params",
    "genotype_to_str",
    "parse_sss_arch",
    "parse_tss_arch",
]
