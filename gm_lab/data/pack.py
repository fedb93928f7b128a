"""Build the embedded default data (`gm_lab/embedded/`) from a folder laid out like shared/data.

`gm-lab data pack SRC` writes, deterministically (same source, same bytes):

- `nats_bench/tss.csv.xz`: the compact NATS-Bench TSS table, every row and every column of
  `SRC/nats_bench/tss.csv`, re-written with float64 round-trip precision and xz-compressed;
- `images/cifar-10-batches-py.npz`: the first `per_class` CIFAR-10 test images of every class,
  in file order (uint8 [N, 3, 32, 32] and int64 labels, no pickle);
- `manifest.json`: SHA-256 of each source and packed file, row and image counts;
- `PROVENANCE.md`: where every figure comes from, its licence, and how to rebuild.

Why these two files are in the package: with them gm_lab runs end to end after nothing but
`pip install` (real ground truth, real images), on a laptop and on Binder. They are derived, small
(budget 2.5 MB and 1 MB) and rebuilt by this module, never edited by hand.
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gm_lab.benchmark.spaces import space_info
from gm_lab.benchmark.table import read_table
from gm_lab.errors import DataMissingError
from gm_lab.inputs.images import FORMATS, read_image_folder
from gm_lab.paths import embedded_root

TABLE_NAME = "nats_bench/tss.csv.xz"
IMAGES_NAME = f"images/{FORMATS['cifar10'].folder}.npz"
PER_CLASS = 26  # 260 CIFAR-10 test images: every class, above the 256 asked, 0.8 MB
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed member timestamps: the same input gives the same bytes


@dataclass(frozen=True)
class PackReport:
    """What `pack` wrote: paths and sizes in bytes, for the CLI to print."""

    table: Path
    table_bytes: int
    n_rows: int
    images: Path
    images_bytes: int
    n_images: int


def pack(source: Path, out: Path | None = None, per_class: int = PER_CLASS) -> PackReport:
    """Pack the TSS table and a CIFAR-10 minibatch pack from `source` into `out` (the package)."""
    source, out = Path(source), Path(out) if out is not None else embedded_root()
    table_src = source / "nats_bench" / "tss.csv"
    images_src = source / "images" / FORMATS["cifar10"].folder
    table = read_table(_require(table_src), space_info("tss"))
    images, labels, files = _pick_images(_require(images_src), per_class)

    table_bytes = _table_bytes(table)
    image_bytes = _npz_bytes({"images": images, "labels": labels})
    _write(out / TABLE_NAME, table_bytes)
    _write(out / IMAGES_NAME, image_bytes)
    manifest = {
        "table": {
            "file": TABLE_NAME,
            "sha256": _sha256(table_bytes),
            "rows": len(table),
            "columns": list(table.columns),
            "source_sha256": _sha256(table_src.read_bytes()),
        },
        "images": {
            "file": IMAGES_NAME,
            "sha256": _sha256(image_bytes),
            "count": len(labels),
            "per_class": per_class,
            "source_sha256": {f.name: _sha256(f.read_bytes()) for f in files},
        },
    }
    _write(out / "manifest.json", (json.dumps(manifest, indent=2) + "\n").encode())
    _write(out / "PROVENANCE.md", PROVENANCE.format(per_class=per_class, n=len(labels)).encode())
    return PackReport(
        table=out / TABLE_NAME,
        table_bytes=len(table_bytes),
        n_rows=len(table),
        images=out / IMAGES_NAME,
        images_bytes=len(image_bytes),
        n_images=len(labels),
    )


def _require(path: Path) -> Path:
    if not path.exists():
        raise DataMissingError(
            "data to pack", [str(path)], "point SRC at a folder laid out like shared/data"
        )
    return path


def _pick_images(folder: Path, per_class: int) -> tuple[np.ndarray, np.ndarray, tuple[Path, ...]]:
    """The first `per_class` test images of every class, in file order (deterministic)."""
    found = read_image_folder("cifar10", folder)
    if found is None or found.split != "test":
        raise DataMissingError("CIFAR-10 test images", [str(folder)], FORMATS["cifar10"].how_to_get)
    rank = np.zeros_like(found.labels)
    for label in np.unique(found.labels):
        where = np.flatnonzero(found.labels == label)
        rank[where] = np.arange(where.size)
    keep = np.flatnonzero(rank < per_class)
    counts = np.bincount(found.labels[keep], minlength=FORMATS["cifar10"].num_classes)
    if counts.min() < per_class:
        raise DataMissingError(
            f"{per_class} CIFAR-10 test images of every class (found {counts.tolist()})",
            [str(f) for f in found.files],
            FORMATS["cifar10"].how_to_get,
        )
    return found.images[keep], found.labels[keep], found.files


def _table_bytes(table: pd.DataFrame) -> bytes:
    """CSV text that reads back to the same float64 values, xz-compressed (about 1.3 MB)."""
    text = table.to_csv(index=False, lineterminator="\n").encode()
    return lzma.compress(text, format=lzma.FORMAT_XZ, preset=9 | lzma.PRESET_EXTREME)


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An .npz that `np.load` reads, with fixed timestamps (numpy's own writer stamps the clock)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, array in arrays.items():
            member = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_TIME)
            member.compress_type = zipfile.ZIP_DEFLATED
            data = io.BytesIO()
            np.lib.format.write_array(data, np.ascontiguousarray(array), allow_pickle=False)
            archive.writestr(member, data.getvalue(), compresslevel=9)
    return buffer.getvalue()


def _write(path: Path, data: bytes) -> None:
    """Write atomically: a crash never leaves a half-written package file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


