"""Where gm_lab reads data and writes caches.

`GM_LAB_DATA` names the data root (read-only is fine): it is laid out like
`../shared/data` -- `nats_bench/<space>.csv`, official NATS-Bench folders such as
`nats_bench/NATS-tss-v1_0-3ffb9-simple` (or under `nats_bench/official_sample/`),
and `images/cifar-10-batches-py`, `images/cifar-100-python`, `images/ImageNet16`.
`GM_LAB_CACHE` names a writable folder for imported tables and probe caches.
Both default to per-user folders.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

DATA_ENV = "GM_LAB_DATA"
CACHE_ENV = "GM_LAB_CACHE"


def data_root() -> Path:
    """The data root: `$GM_LAB_DATA`, else the per-user data folder."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return Path(platformdirs.user_data_dir("gm_lab"))


def cache_root() -> Path:
    """The writable cache root: `$GM_LAB_CACHE`, else the per-user cache folder."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser().resolve()
    return Path(platformdirs.user_cache_dir("gm_lab"))
