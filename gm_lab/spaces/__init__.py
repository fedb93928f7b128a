"""Search spaces: one `SearchSpace` object per space, behind a registry (torch-free).

    from gm_lab.spaces import SearchSpace, register_space

    @register_space
    class MySpace(SearchSpace):
        name = "mine"
        n_archs = 27
        arch_pattern = r"(?:a|b|c)(?:-(?:a|b|c)){2}"
        datasets = ("cifar10",)
        table_path = "/data/mine.csv"   # its compact table (schema: gm_lab.benchmark.table)

        def make_network(self, arch, num_classes):
            ...  # a torch.nn.Module; import torch here, not at the top of the module

A package registers its spaces through the entry-point group ``gm_lab.spaces`` (a module
whose import registers them). NATS-Bench TSS and SSS are registered when this package is
imported. docs/plugins.md walks through a complete example.
"""

from __future__ import annotations

from gm_lab.spaces.base import (
    SPACES,
    ArchStringError,
    SearchSpace,
    check_num_classes,
    get_space,
    register_space,
    space_names,
)
from gm_lab.spaces.datasets import (
    COLUMN_PREFIX,
    DATASETS,
    DISPLAY_NAMES,
    INPUT_SIZE,
    NUM_CLASSES,
    normalise_dataset,
)
from gm_lab.spaces.nats import NatsSpace
from gm_lab.spaces.sss import SSS, SizeSpace
from gm_lab.spaces.tss import TSS, TopologySpace

__all__ = [
    "COLUMN_PREFIX",
    "DATASETS",
    "DISPLAY_NAMES",
    "INPUT_SIZE",
    "NUM_CLASSES",
    "SPACES",
    "SSS",
    "TSS",
    "ArchStringError",
    "NatsSpace",
    "SearchSpace",
    "SizeSpace",
    "TopologySpace",
    "check_num_classes",
    "get_space",
    "normalise_dataset",
    "register_space",
    "space_names",
]
