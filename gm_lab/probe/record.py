"""What one probe of one architecture produces, and everything that changes its numbers.

`ProbeConfig.key()` hashes every setting that changes the numbers (space, dataset, batch size,
input kind, seed, probe version), so a cache written under one key is never read under another.
"""

from __future__ import annotations

import ast
import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

# The modules whose code computes probe numbers, relative to the gm_lab package folder. A
# required one that is missing is an error; the others are hashed when present (the proxies
# are moving from probe/proxies.py to one file each under proxies/, with products.py and the
# statistic functions' statistics.py).
PROBE_SOURCES = (
    "probe/probe.py",
    "probe/statistics.py",
    "probe/batchnorm.py",
    "probe/convolution.py",
    "probe/pooling.py",
    "probe/backward_split.py",
    "probe/patching.py",
    "probe/torch_internals.py",
    "networks/*.py",
    "inputs/minibatch.py",
    "inputs/images.py",
)
PROBE_SOURCES_IF_PRESENT = (
    "probe/products.py",
    "probe/proxies.py",
    "proxies/*.py",
    "statistics.py",
)


def probe_source_files(package: Path | None = None) -> list[Path]:
    """The files of `PROBE_SOURCES` (sorted within each glob), then those of
    `PROBE_SOURCES_IF_PRESENT` that exist, under `package` (default: this gm_lab)."""
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
    for pattern in PROBE_SOURCES_IF_PRESENT:
        files += sorted(root.glob(pattern))
    return files


def probe_version(sources: Iterable[Path | str] | None = None, length: int = 12) -> str:
    """Short SHA-256 over the code of `sources` (paths; default `probe_source_files()`).

    Why the syntax tree, not the bytes: a cache must be invalidated when the code computing its
    numbers changes, and only then. Each file is parsed (never imported: this module stays
    torch-free) and reduced to its syntax tree without docstrings or other bare string
    statements; comments and layout never reach the tree. The tree is written out by
    `_canonical`, not `ast.dump`, whose text differs between Python versions for the same code
    (3.12 added empty `type_params`, 3.13 omits empty fields). Any change of code, even one
    that cannot change a number (a renamed local), gives a new version: a needless re-probe
    is cheap next to a stale cache. The files' digests are sorted, so moving a module does not
    change it.
    """
    paths = probe_source_files() if sources is None else [Path(p) for p in sources]
    digests = sorted(_code_digest(p.read_text(encoding="utf-8"), str(p)) for p in paths)
    return hashlib.sha256("".join(digests).encode()).hexdigest()[:length]


def _code_digest(source: str, filename: str = "<source>") -> str:
    tree = ast.parse(source, filename)
    for node in ast.walk(tree):
        for name in ("body", "orelse", "finalbody"):
            body = getattr(node, name, None)
            if isinstance(body, list):
                setattr(node, name, [s for s in body if not _is_bare_string(s)])
    return hashlib.sha256(_canonical(tree).encode()).hexdigest()


def _is_bare_string(stmt: object) -> bool:
    """A docstring, or any other string statement (no effect on what the code computes)."""
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    )


def _canonical(node: object) -> str:
    """The tree as text: node types and their non-empty fields, no positions."""
    if isinstance(node, ast.AST):
        fields = (
            f"{name}={_canonical(value)}"
            for name in node._fields
            if (value := getattr(node, name, None)) is not None and value != []
        )
        return f"{type(node).__name__}({', '.join(fields)})"
    if isinstance(node, list):
        return f"[{', '.join(_canonical(item) for item in node)}]"
    return repr(node)


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
    version: str = field(default_factory=current_probe_version)

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
