"""Plug-ins registered in this process, shipped to worker processes.

A spawned probe worker (or a Dask worker) imports gm_lab afresh: it knows gm_lab's own plug-ins
and those of installed packages (entry points), but not a proxy, statistic or search space a
user registered in a notebook. `pack()` serialises those with cloudpickle (functions defined in
`__main__` travel by value, importable ones by reference); `unpack()` registers, in the worker,
each one it lacks. Only the parent's own plug-ins travel: the payload is small.
"""

from __future__ import annotations

from typing import Any

import cloudpickle

from gm_lab.plugins import PROXIES, STATISTICS, Registry


def _registries() -> dict[str, Registry[Any]]:
    from gm_lab.spaces import SPACES  # torch-free

    return {"proxies": PROXIES, "statistics": STATISTICS, "spaces": SPACES}


def _foreign(spec: Any) -> bool:
    """Registered from outside gm_lab and its installed plug-ins' modules."""
    module = getattr(spec, "module", "") or type(spec).__module__
    return module == "__main__" or not module.startswith("gm_lab.")


def pack() -> bytes:
    """The plug-ins this process registered outside gm_lab, as bytes for `unpack`."""
    return cloudpickle.dumps(
        {kind: [s for s in reg.specs() if _foreign(s)] for kind, reg in _registries().items()}
    )


def unpack(payload: bytes) -> None:
    """Register the plug-ins of `pack()` that this process does not have yet."""
    specs = cloudpickle.loads(payload)
    for kind, registry in _registries().items():
        for spec in specs.get(kind, ()):
            if spec.name not in registry:
                registry.register(spec)
