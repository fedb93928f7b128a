"""Which probe passes a set of terminals needs (torch-free): what lazy probing runs, and what an
expression costs.

A terminal is a per-layer statistic or a proxy. The probe's shared passes are, in order: build
the network, the real forward, the cross-entropy backward, the input-Jacobian backward, GraSP's
second-order pass, ZiCo's half-batch split, the Gaussian batch's forward and Zen's second
forward; then the proxies' own small passes (synflow, meco) and the standalone proxies, each on
its own network. The names here are the keys of `ProbeRecord.timings`, so the cost of a pass is
read off the probe's own clock (gm_lab.probe.costs) and the cost of an expression is the sum
over the distinct passes its terminals need.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gm_lab.plugins.specs import Need, ProxySpec

#: Passes run whenever a network is probed at all (building it, the layer-finding forward).
BASE_PASSES = ("build", "prepare", "forward")
#: The shared products and the pass that computes each (one key of `ProbeRecord.timings`).
PRODUCT_PASSES = {
    "relu_kernel": "forward",
    "jacobian": "jacobian",
    "grasp": "grasp",
    "zico_halves": "zico",
    "zen_distance": "zen",
    "bn_running_var": "zen",
}
# The per-layer tensors a shared proxy of each need may read through its statistics.
NEED_TENSORS: dict[Need, frozenset[str]] = {
    Need.ARCHITECTURE: frozenset(),
    Need.NETWORK: frozenset({"W"}),
    Need.FORWARD: frozenset({"W", "A"}),
    Need.BACKWARD: frozenset({"W", "A", "G", "dA"}),
    Need.INPUT_GRADIENT: frozenset({"W", "A"}),  # its own backward, to the input
    Need.SECOND_ORDER: frozenset({"W", "A", "G", "dA"}),
}
_AFTER_BACKWARD = frozenset({"grasp", "zico_halves"})  # read the weights' backward


@dataclass(frozen=True)
class PassPlan:
    """The shared passes a lean probe runs for some shared proxies and statistics."""

    backward: bool  # the cross-entropy backward (G, dA; GraSP and ZiCo read it)
    noise: bool  # the Gaussian batch's forward (A_noise, Zen)
    products: frozenset[str]

    @property
    def passes(self) -> frozenset[str]:
        """The `ProbeRecord.timings` keys of these shared passes."""
        names = set(BASE_PASSES) | {PRODUCT_PASSES[p] for p in self.products}
        if self.backward:
            names.add("backward")
        if self.noise:
            names.add("noise")
        return frozenset(names)


def products_of(specs: Iterable[ProxySpec]) -> frozenset[str]:
    """The shared-pass products these proxies read (standalone ones read none)."""
    return frozenset().union(*(s.products for s in specs if not s.standalone))


def plan_passes(proxies: Iterable[str], statistics: Iterable[str]) -> PassPlan:
    """The passes the shared proxies and statistics named need, no more."""
    from gm_lab.plugins import PROXIES, STATISTICS

    statistics = list(statistics)
    unknown = [n for n in statistics if n not in STATISTICS]
    if unknown:
        raise ValueError(f"unknown statistics {unknown}")
    specs = [PROXIES[n] for n in proxies]
    products = products_of(specs)
    tensors = frozenset().union(*(STATISTICS[n].needs for n in statistics))
    tensors |= frozenset().union(*(NEED_TENSORS[s.needs] for s in specs if not s.standalone))
    backward = bool(tensors & {"G", "dA"}) or bool(products & _AFTER_BACKWARD)
    noise = "A_noise" in tensors or bool(products & {"zen_distance", "bn_running_var"})
    return PassPlan(backward, noise, products)


def terminal_passes(names: Iterable[str]) -> frozenset[str]:
    """Every pass (timings key) that computing the terminals `names` runs: the shared ones
    they need, `statistic:<name>` for each statistic's own evaluation and `proxy_<name>` for
    each proxy's. Data-free standalone proxies run nothing shared. Unknown names raise
    ValueError."""
    from gm_lab.plugins import PROXIES, STATISTICS

    names = list(dict.fromkeys(names))
    unknown = [n for n in names if n not in PROXIES and n not in STATISTICS]
    if unknown:
        raise ValueError(f"unknown terminals {unknown}")
    shared = [n for n in names if n in PROXIES and not PROXIES[n].standalone]
    stats = [n for n in names if n in STATISTICS]
    passes = {f"proxy_{n}" for n in names if n in PROXIES}
    if shared or stats:
        passes |= plan_passes(shared, stats).passes
    passes |= {f"statistic:{n}" for n in stats}
    return frozenset(passes)
