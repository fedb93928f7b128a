"""Search spaces and datasets as the benchmark layer names them (kept for existing imports).

The spaces themselves live in `gm_lab.spaces` (the `SearchSpace` interface, its registry and
the NATS-Bench spaces); `SpaceInfo` is `SearchSpace` and `space_info(name)` is `get_space`.
"""

from __future__ import annotations

from gm_lab.spaces import (
    COLUMN_PREFIX,
    DATASETS,
    DISPLAY_NAMES,
    INPUT_SIZE,
    NUM_CLASSES,
    SPACES,
    SearchSpace,
    get_space,
    normalise_dataset,
)

SpaceInfo = SearchSpace


def space_info(space: str | SearchSpace) -> SearchSpace:
    """The registered `SearchSpace` of `space` (any case), with a clear error otherwise."""
    return get_space(space)


__all__ = [
    "COLUMN_PREFIX",
    "DATASETS",
    "DISPLAY_NAMES",
    "INPUT_SIZE",
    "NUM_CLASSES",
    "SPACES",
    "SpaceInfo",
    "normalise_dataset",
    "space_info",
]
