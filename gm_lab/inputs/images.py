"""Readers for the standard image downloads NATS-Bench trained on, read unchanged.

Formats (all pickled dicts; a user's real download is read as it comes):

- CIFAR-10 python version, folder `cifar-10-batches-py`: `test_batch`, `data_batch_1..5`,
  keys `data` (N x 3072 uint8, channel-major 32x32) and `labels`.
- CIFAR-100 python version, folder `cifar-100-python`: `test`, `train`, keys `data` and
  `fine_labels`.
- ImageNet16-120 as xautodl's `ImageNet16` loader reads it, folder `ImageNet16`: `val_data`,
  `train_data_batch_1..10`, keys `data` (N x 768 uint8, 16x16) and 1-based `labels`; only labels
  1..120 are kept and shifted to 0..119.

A folder is looked for in each data folder of `gm_lab.paths.data_roots()` (at
`<root>/images/<folder>`, then `<root>/<folder>`), then in the embedded default, which packs a few
hundred real CIFAR-10 test images as `embedded/images/<folder>.npz` (arrays `images`, `labels`; no
pickle). The test/val split is preferred (a minibatch at initialisation should not peek at
training data, and it is the smallest file), else the train files. Pickles are loaded with
`encoding="latin1"` as torchvision and xautodl do; bytes keys (Python 3 pickles) are accepted
too. Pickle can run code: only point `GM_LAB_DATA` at downloads you trust.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from gm_lab import paths
from gm_lab.benchmark.spaces import NUM_CLASSES
from gm_lab.errors import CorruptDataError, DataMissingError
from gm_lab.paths import DATA_ENV, data_roots


@dataclass(frozen=True)
class DatasetFormat:
    """Where and how one dataset's python-pickle download stores its images."""

    folder: str
    test_files: tuple[str, ...]
    train_files: tuple[str, ...]
    label_key: str
    size: int
    num_classes: int
    one_based_labels: bool
    how_to_get: str


FORMATS: dict[str, DatasetFormat] = {
    "cifar10": DatasetFormat(
        folder="cifar-10-batches-py",
        test_files=("test_batch",),
        train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
        label_key="labels",
        size=32,
        num_classes=NUM_CLASSES["cifar10"],
        one_based_labels=False,
        how_to_get=(
            "download the CIFAR-10 python version "
            "(https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz), extract it and place "
            f"the folder cifar-10-batches-py under ${DATA_ENV}/images/"
        ),
    ),
    "cifar100": DatasetFormat(
        folder="cifar-100-python",
        test_files=("test",),
        train_files=("train",),
        label_key="fine_labels",
        size=32,
        num_classes=NUM_CLASSES["cifar100"],
        one_based_labels=False,
        how_to_get=(
            "download the CIFAR-100 python version "
            "(https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz), extract it and place "
            f"the folder cifar-100-python under ${DATA_ENV}/images/"
        ),
    ),
    "ImageNet16-120": DatasetFormat(
        folder="ImageNet16",
        test_files=("val_data",),
        train_files=tuple(f"train_data_batch_{i}" for i in range(1, 11)),
        label_key="labels",
        size=16,
        num_classes=NUM_CLASSES["ImageNet16-120"],
        one_based_labels=True,
        how_to_get=(
            "download the 16x16 downsampled ImageNet in its pickle-batch form (image-net.org, "
            "'Downsampled ImageNet 16x16', as used by NATS-Bench/xautodl) and place val_data "
            f"and train_data_batch_1..10 in a folder ImageNet16 under ${DATA_ENV}/images/"
        ),
    ),
}


@dataclass(frozen=True)
class ImageSet:
    """Images of one split as stored: uint8 [N,3,H,W] and int64 labels [N] (read-only arrays)."""

    dataset: str
    split: str
    images: np.ndarray
    labels: np.ndarray
    files: tuple[Path, ...]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def describe(self) -> str:
        """Human phrase naming count, split and file(s), for notes and warnings."""
        where = ", ".join(str(f) for f in self.files)
        return f"{len(self)} {self.dataset} {self.split} images in {where}"


def dataset_format(dataset: str) -> DatasetFormat:
    """The format of a known dataset; a clear ValueError for anything else."""
    try:
        return FORMATS[dataset]
    except KeyError:
        known = sorted(FORMATS)
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {known}") from None


def candidate_folders(dataset: str) -> list[Path]:
    """Folders of the user's data that may hold the dataset, in the order they are tried."""
    folder = dataset_format(dataset).folder
    return [path for root in data_roots() for path in (root / "images" / folder, root / folder)]


def embedded_pack(dataset: str) -> Path:
    """Where the embedded default keeps a dataset's image pack (only CIFAR-10 ships one)."""
    return paths.embedded_root() / "images" / f"{dataset_format(dataset).folder}.npz"


