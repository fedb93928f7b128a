"""What the two NATS-Bench spaces share: ground truth on all three datasets in
`nats_bench/<space>.csv` (or the official download), a final test set of 1,000 architectures
(gm_lab.sampling), and networks of the same shape (`gm_lab.networks.tss.CellNetwork`: a list of
per-cell widths and one cell), so one closed form counts their parameters."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from gm_lab.spaces.base import SearchSpace, check_num_classes
from gm_lab.spaces.datasets import DATASETS

if TYPE_CHECKING:
    from gm_lab.spaces.tss import Genotype


class NatsSpace(SearchSpace):
    """A NATS-Bench search space (subclasses: `TopologySpace`, `SizeSpace`)."""

    datasets = DATASETS
    table_folder = "nats_bench"
    final_test_size = 1_000

    def cell_layout(self, arch: str) -> tuple[list[int], Genotype]:
        """Per-cell output widths and the cell of `arch`'s network."""
        raise NotImplementedError

    def count_params(self, arch: str, num_classes: int) -> int:
        """By closed-form arithmetic (gm_lab.networks.counting), without building."""
        check_num_classes(num_classes)
        backbone, c_last = _backbone(self, arch)
        return backbone + c_last * num_classes + num_classes


@lru_cache(maxsize=1 << 16)  # room for every arch of both spaces (15,625 + 32,768)
def _backbone(space: NatsSpace, arch: str) -> tuple[int, int]:
    """(parameters without the classifier, classifier input width); classes only add a Linear."""
    from gm_lab.networks.counting import network_params

    channels, genotype = space.cell_layout(arch)
    return network_params(channels, genotype, 0), channels[-1]
