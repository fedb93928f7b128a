"""Build a benchmark network reproducibly: the same (space, arch, classes, seed) gives the same
weights, without touching the caller's global RNG (so building never perturbs an experiment).

Which network an arch string means is the space's business (`SearchSpace.make_network`); this
module only finds the space by name.
"""

from __future__ import annotations

from torch import nn

from gm_lab.spaces import check_num_classes, get_space

__all__ = ["build_network", "check_num_classes", "check_space", "count_parameters"]


def check_space(space: str) -> None:
    """Raise ValueError unless `space` names a registered search space (lower case)."""
    if get_space(space).name != space:
        raise ValueError(f"unknown search space {space!r}; use lower case ({space.lower()!r})")


def build_network(space: str, arch: str, num_classes: int, seed: int = 0) -> nn.Module:
    """The network of `arch` in the registered search space `space`, initialised from `seed`."""
    check_space(space)
    return get_space(space).build_network(arch, num_classes, seed)


def count_parameters(module: nn.Module) -> int:
    """Number of learnable parameters (BN running statistics are buffers, not counted)."""
    return sum(p.numel() for p in module.parameters())