def read_images(dataset: str, enough: int | None = None) -> ImageSet:
    """Read the preferred split of `dataset`; DataMissingError if no folder holds its files.

    For the train split, files are read in order and reading stops once `enough` images are
    in hand: one file already holds thousands, and all ten ImageNet16 train files exceed a GB.
    """
    fmt = dataset_format(dataset)
    looked: list[str] = []
    for folder in candidate_folders(dataset):
        looked.append(str(folder))
        if not folder.is_dir():
            continue
        found = read_image_folder(dataset, folder, enough)
        if found is not None:
            return found
        looked[-1] += f" (exists, but has none of {', '.join(fmt.test_files + fmt.train_files)})"
    pack = embedded_pack(dataset)
    if pack.is_file():
        return read_pack(dataset, pack)
    raise DataMissingError(f"{dataset} images", looked, fmt.how_to_get)


def read_image_folder(dataset: str, folder: Path, enough: int | None = None) -> ImageSet | None:
    """The preferred split found in one download folder, or None if it holds none of its files."""
    fmt = dataset_format(dataset)
    tests = [folder / name for name in fmt.test_files if (folder / name).is_file()]
    if tests:
        return _read_split(dataset, "val" if fmt.one_based_labels else "test", tests, None)
    trains = [folder / name for name in fmt.train_files if (folder / name).is_file()]
    if trains:
        return _read_split(dataset, "train", trains, enough)
    return None


def read_pack(dataset: str, path: Path) -> ImageSet:
    """An embedded image pack (`gm-lab data pack` writes it): split "test-embedded".

    Its own split name keeps probe caches made from the pack apart from those made from a full
    download of the same dataset (the cache compares the minibatch source).
    """
    try:
        with np.load(path, allow_pickle=False) as pack:
            images, labels = pack["images"], pack["labels"].astype(np.int64)
    except (OSError, ValueError, KeyError) as exc:
        raise CorruptDataError(str(path), f"cannot read the image pack ({exc})") from exc
    fmt = dataset_format(dataset)
    if images.dtype != np.uint8 or images.shape[1:] != (3, fmt.size, fmt.size):
        raise CorruptDataError(str(path), f"images are {images.dtype} {images.shape}")
    if len(images) != len(labels):
        raise CorruptDataError(str(path), f"{len(images)} images but {len(labels)} labels")
    images.flags.writeable = False
    labels.flags.writeable = False
    return ImageSet(dataset, "test-embedded", images, labels, (path,))


def _read_split(dataset: str, split: str, files: list[Path], enough: int | None) -> ImageSet:
    """Concatenate the given files, stopping early once `enough` images were read."""
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    used: list[Path] = []
    count = 0
    for path in files:
        stat = path.stat()
        images, labels = _read_file(dataset, str(path), stat.st_size, stat.st_mtime_ns)
        parts.append((images, labels))
        used.append(path)
        count += len(labels)
        if enough is not None and count >= enough:
            break
    if len(parts) == 1:
        images, labels = parts[0]
    else:
        images = np.concatenate([p[0] for p in parts])
        labels = np.concatenate([p[1] for p in parts])
        images.flags.writeable = False
        labels.flags.writeable = False
    return ImageSet(dataset, split, images, labels, tuple(used))


@lru_cache(maxsize=4)
def _read_file(dataset: str, path: str, size: int, mtime_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode one pickle; cached by (path, size, mtime) so repeated batches skip the disk."""
    fmt = dataset_format(dataset)
    try:
        with open(path, "rb") as fh:
            raw = pickle.load(fh, encoding="latin1")
    except Exception as exc:  # a damaged pickle can fail in almost any way
        raise CorruptDataError(path, f"cannot unpickle ({type(exc).__name__}: {exc})") from exc
    if not isinstance(raw, dict):
        raise CorruptDataError(path, f"expected a pickled dict, got {type(raw).__name__}")
    entry = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in raw.items()}
    missing = [k for k in ("data", fmt.label_key) if k not in entry]
    if missing:
        raise CorruptDataError(path, f"missing key(s) {missing}; found {sorted(map(str, entry))}")
    pixels = 3 * fmt.size * fmt.size
    data = np.asarray(entry["data"])
    labels = np.asarray(entry[fmt.label_key]).astype(np.int64).reshape(-1)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != pixels:
        raise CorruptDataError(
            path, f"data is {data.dtype} {data.shape}, expected uint8 (N, {pixels})"
        )
    if data.shape[0] != labels.shape[0]:
        raise CorruptDataError(path, f"{data.shape[0]} images but {labels.shape[0]} labels")
    images = data.reshape(-1, 3, fmt.size, fmt.size)
    if fmt.one_based_labels:
        keep = (labels >= 1) & (labels <= fmt.num_classes)
        images, labels = images[keep], labels[keep] - 1
    elif labels.size and (labels.min() < 0 or labels.max() >= fmt.num_classes):
        raise CorruptDataError(
            path, f"labels span {labels.min()}..{labels.max()}, expected 0..{fmt.num_classes - 1}"
        )
    images = np.ascontiguousarray(images)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def clear_cache() -> None:
    """Forget decoded files (for tests and long sessions that swap datasets)."""
    _read_file.cache_clear()
