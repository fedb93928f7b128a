"""The image datasets a search space can have ground truth for, and the facts every layer agrees
on: class counts, input sizes, the column prefix of each in a compact benchmark table, and how
people write their names."""

from __future__ import annotations

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


def normalise_dataset(dataset: str) -> str:
    """Canonical dataset name ("cifar10", "cifar100", "ImageNet16-120") from common spellings."""
    try:
        return _ALIASES[dataset.lower()]
    except KeyError:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {list(DATASETS)}") from None
