"""Probe architectures at initialisation: per-layer statistics and the classic zero-cost proxies.

`probe_architecture` runs the shared passes for one architecture and returns a `ProbeRecord`
(`probe_network` the same passes on any PyTorch classifier);
`STATISTICS` / `list_statistics()` are the per-layer statistics it records, `PROXIES` /
`list_proxies()` the network-level proxies.
"""

from gm_lab.probe.probe import (
    ProxyUnavailableWarning,
    default_inputs,
    probe_architecture,
    probe_network,
    resolve_proxies,
)
from gm_lab.probe.proxies import PROXIES, PROXY_NAMES, ProxyInputs, list_proxies
from gm_lab.probe.record import PROBE_VERSION, ProbeConfig, ProbeRecord
from gm_lab.probe.statistics import (
    STATISTICS,
    LayerBundle,
    LayerFacts,
    compute_statistics,
    list_statistics,
    statistic,
)

__all__ = [
    "PROBE_VERSION",
    "PROXIES",
    "PROXY_NAMES",
    "STATISTICS",
    "LayerBundle",
    "LayerFacts",
    "ProbeConfig",
    "ProbeRecord",
    "ProxyInputs",
    "ProxyUnavailableWarning",
    "compute_statistics",
    "default_inputs",
    "list_proxies",
    "list_statistics",
    "probe_architecture",
    "probe_network",
    "resolve_proxies",
    "statistic",
]
