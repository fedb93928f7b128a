"""The minibatch that feeds networks at initialisation, and what happens when images are missing.

`load_minibatch(dataset, batch_size, seed)` picks `batch_size` images of the dataset's own
download (test/val split preferred, see `gm_lab.inputs.images`) with a numpy Generator seeded by
`seed`, so the same seed always gives the same batch. Pixels are scaled to [0, 1] and normalised
with the per-channel mean/std NATS-Bench trained with, so networks see inputs distributed as in
training.

Fallback policy (`fallback=True`, the default), used when the dataset's own images are missing or
fewer than `batch_size`:

1. Another dataset's real images, in the order cifar10, cifar100, ImageNet16-120 (the first with
   at least `batch_size` images), resized to the target size with
   `torch.nn.functional.interpolate` (mode "area" when shrinking, "bilinear" when enlarging),
   normalised with the TARGET dataset's statistics, labels taken modulo its class count. Natural
   images keep zero-cost proxies closer to their real-data values than noise does.
2. Otherwise Gaussian noise N(0, 1) with seeded random labels.

A substitution is never silent: a `StandInImagesWarning` is emitted once per (dataset, source) per
process, and the `Minibatch` records it in `source` (e.g. "cifar10-test-as-cifar100",
"gaussian-noise"), `is_standin=True` and `note` (what was looked at, how many images were found,
what replaced them). Store `Minibatch.provenance()` next to results so stand-in scores are never
mistaken for real ones. With `fallback=False`, a `DataMissingError` saying what is missing, where
it was looked for and how to get it is raised instead. Corrupt files always raise
`CorruptDataError`: a damaged download should be fixed, not papered over.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from gm_lab.errors import DataMissingError
from gm_lab.inputs.images import ImageSet, dataset_format, read_images

# Per-channel statistics (0..255 scale) of NATS-Bench's training transforms (xautodl get_datasets).
MEAN_STD_255: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "cifar10": ((125.3, 123.0, 113.9), (63.0, 62.1, 66.7)),
    "cifar100": ((129.3, 124.1, 112.4), (68.2, 65.4, 70.4)),
    "ImageNet16-120": ((122.68, 116.66, 104.01), (63.22, 61.26, 66.48)),
}
STANDIN_ORDER: tuple[str, ...] = ("cifar10", "cifar100", "ImageNet16-120")
GAUSSIAN_SOURCE = "gaussian-noise"

_WARNED: set[tuple[str, str]] = set()


class StandInImagesWarning(UserWarning):
    """The minibatch does not hold the requested dataset's own images."""


@dataclass(frozen=True, eq=False)
class Minibatch:
    """A normalised batch plus where it came from (eq=False: tensors have no plain equality)."""

    images: torch.Tensor  # [B, 3, H, W] float32, normalised
    labels: torch.Tensor  # [B] int64
    dataset: str
    source: str
    is_standin: bool
    note: str
    seed: int | None = None

    def provenance(self) -> dict[str, Any]:
        """JSON-serialisable record of what the batch holds, to store next to results."""
        return {
            "dataset": self.dataset,
            "source": self.source,
            "is_standin": bool(self.is_standin),
            "note": self.note,
            "batch_size": int(self.images.shape[0]),
            "seed": None if self.seed is None else int(self.seed),
        }


def reset_standin_warnings() -> None:
    """Forget which stand-ins were already announced, so the next use warns again (tests)."""
    _WARNED.clear()


def normalise(images01: torch.Tensor, dataset: str) -> torch.Tensor:
    """Apply `dataset`'s training normalisation to images scaled to [0, 1]."""
    mean, std = MEAN_STD_255[dataset]
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1) / 255
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1) / 255
    return (images01 - mean_t) / std_t


def gaussian_minibatch(dataset: str, batch_size: int = 64, seed: int = 0) -> Minibatch:
    """N(0, 1) images with seeded random labels, for a probe's deliberate noise pass."""
    note = "Gaussian noise N(0, 1) requested on purpose"
    return _gaussian(dataset, batch_size, seed, note, is_standin=False)


