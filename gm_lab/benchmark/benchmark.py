"""`Benchmark`: one object answering what a benchmark knows of each architecture of a space.

It loads either the compact table (fast) or, for the NATS-Bench spaces, the official folder
through `nats_bench` (which it imports once into the cache as a compact table, with a progress
bar). Where a space's table is looked for is the space's business (`SearchSpace.table_path`,
`table_folder`, `official_folder`); any registered space loads the same way.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gm_lab import paths
from gm_lab.benchmark.official import extract_table, result_indices
from gm_lab.benchmark.table import read_table, write_table
from gm_lab.errors import DataMissingError, GmLabError
from gm_lab.paths import cache_root, data_roots, origin_of
from gm_lab.spaces import COLUMN_PREFIX, SearchSpace, get_space, normalise_dataset

SpaceInfo = SearchSpace  # the name this module's signatures used before spaces were plug-ins

SPLITS = ("test", "valid")

#: HW-NAS-Bench devices and figures, as the table's `hw_<device>_<metric>_<dataset>` columns
#: name them (energy is measured on edgegpu, eyeriss and fpga only).
HW_DEVICES = ("edgegpu", "raspi4", "pixel3", "edgetpu", "eyeriss", "fpga")
HW_METRICS = ("latency", "energy")
HW_UNITS = {"latency": "ms", "energy": "mJ"}


class HardwareDataError(GmLabError, ValueError):
    """A hardware figure the benchmark cannot give: unknown device or metric, or a table
    without HW-NAS-Bench columns (e.g. one imported from the official NATS-Bench folder)."""


@dataclass(frozen=True)
class BestArch:
    index: int
    arch: str
    test_acc: float


class Benchmark:
    """Ground truth of one search space over all its architectures (NaN where unknown)."""

    def __init__(self, table: pd.DataFrame, space: str | SearchSpace, source: str):
        self.space: SearchSpace = get_space(space)
        self.table = table
        self.source = source
        self.archs: np.ndarray = table["arch"].to_numpy(dtype=object)
        self._index_of = {arch: i for i, arch in enumerate(self.archs)}

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_table(cls, path: Path | str, space: str | SearchSpace) -> Benchmark:
        """Load a compact table (see `gm_lab.benchmark.table`)."""
        info = get_space(space)
        return cls(read_table(Path(path), info), info.name, source=str(path))

    @classmethod
    def from_official(
        cls, folder: Path | str, space: str | SearchSpace, progress: bool = True
    ) -> Benchmark:
        """Read an official `NATS-*-simple` folder through the `nats_bench` API (slow: per arch)."""
        info = get_space(space)
        return cls(extract_table(Path(folder), info, progress), info.name, source=str(folder))

    @classmethod
    def load(cls, space: str | SearchSpace = "tss", progress: bool = True) -> Benchmark:
        """Find the data for `space` and load it the fastest way possible.

        Order (see `gm_lab.paths`): the space's own `table_path` if it sets one; in each data
        folder a compact table, then an official folder (imported once into the cache and
        reused while unchanged); finally the embedded default.
        """
        info = get_space(space)
        located = locate(info)
        if located.kind == "official":
            cached = imported_table_path(info)
            if cached.is_file() and _read_stamp(cached) == _folder_stamp(located.path):
                return cls(read_table(cached, info), info.name, source=str(cached))
            return cls.import_official(located.path, info.name, progress=progress)
        return cls.from_table(located.path, info.name)

    @classmethod
    def import_official(
        cls,
        folder: Path | str,
        space: str | SearchSpace,
        out: Path | None = None,
        progress: bool = True,
    ) -> Benchmark:
        """Convert an official folder into a compact table (default: the cache `load` reads)."""
        info = get_space(space)
        out = Path(out) if out is not None else imported_table_path(info)
        bench = cls.from_official(folder, info.name, progress)
        bench.save(out)
        _stamp_path(out).write_text(json.dumps(_folder_stamp(Path(folder))))
        return bench

    def save(self, path: Path | str) -> Path:
        """Write this benchmark as a compact table (atomic)."""
        write_table(self.table, Path(path))
        return Path(path)

    # ---- questions ------------------------------------------------------------------------
    @property
    def n_archs(self) -> int:
        return len(self.archs)

    def arch(self, index: int) -> str:
        return str(self.archs[index])

    def index_of(self, arch: str) -> int:
        try:
            return self._index_of[arch]
        except KeyError:
            raise KeyError(f"{arch!r} is not in the {self.space.name} space") from None

    def accuracy(self, dataset: str, split: str = "test") -> np.ndarray:
        """Final accuracy (percent) per architecture; NaN where the benchmark has no result.

        `split="valid"`: CIFAR-10 from the cifar10-valid runs; CIFAR-100 / ImageNet16-120 the mean
        over seeds where the table has it, else the single-seed figure (HW-NAS-Bench tables).
        """
        prefix = COLUMN_PREFIX[normalise_dataset(dataset)]
        if split == "test":
            columns = [f"{prefix}_test"]
        elif split == "valid":
            columns = [f"{prefix}_valid", f"{prefix}_valid_single_seed"]
        else:
            raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
        for column in columns:
            if column in self.table:
                return self.table[column].to_numpy(dtype=float)
        return np.full(self.n_archs, np.nan)

    def params(self, dataset: str) -> np.ndarray:
        """Parameter count per architecture (float, NaN where unknown)."""
        column = f"params_{COLUMN_PREFIX[normalise_dataset(dataset)]}"
        if column not in self.table:  # a dataset the space has no ground truth for
            return np.full(self.n_archs, np.nan)
        return self.table[column].to_numpy(dtype=float, na_value=np.nan)

    def costs(self, dataset: str) -> pd.DataFrame:
        """Cost and hardware figures known for `dataset` (params, train time, HW-NAS-Bench)."""
        prefix = COLUMN_PREFIX[normalise_dataset(dataset)]
        columns = [f"params_{prefix}"] + [
            c for c in self.table.columns if c.startswith("hw_") and c.endswith(f"_{prefix}")
        ]
        if prefix == "cifar10":
            columns.append("cifar10_valid_train_time_s")
        return self.table[[c for c in columns if c in self.table]]

    def hardware_devices(self, dataset: str, metric: str = "latency") -> list[str]:
        """HW-NAS-Bench devices this table has `metric` of for `dataset` (may be empty)."""
        prefix = COLUMN_PREFIX[normalise_dataset(dataset)]
        return [d for d in HW_DEVICES if f"hw_{d}_{metric}_{prefix}" in self.table]

    def hardware(self, dataset: str, device: str, metric: str = "latency") -> np.ndarray:
        """HW-NAS-Bench latency (ms) or energy (mJ) per architecture on `device`, NaN where
        unknown (HW-NAS-Bench's -1 "not measured" too); HardwareDataError saying what exists
        when the table cannot answer."""
        dataset = normalise_dataset(dataset)
        if metric not in HW_METRICS:
            raise HardwareDataError(
                f"unknown hardware metric {metric!r}; choose one of {HW_METRICS}"
            )
        if device not in HW_DEVICES:
            raise HardwareDataError(
                f"unknown device {device!r}; HW-NAS-Bench devices: {', '.join(HW_DEVICES)}"
            )
        column = f"hw_{device}_{metric}_{COLUMN_PREFIX[dataset]}"
        if column in self.table:
            values = self.table[column].to_numpy(dtype=float, na_value=np.nan)
            # HW-NAS-Bench writes -1 where it measured nothing (4,699 TSS cells on edgetpu)
            return np.where(values < 0, np.nan, values)
        if not any(str(c).startswith("hw_") for c in self.table.columns):
            raise HardwareDataError(
                f"the {self.space.name} table {self.source} has no HW-NAS-Bench columns (hw_*): "
                "latency columns need the full table, set GM_LAB_DATA to a data folder whose "
                f"{self.space.table_folder}/{self.space.table_name} has them"
            )
        have = self.hardware_devices(dataset, metric)
        raise HardwareDataError(
            f"HW-NAS-Bench has no {metric} of {device} for {dataset}; devices with {metric}: "
            f"{', '.join(have) or 'none'}"
        )

    def with_ground_truth(self, dataset: str) -> np.ndarray:
        """Indices of the architectures that have a test accuracy for `dataset`."""
        return np.flatnonzero(np.isfinite(self.accuracy(dataset)))

    def best(self, dataset: str) -> BestArch:
        acc = self.accuracy(dataset)
        if not np.isfinite(acc).any():
            raise ValueError(f"no architecture of {self.space.name} has results for {dataset}")
        index = int(np.nanargmax(acc))
        return BestArch(index, self.arch(index), float(acc[index]))

    def summary(self, dataset: str) -> dict[str, Any]:
        """The figures `gm-lab data info` prints."""
        dataset = normalise_dataset(dataset)
        acc = self.accuracy(dataset)
        known = acc[np.isfinite(acc)]
        best = self.best(dataset)
        return {
            "space": self.space.name,
            "dataset": dataset,
            "source": self.source,
            "hp": self.space.hp,
            "n_archs": self.n_archs,
            "n_with_ground_truth": int(known.size),
            "test_acc_min": float(known.min()),
            "test_acc_max": float(known.max()),
            "test_acc_mean": float(known.mean()),
            "best": {"index": best.index, "arch": best.arch, "test_acc": best.test_acc},
        }


@dataclass(frozen=True)
class TableSource:
    """Where a space's ground truth comes from: a compact table or an official folder."""

    kind: str  # "table" (compact CSV, maybe xz) or "official" (NATS-*-simple folder)
    path: Path
    origin: str  # which place holds it, see `gm_lab.paths.origin_of`


def _table_in(root: Path, info: SearchSpace) -> Path:
    return root / info.table_folder / info.table_name


def table_candidates(info: SearchSpace) -> list[Path]:
    """Compact tables looked for, in order: the space's own `table_path`, one per data folder,
    then the embedded default."""
    own = [Path(info.table_path).expanduser()] if info.table_path is not None else []
    tables = [_table_in(root, info) for root in data_roots()]
    embedded = paths.embedded_root() / info.table_folder / f"{info.table_name}.xz"
    return [*own, *tables, embedded]


def _official_in(root: Path, info: SearchSpace) -> list[Path]:
    """Where an official download may sit in one data folder (3 layouts; none for a space
    without an official download)."""
    folder = info.official_folder
    if folder is None:
        return []
    return [
        root / info.table_folder / folder,
        root / folder,
        root / info.table_folder / "official_sample" / folder,
    ]


def official_candidates(info: SearchSpace) -> list[Path]:
    """Where an official download may sit: each data folder, then nats_bench's TORCH_HOME."""
    if info.official_folder is None:
        return []
    torch_home = Path(os.environ.get("TORCH_HOME", Path.home() / ".torch"))
    per_root = [path for root in data_roots() for path in _official_in(root, info)]
    return [*per_root, torch_home / info.official_folder]


def find_official_folder(info: SearchSpace) -> Path | None:
    return next((p for p in official_candidates(info) if _is_official(p)), None)


def _is_official(folder: Path) -> bool:
    return (folder / "meta.pickle.pbz2").is_file()


def locate(info: SearchSpace) -> TableSource:
    """The source `Benchmark.load` reads for `info`; DataMissingError naming every place tried.

    The space's own `table_path` comes first when it sets one. Then data folders are searched in
    order (`gm_lab.paths`), each for a compact table, then for an official folder (a table
    imported from it earlier is reused); then nats_bench's TORCH_HOME, a table imported from a
    folder since moved away, and last the embedded default.
    """
    if info.table_path is not None:
        own = Path(info.table_path).expanduser()
        if own.is_file():
            return TableSource("table", own, origin_of(own))
    for root in data_roots():
        table = _table_in(root, info)
        if table.is_file():
            return TableSource("table", table, origin_of(table))
        folder = next((p for p in _official_in(root, info) if _is_official(p)), None)
        if folder is not None:
            return TableSource("official", folder, origin_of(folder))
    folder = find_official_folder(info)  # TORCH_HOME, the last candidate
    if folder is not None:
        return TableSource("official", folder, origin_of(folder))
    imported = imported_table_path(info)
    if imported.is_file():
        return TableSource("table", imported, origin_of(imported))
    embedded = table_candidates(info)[-1]
    if embedded.is_file():
        return TableSource("table", embedded, origin_of(embedded))
    if info.download is not None:
        hint = (
            f"run `gm-lab data download {info.download}` (it fetches the official "
            f"{info.official_folder} archive and imports it once), or extract that archive under "
            f"$GM_LAB_DATA/{info.table_folder}/ and run `gm-lab data import PATH` once on it"
        )
    else:
        hint = (
            f"put the space's compact table (schema: gm_lab.benchmark.table; columns "
            f"{', '.join(info.required_columns())}) at $GM_LAB_DATA/{info.table_folder}/"
            f"{info.table_name}, or set the space's table_path"
        )
    official = [*official_candidates(info), str(imported)] if info.official_folder else []
    raise DataMissingError(
        f"{info.display_name} results",
        [*(str(t) for t in table_candidates(info)[:-1]), *(str(p) for p in official)],
        hint,
    )


def imported_table_path(info: SearchSpace) -> Path:
    return cache_root() / info.table_folder / info.table_name


def _stamp_path(table: Path) -> Path:
    return table.with_suffix(".source.json")


def _read_stamp(table: Path) -> dict[str, Any] | None:
    stamp = _stamp_path(table)
    return json.loads(stamp.read_text()) if stamp.is_file() else None


def _folder_stamp(folder: Path) -> dict[str, Any]:
    """What identifies an official folder's content cheaply: its path and its result files."""
    indices = result_indices(folder)
    return {"folder": str(folder.resolve()), "n_results": len(indices), "last": indices[-1:]}
