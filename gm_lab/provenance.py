"""What results record about where they come from: their inputs, in words a reader sees (never a
silent stand-in), and the run itself (`run_provenance`: versions, commit, data, seeds, command).

A minibatch's provenance (`gm_lab.inputs.Minibatch.provenance()`, stored in every probe cache
and result) names its `source`: "cifar10-test" for a dataset's own images,
"<donor>-<split>-as-<dataset>" when another dataset's images stood in, "gaussian-noise" when
nothing did. This module turns that into the short phrase the CLI, the JSON results and the
widgets show. No torch: the evolution engine and the widgets use it without importing the probe.

`run_provenance` builds the `"provenance"` block of every `--json` result of the CLI (and of a
saved search result): gm_lab's version and git commit, the probe version, the versions of
Python, torch, numpy, scipy and deap (from package metadata, nothing imported), a fingerprint of
the benchmark table used, space, datasets, seeds and the exact command. `gm-lab rerun` repeats
that command and compares the numbers.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gm_lab import __version__
from gm_lab.benchmark.spaces import DATASETS, DISPLAY_NAMES

if TYPE_CHECKING:
    from gm_lab.benchmark import Benchmark

GAUSSIAN_SOURCE = "gaussian-noise"


def standin_donor(provenance: dict[str, Any] | None) -> str | None:
    """The dataset whose images stood in ("cifar10"), "gaussian-noise", or None if real."""
    if not provenance or not provenance.get("is_standin"):
        return None
    source = str(provenance.get("source", ""))
    donor = next((d for d in DATASETS if source.startswith(f"{d}-")), None)
    return donor or source or None


def standin_label(provenance: dict[str, Any] | None) -> str | None:
    """ "stand-in images: CIFAR-10" (or "stand-in images: Gaussian noise"), None for real ones."""
    donor = standin_donor(provenance)
    if donor is None:
        return None
    name = "Gaussian noise" if donor == GAUSSIAN_SOURCE else DISPLAY_NAMES.get(donor, donor)
    return f"stand-in images: {name}"


# ---- where a result comes from: the provenance block of every `--json` result ------------------
PROVENANCE_FORMAT = 1
PACKAGES = ("torch", "numpy", "scipy", "deap")  # versions read from metadata: no import


def run_provenance(
    command: Sequence[str] | None,
    space: str,
    datasets: Sequence[str],
    seeds: dict[str, int | None],
    bench: Benchmark | None = None,
    probe: bool = True,
    final_test: str | None = None,
) -> dict[str, Any]:
    """What a result needs to be repeated and trusted: the `"provenance"` key of every `--json`
    result (and of a saved search result); `gm-lab rerun` reads it.

    `command`: the argv as run, `["gm-lab", "score", ...]` (None from the Python API: such a
    result cannot be rerun). `bench`: the benchmark the numbers came from (loaded if None), whose
    table and test-accuracy columns are fingerprinted. `probe`: record the probe version (False
    where nothing was probed). `final_test`: what the run did with the final test set
    ("excluded", "included", "scored"; see gm_lab.sampling).
    """
    return {
        "format": PROVENANCE_FORMAT,
        "command": None if command is None else [str(a) for a in command],
        "gm_lab": {"version": __version__, **source_checkout()},
        "probe_version": probe_version() if probe else None,
        "versions": package_versions(),
        "space": space,
        "datasets": list(datasets),
        "seeds": dict(seeds),
        "final_test": final_test,
        "data": data_fingerprint(space, datasets, bench),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def source_checkout() -> dict[str, Any]:
    """{"commit", "dirty"} of the git checkout gm_lab is imported from; both None when gm_lab
    is installed (a wheel) or git cannot tell. `dirty`: tracked files differ from the commit."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return {"commit": None, "dirty": None}
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}  # never take the index lock of a checkout

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", "-C", str(root), *args], capture_output=True, text=True, env=env, timeout=10
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def package_versions() -> dict[str, str | None]:
    """Python and the numeric packages' versions (None: not installed), without importing them."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def probe_version() -> str:
    from gm_lab.probe.record import PROBE_VERSION

    return str(PROBE_VERSION)


def truth_fingerprint(truth: np.ndarray) -> str:
    """SHA-256 of test accuracies (float64): changes if the benchmark table's numbers changed."""
    return hashlib.sha256(np.ascontiguousarray(truth, dtype="<f8").tobytes()).hexdigest()


def data_fingerprint(
    space: str, datasets: Sequence[str], bench: Benchmark | None = None
) -> dict[str, Any]:
    """The benchmark table a result was computed on: its path, which place of the lookup order
    holds it, the SHA-256 of the file, and `truth_fingerprint` of each dataset's test accuracy
    over the whole space (what decides the numbers)."""
    from gm_lab.benchmark import Benchmark
    from gm_lab.paths import origin_of

    bench = bench if bench is not None else Benchmark.load(space, progress=False)
    table = Path(bench.source)
    return {
        "table": str(table),
        "origin": origin_of(table),
        "sha256": _file_sha256(table) if table.is_file() else None,
        "truth_sha256": {d: truth_fingerprint(bench.accuracy(d)) for d in datasets},
    }


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
