"""Probe architectures at initialisation: per-layer statistics and proxies.

`probe_architecture` runs the shared passes for one architecture and returns a `ProbeRecord`
(`probe_network` the same passes on any PyTorch classifier); the statistics and proxies it
computes are the plug-ins registered in gm_lab.plugins (`STATISTICS`, `PROXIES`).

The names below are imported on first use (PEP 562), so that `gm_lab.probe.cache` and
`gm_lab.probe.record` -- what the GP engine reads -- load without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "PROBE_VERSION": "gm_lab.probe.record",
    "ProbeConfig": "gm_lab.probe.record",
    "ProbeRecord": "gm_lab.probe.record",
    "ProxyUnavailableWarning": "gm_lab.probe.probe",
    "default_inputs": "gm_lab.probe.probe",
    "probe_architecture": "gm_lab.probe.probe",
    "probe_network": "gm_lab.probe.probe",
    "resolve_proxies": "gm_lab.probe.probe",
    "LayerBundle": "gm_lab.probe.statistics",
    "LayerFacts": "gm_lab.probe.statistics",
    "compute_statistics": "gm_lab.probe.statistics",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
