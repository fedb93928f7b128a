"""Swap some modules' forward for the duration of a block: the probe's one way to compute a
layer differently (lean double backwards, BatchNorm bypassed) without touching the network."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator

from torch import Tensor, nn


@contextlib.contextmanager
def forwards_replaced(
    modules: Iterable[nn.Module], forward_of: Callable[[nn.Module], Callable[[Tensor], Tensor]]
) -> Iterator[None]:
    """Within the block each module's forward is `forward_of(module)`; the class's own after.

    The replacement is an instance attribute, so `module(x)` still runs the module's hooks.
    """
    patched = list(modules)
    for module in patched:
        module.forward = forward_of(module)  # type: ignore[method-assign]
    try:
        yield
    finally:
        for module in patched:
            del module.forward
