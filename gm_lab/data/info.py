"""Which source each part of the data comes from, and what a download would add.

`gm-lab data info` shows this so that a user always knows whether results rest on their own full
download, on the embedded default, or on stand-in images (never silently).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from gm_lab.benchmark.benchmark import locate
from gm_lab.benchmark.official import result_indices
from gm_lab.benchmark.table import read_table
from gm_lab.errors import DataMissingError
from gm_lab.inputs.images import read_images
from gm_lab.paths import (
    cache_root,
    data_roots,
    embedded_root,
    origin_of,
)
from gm_lab.provenance import standin_donor
from gm_lab.spaces import COLUMN_PREFIX, DATASETS, SPACES, get_space

DEFAULT_BATCH = 64  # the probe's default minibatch: fewer images than this means a stand-in

# What each dataset's images add beyond the embedded default, and the command that fetches them
# (a search space says so itself: `SearchSpace.download`, `SearchSpace.download_adds`).
_DOWNLOADS: dict[str, tuple[str, str]] = {
    "cifar10": ("cifar10", "the full CIFAR-10 test set (10,000 images, exact pixels)"),
    "cifar100": ("cifar100", "CIFAR-100's own images (else CIFAR-10 images stand in)"),
    "ImageNet16-120": (
        "",
        "ImageNet16-120's own images; there is no public direct download: put xautodl's "
        "ImageNet16 folder (val_data) under images/ of a data folder",
    ),
}


@dataclass(frozen=True)
class PartSource:
    """Where one part of the data comes from (`origin` None: nowhere, the part is missing)."""

    part: str  # "tss table", "cifar10 images"
    origin: str | None  # "$GM_LAB_DATA", "per-user data folder", "embedded default", "cache"
    path: str | None
    detail: str
    standin: str | None = None  # images: the dataset whose images stand in, if any
    download: str | None = None  # `gm-lab data download NAME` that would add something
    would_add: str | None = None


def lookup_order() -> list[dict[str, str]]:
    """The places searched, first to last, as `gm-lab data info` prints them."""
    places = [{"place": origin_of(root), "path": str(root)} for root in data_roots()]
    return [*places, {"place": "embedded default", "path": str(embedded_root())}]


def data_sources() -> list[PartSource]:
    """One entry per benchmark table and per dataset's images."""
    return [*(_table_source(space) for space in SPACES), *(_image_source(d) for d in DATASETS)]


def _table_source(space: str) -> PartSource:
    info = get_space(space)
    name, adds = info.download, info.download_adds or None
    try:
        found = locate(info)
    except DataMissingError:
        return PartSource(f"{space} table", None, None, "not found", None, name, adds)
    if found.kind == "official":
        n = len(result_indices(found.path))
        detail = f"official folder, {n:,} architectures with results (imported on first use)"
    else:
        table = read_table(found.path, info)
        first = f"{COLUMN_PREFIX[info.datasets[0]]}_test"
        n = int(np.isfinite(table[first].to_numpy(dtype=float)).sum())
        detail = f"{len(table):,} architectures, {n:,} with results, {len(table.columns)} columns"
    user_side = found.origin not in ("embedded default", "cache")
    complete = n == info.n_archs  # every architecture has results: a download adds none
    wanted = name is not None and not (user_side or complete)
    return PartSource(
        f"{space} table",
        found.origin,
        str(found.path),
        detail,
        None,
        name if wanted else None,
        adds if wanted else None,
    )


def _image_source(dataset: str) -> PartSource:
    from gm_lab.inputs.minibatch import load_minibatch  # torch: only when images are asked about

    name, adds = _DOWNLOADS[dataset]
    try:
        own = read_images(dataset)
    except DataMissingError:
        origin, path, detail = None, None, "not found"
    else:
        origin, path = origin_of(own.files[0]), str(own.files[0])
        detail = f"{len(own):,} {own.split.removesuffix('-embedded')} images"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        batch = load_minibatch(dataset, batch_size=DEFAULT_BATCH)
    standin = standin_donor(batch.provenance())
    if standin is not None and origin is not None:
        detail += f", fewer than a batch of {DEFAULT_BATCH}"
    wanted = origin in (None, "embedded default") or standin is not None
    return PartSource(
        f"{dataset} images",
        origin,
        path,
        detail,
        standin,
        (name or None) if wanted else None,
        adds if wanted else None,
    )


def sources_json() -> dict[str, Any]:
    """The machine-readable form: lookup order, then one object per part."""
    return {
        "lookup_order": lookup_order(),
        "cache": str(cache_root()),
        "parts": [asdict(p) for p in data_sources()],
    }
