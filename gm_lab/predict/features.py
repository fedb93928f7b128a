"""Features of architectures for an accuracy predictor (issue #16), by family:

- `arch`: data-free, from the architecture string alone (no probe, no data): for TSS a one-hot
  cell encoding (6 edges x 5 ops), op counts, GRAF-style path features (number of
  input->output paths and their shortest/longest length, over edges restricted to op sets),
  node degrees, the parameter count (closed form, gm_lab.networks.counting), and every
  registered proxy that needs the architecture alone (`Need.ARCHITECTURE`, e.g. `sed_like`);
  for other spaces the parameter count and those proxies only.
- `proxies`: every shared-pass proxy column of the probe cache (`ProbeArrays.proxies`) and the
  mean and sum over layers of every per-layer statistic (`ProbeArrays.layer_stats`). Needs the
  architectures probed (`gm_lab.probe.runner.probe_many`); the CLI probes what is missing.
- `all`: both.

Every feature is a float column; non-finite values are mapped to fixed sentinels (+-1e30 for
infinities, NaN kept: both models handle missing values), so an architecture's features never
depend on the sample it is in. This module imports neither torch nor scikit-learn.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from gm_lab.errors import GmLabError

if TYPE_CHECKING:
    from gm_lab.probe.cache import ProbeArrays

FEATURE_SETS: tuple[str, ...] = ("arch", "proxies", "all")
SENTINEL = 1e30  # stands for +-inf (float32-safe: scikit-learn's trees cast to float32)


class FeatureError(GmLabError, ValueError):
    """Features cannot be built as asked (unknown set, missing probe records, ...)."""


@dataclass(frozen=True)
class Features:
    """A feature matrix: row r describes architecture `indices[r]`."""

    indices: np.ndarray  # int64[n]
    names: list[str]
    values: np.ndarray  # float64[n, len(names)]

    def columns(self, names: Sequence[str]) -> np.ndarray:
        """The columns `names` in that order (a saved predictor's feature order)."""
        where = {n: i for i, n in enumerate(self.names)}
        gone = [n for n in names if n not in where]
        if gone:
            raise FeatureError(
                f"{len(gone)} feature(s) the predictor was trained on are not available: "
                f"{', '.join(gone[:8])}{' ...' if len(gone) > 8 else ''}"
            )
        return self.values[:, [where[n] for n in names]]


def check_feature_set(name: str) -> str:
    if name not in FEATURE_SETS:
        raise FeatureError(f"unknown feature set {name!r}; choose one of {', '.join(FEATURE_SETS)}")
    return name


def needs_probe(feature_set: str) -> bool:
    return check_feature_set(feature_set) in ("proxies", "all")


def finite(values: np.ndarray) -> np.ndarray:
    """+-inf -> +-SENTINEL, NaN kept (a missing value for the models)."""
    out = np.asarray(values, dtype=float).copy()
    out[np.isposinf(out)] = SENTINEL
    out[np.isneginf(out)] = -SENTINEL
    return out


# ---- data-free architecture features ----------------------------------------------------------
def data_free_proxies(space: str) -> list[str]:
    """Registered proxies computed from the architecture alone, defined on `space`."""
    from gm_lab.plugins import PROXIES
    from gm_lab.plugins.specs import Need

    names = []
    for name in PROXIES:
        spec = PROXIES[name]
        if spec.needs == Need.ARCHITECTURE and (spec.spaces is None or space in spec.spaces):
            names.append(name)
    return sorted(names)


def arch_features(space: str, dataset: str, archs: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Data-free features of `archs` (module docstring): names and a float matrix."""
    from gm_lab.plugins import PROXIES
    from gm_lab.plugins.specs import ProxyContext
    from gm_lab.spaces import get_space
    from gm_lab.spaces.datasets import NUM_CLASSES, normalise_dataset

    dataset = normalise_dataset(dataset)
    num_classes = NUM_CLASSES[dataset]
    columns: dict[str, list[float]] = {}
    info = get_space(space)
    for arch in archs:  # the space's own encoding of its architectures (TSS: the cell's)
        for name, value in info.encoding(arch).items():
            columns.setdefault(name, []).append(value)
    columns["params"] = [float(info.count_params(a, num_classes)) for a in archs]  # lazy torch
    for name in data_free_proxies(space):
        spec = PROXIES[name]
        columns[f"proxy_{name}"] = [
            float(
                spec.compute(
                    ProxyContext(arch=a, space=space, dataset=dataset, num_classes=num_classes)
                )
            )
            for a in archs
        ]
    names = list(columns)
    values = np.column_stack([finite(np.asarray(columns[n])) for n in names])
    return names, values.reshape(len(archs), len(names))


class ArchFeatureSource:
    """Data-free features of any architecture of a benchmark, each computed once (a
    `protocol.FeatureFn`): a learning curve draws many overlapping samples, and computing
    every architecture of a space up front costs seconds that a single small run need not pay.
    """

    def __init__(self, space: str, dataset: str, arch: Callable[[int], str]) -> None:
        self.space = space
        self.dataset = dataset
        self.arch = arch  # index -> architecture string (e.g. `Benchmark.arch`)
        self.names: list[str] = []
        self._rows: dict[int, np.ndarray] = {}

    def __call__(self, indices: Sequence[int] | np.ndarray) -> Features:
        indices = np.asarray(indices, dtype=np.int64)
        todo = [int(i) for i in dict.fromkeys(indices.tolist()) if int(i) not in self._rows]
        if todo:
            names, values = arch_features(self.space, self.dataset, [self.arch(i) for i in todo])
            if self.names and names != self.names:  # never: one space's features are fixed
                raise FeatureError("architecture features changed names between calls")
            self.names = names
            self._rows.update(zip(todo, values, strict=True))
        width = len(self.names)
        rows = [self._rows[int(i)] for i in indices]
        values = np.vstack(rows) if rows else np.empty((0, width))
        return Features(indices=indices, names=list(self.names), values=values)


# ---- probe features ---------------------------------------------------------------------------
def probe_features(arrays: ProbeArrays) -> tuple[list[str], np.ndarray]:
    """Every proxy column of `arrays` and the mean and sum over layers of every statistic."""
    columns: dict[str, np.ndarray] = {}
    for name in sorted(arrays.proxies):
        columns[f"proxy_{name}"] = np.asarray(arrays.proxies[name], dtype=float)
    mask = arrays.mask
    counts = np.maximum(mask.sum(axis=1), 1)
    for name in sorted(arrays.layer_stats):
        values = np.where(mask, finite(arrays.layer_stats[name]), 0.0)
        with np.errstate(invalid="ignore", over="ignore"):
            total = np.nansum(values, axis=1)
            columns[f"layers_sum_{name}"] = total
            columns[f"layers_mean_{name}"] = total / counts
    columns["n_layers"] = np.asarray(arrays.n_layers, dtype=float)
    names = list(columns)
    values = np.column_stack([finite(columns[n]) for n in names])
    return names, values.reshape(len(arrays), len(names))


def build_features(
    space: str,
    dataset: str,
    indices: Sequence[int] | np.ndarray,
    archs: Sequence[str],
    feature_set: str,
    arrays: ProbeArrays | None = None,
) -> Features:
    """The `feature_set` features of the architectures `indices` (arch strings `archs`, same
    order); `arrays`: their probe records, in the same order (needed unless `arch`)."""
    check_feature_set(feature_set)
    indices = np.asarray(indices, dtype=np.int64)
    names: list[str] = []
    blocks: list[np.ndarray] = []
    if feature_set in ("arch", "all"):
        n, v = arch_features(space, dataset, archs)
        names += n
        blocks.append(v)
    if feature_set in ("proxies", "all"):
        if arrays is None:
            raise FeatureError(f"feature set {feature_set!r} needs probe records (ProbeArrays)")
        if not np.array_equal(np.asarray(arrays.indices), indices):
            raise FeatureError("probe records are not those of the architectures asked")
        n, v = probe_features(arrays)
        names += n
        blocks.append(v)
    values = np.hstack(blocks) if blocks else np.empty((len(indices), 0))
    return Features(indices=indices, names=names, values=values)


__all__ = [
    "FEATURE_SETS",
    "ArchFeatureSource",
    "FeatureError",
    "Features",
    "arch_features",
    "build_features",
    "check_feature_set",
    "data_free_proxies",
    "needs_probe",
    "probe_features",
]
