"""Facts about the NATS-Bench search spaces and datasets that every layer agrees on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SpaceInfo:
    """One NATS-Bench search space and the defaults its API users keep getting wrong."""

    name: str
    n_archs: int
    official_name: str  # folder stem of the official download, e.g. NATS-tss-v1_0-3ffb9
    hp: str  # the full training schedule: "200" epochs for TSS, "90" for SSS
    arch_pattern: str  # regular expression every architecture string of the space matches

    @property
    def official_folder(self) -> str:
        return f"{self.official_name}-simple"


_TSS_OP = "(?:none|skip_connect|nor_conv_1x1|nor_conv_3x3|avg_pool_3x3)"
_SSS_WIDTH = "(?:8|16|24|32|40|48|56|64)"
SPACES: dict[str, SpaceInfo] = {
    "tss": SpaceInfo(
        "tss",
        15_625,
        "NATS-tss-v1_0-3ffb9",
        "200",
        rf"\|{_TSS_OP}~0\|\+\|{_TSS_OP}~0\|{_TSS_OP}~1\|\+\|{_TSS_OP}~0\|{_TSS_OP}~1\|{_TSS_OP}~2\|",
    ),
    "sss": SpaceInfo(
        "sss", 32_768, "NATS-sss-v1_0-50262", "90", rf"{_SSS_WIDTH}(?::{_SSS_WIDTH}){{4}}"
    ),
}

DATASETS: tuple[str, ...] = ("cifar10", "cifar100", "ImageNet16-120")
NUM_CLASSES: dict[str, int] = {"cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}
INPUT_SIZE: dict[str, int] = {"cifar10": 32, "cifar100": 32, "ImageNet16-120": 16}

# Column prefix of each dataset in the compact table (the schema of shared/data/nats_bench/tss.csv).
COLUMN_PREFIX: dict[str, str] = {
    "cifar10": "cifar10",
    "cifar100": "cifar100",
    "ImageNet16-120": "imagenet16",
}

# How people write each dataset's name (messages, charts).
DISPLAY_NAMES: dict[str, str] = {
    "cifar10": "CIFAR-10",
    "cifar100": "CIFAR-100",
    "ImageNet16-120": "ImageNet16-120",
}

_ALIASES = {
    "cifar10": "cifar10",
    "cifar-10": "cifar10",
    "c10": "cifar10",
    "cifar100": "cifar100",
    "cifar-100": "cifar100",
    "c100": "cifar100",
    "imagenet16-120": "ImageNet16-120",
    "imagenet16": "ImageNet16-120",
    "in16": "ImageNet16-120",
}


def space_info(space: str) -> SpaceInfo:
    """The `SpaceInfo` of `space` ("tss" or "sss"), with a clear error otherwise."""
    try:
        return SPACES[space.lower()]
    except KeyError:
        known = sorted(SPACES)
        raise ValueError(f"unknown search space {space!r}; choose one of {known}") from None


def normalise_dataset(dataset: str) -> str:
    """Canonical dataset name ("cifar10", "cifar100", "ImageNet16-120") from common spellings."""
    try:
        return _ALIASES[dataset.lower()]
    except KeyError:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {list(DATASETS)}") from None
