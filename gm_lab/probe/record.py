"""What one probe of one architecture produces, and everything that changes its numbers.

`ProbeConfig.key()` hashes every setting that changes the numbers (space, dataset, batch size,
input kind, seed, probe version), so a cache written under one key is never read under another.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

# Bump when a statistic, a proxy or the probe procedure changes: old cache entries become invalid.
# Float rounding alone does not bump it: torch's thread count, or the lean BatchNorm, Conv2d and
# AvgPool2d layers and the split pass 2 (GraSP within ~1e-5 relative, every other number bit
# for bit), leave it as it is.
PROBE_VERSION = "1"

InputKind = Literal["real", "gaussian"]


@dataclass(frozen=True)
class ProbeConfig:
    """Settings of a probe run; all of them are part of the cache key."""

    space: str = "tss"
    dataset: str = "cifar10"
    batch_size: int = 64
    input_kind: InputKind = "real"  # "real": dataset images (recorded stand-in if missing)
    seed: int = 0  # network initialisation and minibatch choice
    version: str = PROBE_VERSION

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
