"""Small pieces several proxy files share (torch-free at import)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gm_lab.plugins.deferred import nn

if TYPE_CHECKING:
    from torch import nn as torch_nn

JACOV_K = 1e-5  # jacob_cov and EPE-NAS regulariser (reference value)


def weighted_layers(net: torch_nn.Module) -> list[torch_nn.Module]:
    """Conv2d and Linear modules in module order: the layers every foresight measure scores."""
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
