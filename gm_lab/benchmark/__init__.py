"""Benchmark layer: NATS-Bench ground truth for every architecture of a search space."""

from gm_lab.benchmark.benchmark import (
    HW_DEVICES,
    HW_METRICS,
    HW_UNITS,
    Benchmark,
    BestArch,
    HardwareDataError,
)
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
    "HW_DEVICES",
    "HW_METRICS",
    "HW_UNITS",
    "INPUT_SIZE",
    "NUM_CLASSES",
    "SPACES",
    "Benchmark",
    "BestArch",
    "HardwareDataError",
    "normalise_dataset",
    "space_info",
]
