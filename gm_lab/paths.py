"""Where gm_lab reads data and writes caches.

Data is looked for, part by part (a benchmark table, one dataset's images), in this order:

1. `$GM_LAB_DATA`, when set: a folder laid out like `../shared/data` -- `nats_bench/<space>.csv`,
   official NATS-Bench folders such as `nats_bench/NATS-tss-v1_0-3ffb9-simple`, and
   `images/cifar-10-batches-py`, `images/cifar-100-python`, `images/ImageNet16`;
2. the per-user data folder (`platformdirs.user_data_dir("gm_lab")`, same layout), where
   `gm-lab data download` puts what it fetches;
3. the embedded default shipped inside the package (`gm_lab/embedded/`): the NATS-Bench TSS table
   for all 15,625 architectures and a small pack of real CIFAR-10 test images, so that gm_lab
   works with nothing but `pip install`.

The first place that holds a part wins, so a user's own full download always takes precedence over
the embedded default. `gm-lab data info` shows which source each part comes from.
`GM_LAB_CACHE` names a writable folder for imported tables and probe caches (default: the per-user
cache folder).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import platformdirs

DATA_ENV = "GM_LAB_DATA"
CACHE_ENV = "GM_LAB_CACHE"


def user_data_root() -> Path:
    """The per-user data folder (default target of `gm-lab data download`)."""
    return Path(platformdirs.user_data_dir("gm_lab"))


def data_roots() -> list[Path]:
    """The user-side data folders in lookup order: `$GM_LAB_DATA` (if set), the per-user folder."""
    roots: list[Path] = []
    env = os.environ.get(DATA_ENV)
    if env:
        roots.append(Path(env).expanduser().resolve())
    user = user_data_root()
    if user not in roots:
        roots.append(user)
    return roots


def data_root() -> Path:
    """The first data folder looked in: `$GM_LAB_DATA`, else the per-user data folder."""
    return data_roots()[0]


def embedded_root() -> Path:
    """The embedded default data shipped inside the package (read-only)."""
    return Path(str(resources.files("gm_lab") / "embedded"))


def origin_of(path: Path) -> str:
    """Which place of the lookup order holds `path`, in words (for `gm-lab data info`, results)."""
    path = Path(os.path.abspath(path))  # a link into another folder still counts as here
    places = [(p, "$GM_LAB_DATA") for p in data_roots()[:1] if os.environ.get(DATA_ENV)]
    places += [
        (user_data_root(), "per-user data folder"),
        (embedded_root(), "embedded default"),
        (cache_root(), "cache"),
    ]
    for root, name in places:
        if path.is_relative_to(root) or path.is_relative_to(root.resolve()):
            return name
    return "elsewhere"


def cache_root() -> Path:
    """The writable cache root: `$GM_LAB_CACHE`, else the per-user cache folder."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return Path(platformdirs.user_cache_dir("gm_lab"))
