"""Benchmark layer: NATS-Bench ground truth for every architecture of a search space."""

from gm_lab.benchmark.benchmark import Benchmark, BestArch
from gm_lab.benchmark.spaces import (
    DATASETS,
    INPUT_SIZE,
    NUM_CLASSES,
    SPACES,
    normalise_dataset,
    space_info,
)

__all__ = [
    "DATASETS",
    "INPUT_SIZE",
    "NUM_CLASSES",
    "SPACES",
    "Benchmark",
    "BestArch",
    "normalise_dataset",
    "space_info",
]
