"""Build a benchmark network reproducibly: the same (space, arch, classes, seed) gives the same
weights, without touching the caller's global RNG (so building never perturbs an experiment)."""

from __future__ import annotations

import torch
from torch import nn

from gm_lab.benchmark.spaces import space_info
from gm_lab.networks.sss import DynamicShapeTinyNet
from gm_lab.networks.tss import TinyNetwork


def check_space(space: str) -> None:
    """Raise ValueError unless `space` is a NATS-Bench search space we know (lower case)."""
    if space_info(space).name != space:
        raise ValueError(f"unknown search space {space!r}; use lower case ('tss' or 'sss')")


def check_num_classes(num_classes: int) -> None:
    """Raise ValueError unless `num_classes` can size a classifier."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")


def build_network(space: str, arch: str, num_classes: int, seed: int = 0) -> nn.Module:
    """The network of `arch` in `space` ("tss" or "sss"), initialised from `seed`."""
    check_space(space)
    check_num_classes(num_classes)
    cls = TinyNetwork if space == "tss" else DynamicShapeTinyNet
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return cls(arch, num_classes)


def count_parameters(module: nn.Module) -> int:
    """Number of learnable parameters (BN running statistics are buffers, not counted)."""
    return sum(p.numel() for p in module.parameters())
