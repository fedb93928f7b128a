"""What one probe of one architecture produces, and everything that changes its numbers.

`ProbeConfig.key()` hashes every setting that changes the numbers (space, dataset, batch size,
input kind, seed, probe version), so a cache written under one key is never read under another.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from gm_lab.plugins.fingerprint import files_digest

# The modules whose code computes the records' numbers, relative to the gm_lab package folder
# (a missing one is an error), plus the files of the shared-pass proxies (`_shared_proxy_files`).
PROBE_SOURCES = (
    "probe/probe.py",
    "probe/products.py",
    "probe/statistics.py",
    "probe/batchnorm.py",
    "probe/convolution.py",
    "probe/pooling.py",
    "probe/backward_split.py",
    "probe/patching.py",
    "probe/torch_internals.py",
    "statistics.py",
    "proxies/_common.py",
    "networks/*.py",
    "spaces/*.py",
    "inputs/minibatch.py",
    "inputs/images.py",
)


def probe_source_files(package: Path | None = None) -> list[Path]:
    """The files of `PROBE_SOURCES` (sorted within each glob) and of gm_lab's shared-pass
    proxies, under `package` (default: this gm_lab).

    Standalone proxies are not among them: their values are cached apart under versions of
    their own (gm_lab.probe.columns), so adding or editing one leaves every record valid.
    """
    root = Path(__file__).resolve().parents[1] if package is None else Path(package)
    files: list[Path] = []
    for pattern in PROBE_SOURCES:
        found = sorted(root.glob(pattern))
        if not found:
            raise FileNotFoundError(
                f"PROBE_VERSION is derived from gm_lab's source, but {root / pattern} is "
                "missing: reinstall gm_lab (its wheel and sdist ship the .py files)"
            )
        files += found
    return files + [root / f for f in _shared_proxy_files() if (root / f).is_file()]


def _shared_proxy_files() -> list[str]:
    """gm_lab's own proxies computed in the shared passes, as paths inside the package (read
    from the torch-free registry)."""
    from gm_lab.plugins import PROXIES

    modules = {s.module for s in PROXIES.specs() if not s.standalone}
    return sorted(
        m.removeprefix("gm_lab.").replace(".", "/") + ".py"
        for m in modules
        if m.startswith("gm_lab.")
    )


def probe_version(sources: Iterable[Path | str] | None = None, length: int = 12) -> str:
    """Short digest (gm_lab.plugins.fingerprint) over the code of `sources` (paths; default
    `probe_source_files()`): what computes the records' numbers."""
    return files_digest(probe_source_files() if sources is None else sources, length)


# PROBE_VERSION, derived on first use (parsing the sources takes about half a second):
# `probe_version()` of the code that computes probe numbers. A change of a statistic,
# a proxy or the probe procedure gives a new version, and old cache entries become invalid.
# Float rounding does not count as a change: torch's thread count, or the public fallbacks of
# gm_lab.probe.torch_internals (GraSP within ~1e-5 relative, every other number to float
# rounding), leave it as it is; so does a change of comments, docstrings or layout. An edit of
# a listed module that gives the same numbers (the lean BatchNorm, Conv2d and AvgPool2d layers,
# the split pass 2: GraSP within ~1e-5, the rest bit for bit) changes it all the same.
if TYPE_CHECKING:
    PROBE_VERSION: str


@cache
def current_probe_version() -> str:
    """`probe_version()` of this gm_lab, computed once per process."""
    return probe_version()


def records_version() -> str:
    """The version of what a record holds now: `current_probe_version()`, plus a digest of the
    per-layer statistics registered from outside gm_lab (a notebook's, a plug-in package's),
    which every record computes too: registering or editing one gives records of their own."""
    from gm_lab.plugins import STATISTICS

    foreign = sorted(
        f"{s.name}={s.version}" for s in STATISTICS.specs() if not s.module.startswith("gm_lab.")
    )
    if not foreign:
        return current_probe_version()
    digest = hashlib.sha256("\n".join(foreign).encode()).hexdigest()[:8]
    return f"{current_probe_version()}+{digest}"


def __getattr__(name: str) -> Any:
    if name == "PROBE_VERSION":
        return current_probe_version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


InputKind = Literal["real", "gaussian"]


@dataclass(frozen=True)
class ProbeConfig:
    """Settings of a probe run; all of them are part of the cache key."""

    space: str = "tss"
    dataset: str = "cifar10"
    batch_size: int = 64
    input_kind: InputKind = "real"  # "real": dataset images (recorded stand-in if missing)
    seed: int = 0  # network initialisation and minibatch choice
    version: str = field(default_factory=records_version)

    def key(self) -> str:
        """Short stable hash of the settings, used as the cache folder name."""
        blob = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        return {**asdict(self), "key": self.key()}


@dataclass
class ProbeRecord:
    """Statistics of one architecture at its seeded initialisation.

    `layer_stats[name]` holds one value per conv/linear layer, in forward order (`layer_names`);
    `proxies[name]` holds the network-level classic proxies.
    """

    index: int
    arch: str
    layer_names: list[str]
    layer_stats: dict[str, np.ndarray]
    proxies: dict[str, float]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def n_layers(self) -> int:
        return len(self.layer_names)