PROVENANCE = """\
# Embedded default data: provenance

gm_lab ships two small derived files so that it runs after nothing but `pip install`. They are
written by `gm-lab data pack SRC` (gm_lab/data/pack.py) from a folder laid out like the project's
shared data folder, deterministically; `manifest.json` holds the SHA-256 of every source and packed
file. Rebuild: `gm-lab data pack /path/to/data` (from a source checkout: writes gm_lab/embedded/).

## nats_bench/tss.csv.xz — NATS-Bench TSS ground truth, all 15,625 architectures
Every row and column of `nats_bench/tss.csv` (schema: gm_lab/benchmark/table.py), xz-compressed.
- Accuracies: NATS-Bench (X. Dong, L. Liu, K. Musial, B. Gabrys, "NATS-Bench: Benchmarking NAS
  Algorithms for Architecture Topology and Size", IEEE TPAMI 2021; github.com/D-X-Y/NATS-Bench,
  MIT licence), as `api.get_more_info(index, dataset, hp="200", is_random=False)` returns them:
  final epoch of the 200-epoch schedule, mean over training seeds; `*_test_12ep` the 12-epoch
  schedule; `cifar10_valid*` the cifar10-valid runs; `*_valid_single_seed` one seed;
  `params_*` exact parameter counts (10 / 100 / 120 classes).
- `hw_*`: HW-NAS-Bench (C. Li et al., ICLR 2021; github.com/GATECH-EIC/HW-NAS-Bench, MIT licence),
  latency (ms) and energy (mJ) on edgegpu, raspi4, pixel3, edgetpu, eyeriss, fpga.

## images/cifar-10-batches-py.npz — {n} real CIFAR-10 test images
The first {per_class} test images of each of the 10 classes, in file order, from the CIFAR-10 python
version's `test_batch` (A. Krizhevsky, "Learning Multiple Layers of Features from Tiny Images",
2009; www.cs.toronto.edu/~kriz/cifar.html). Arrays `images` (uint8 [N, 3, 32, 32]) and `labels`.
The project's shared data folder holds test images decoded from JPEG copies (mean absolute pixel
error about 6/255 against the originals); packs built from an original download are exact.

What the embedded default does not cover (`gm-lab data info` says so, `gm-lab data download`
fetches it): NATS-Bench SSS ground truth, CIFAR-100 and ImageNet16-120 images (CIFAR-10 images
stand in for them, and every result records it), and the full CIFAR-10 test set.
"""