def load_minibatch(
    dataset: str, batch_size: int = 64, seed: int = 0, fallback: bool = True
) -> Minibatch:
    """A seeded, normalised batch of `dataset`'s images, or a recorded stand-in (module doc)."""
    fmt = dataset_format(dataset)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    try:
        own = read_images(dataset, enough=batch_size)
    except DataMissingError as exc:
        if not fallback:
            raise
        reason = f"no {dataset} images found (looked in {', '.join(exc.looked)})"
    else:
        if len(own) >= batch_size:
            note = f"{batch_size} of {own.describe()}"
            return _real(own, dataset, batch_size, seed, f"{dataset}-{own.split}", False, note)
        if not fallback:
            raise DataMissingError(
                f"{batch_size} {dataset} images (only {own.describe()})",
                [str(f) for f in own.files],
                fmt.how_to_get + "; or pass fallback=True to use stand-in images",
            )
        reason = f"only {own.describe()}, fewer than the batch size {batch_size}"

    tried: list[str] = []
    for donor in STANDIN_ORDER:
        if donor == dataset:
            continue
        try:
            other = read_images(donor, enough=batch_size)
        except DataMissingError as exc:
            tried.append(f"no {donor} images in {' or '.join(exc.looked)}")
            continue
        if len(other) < batch_size:
            tried.append(f"only {other.describe()}")
            continue
        source = f"{donor}-{other.split}-as-{dataset}"
        side = other.images.shape[-1]
        size = f"{side}x{side}"
        size = f"kept at {size}" if side == fmt.size else f"resized {size} -> {fmt.size}x{fmt.size}"
        note = (
            f"{reason}; using {batch_size} of {other.describe()} instead, {size}, "
            f"normalised with {dataset} statistics, labels taken modulo {fmt.num_classes}"
        )
        batch = _real(other, dataset, batch_size, seed, source, True, note)
        _warn_once(batch)
        return batch

    note = f"{reason}; no stand-in dataset had {batch_size} images ({'; '.join(tried)})"
    batch = _gaussian(dataset, batch_size, seed, f"{note}; using Gaussian noise N(0, 1)", True)
    _warn_once(batch)
    return batch


def _real(
    found: ImageSet,
    dataset: str,
    batch_size: int,
    seed: int,
    source: str,
    is_standin: bool,
    note: str,
) -> Minibatch:
    """Seeded choice of `batch_size` images from `found`, shaped and normalised for `dataset`."""
    fmt = dataset_format(dataset)
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(found), size=batch_size, replace=False)
    images = torch.from_numpy(found.images[idx]).float() / 255
    if images.shape[-1] != fmt.size:
        mode = "area" if images.shape[-1] > fmt.size else "bilinear"
        extra = {"align_corners": False} if mode == "bilinear" else {}
        images = F.interpolate(images, size=(fmt.size, fmt.size), mode=mode, **extra)
    labels = torch.from_numpy(found.labels[idx] % fmt.num_classes).to(torch.int64)
    return Minibatch(
        normalise(images, dataset).contiguous(), labels, dataset, source, is_standin, note, seed
    )


def _gaussian(dataset: str, batch_size: int, seed: int, note: str, is_standin: bool) -> Minibatch:
    """N(0, 1) images and uniform labels from a numpy Generator seeded by `seed`."""
    fmt = dataset_format(dataset)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    rng = np.random.default_rng(seed)
    shape = (batch_size, 3, fmt.size, fmt.size)
    images = torch.from_numpy(rng.standard_normal(shape, dtype=np.float32))
    labels = torch.from_numpy(rng.integers(0, fmt.num_classes, size=batch_size, dtype=np.int64))
    return Minibatch(images, labels, dataset, GAUSSIAN_SOURCE, is_standin, note, seed)


def _warn_once(batch: Minibatch) -> None:
    """Announce a stand-in once per (dataset, source) per process; the batch records it always."""
    key = (batch.dataset, batch.source)
    if key in _WARNED:
        return
    _WARNED.add(key)
    warnings.warn(
        f"{batch.dataset} minibatch uses stand-in images ({batch.source}): {batch.note}.",
        StandInImagesWarning,
        stacklevel=3,
    )
