"""What a proxy and a per-layer statistic declare about themselves (torch-free metadata).

A proxy declares what it needs as a `Need` (the most expensive kind of computation it runs),
which orders proxies by cost, tells the probe which passes to run and tells the user what a
proxy costs before anything runs. `ProxyContext` is what its function receives.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np


class Need(enum.Enum):
    """The most expensive computation a proxy runs, cheapest first."""

    ARCHITECTURE = "architecture"  # the architecture string alone: no network, no data
    NETWORK = "network"  # the built network at initialisation, no data
    FORWARD = "forward"  # forward pass(es) on data, no gradients
    BACKWARD = "backward"  # forward and backward of a loss w.r.t. the weights
    INPUT_GRADIENT = "input-gradient"  # gradients w.r.t. the input images
    SECOND_ORDER = "second-order"  # Hessian-vector products

    @property
    def rank(self) -> int:
        return list(Need).index(self)

    @property
    def data_free(self) -> bool:
        return self in (Need.ARCHITECTURE, Need.NETWORK)

    @property
    def cost_class(self) -> str:
        return _COST_CLASS[self]


_COST_CLASS = {
    Need.ARCHITECTURE: "data-free, no network",
    Need.NETWORK: "data-free, network built",
    Need.FORWARD: "forward",
    Need.BACKWARD: "forward + backward",
    Need.INPUT_GRADIENT: "forward + input gradients",
    Need.SECOND_ORDER: "second order",
}

Sign = Literal[1, -1]

#: What the probe's shared passes produce for proxies to read (gm_lab.probe.probe).
PRODUCTS: frozenset[str] = frozenset(
    {"relu_kernel", "jacobian", "grasp", "zico_halves", "zen_distance", "bn_running_var"}
)


@dataclass
class ProxyContext:
    """What a proxy's function receives.

    Every proxy can read the architecture (`arch`, `space`, `dataset`, `num_classes`, `seed`)
    and, unless it is data-free, the probe's real minibatch (`images`, `labels`: torch tensors,
    images in the probe's memory format). `network()` builds a fresh network at the seeded
    initialisation (train mode) that the proxy may change freely (re-initialise, convert,
    prune). Proxies computed inside the probe's shared passes (`ProxySpec.products` set) also
    get `net` (the probed network), `layer_stats` (gm_lab.statistics, one value per layer) and
    the pass `products` they declared.
    """

    arch: str
    space: str
    dataset: str
    num_classes: int
    seed: int = 0
    images: Any = None
    labels: Any = None
    build: Callable[[], Any] | None = None
    net: Any = None
    layer_stats: Mapping[str, np.ndarray] = field(default_factory=dict)
    products: Mapping[str, Any] = field(default_factory=dict)
    missing: Mapping[str, str] = field(default_factory=dict)  # product -> why the net lacks it

    def network(self) -> Any:
        """A new network of this architecture at the seeded initialisation, in train mode."""
        if self.build is None:
            raise ValueError("this proxy context has no network (a data-free proxy's context)")
        return self.build()

    def layer_sum(self, stat: str) -> float:
        """Σ over layers of a per-layer statistic (how the foresight measures reduce layers)."""
        return float(np.sum(self.layer_stats[stat]))

    def product(self, name: str) -> Any:
        """A product of the shared passes. A missing one (the network lacks the structure it
        is computed from) raises `ProxyUnavailable`, which the probe turns into NaN with a
        warning saying why."""
        value = self.products.get(name)
        if value is None:
            why = self.missing.get(name, f"the probe's {name!r} product is missing")
            raise ProxyUnavailable(why)
        return value


class ProxyUnavailable(ValueError):
    """A proxy cannot be computed for this network (it lacks what the proxy reads); the probe
    records NaN and warns with this message."""


@dataclass(frozen=True)
class ProxySpec:
    """A registered proxy.

    - `sign`: +1 if a higher value should mean a more accurate network (the paper's convention),
      -1 if lower; rank correlations are reported as computed, the sign only documents intent.
    - `products`: the products of the probe's shared passes the proxy reads. None for a
      standalone proxy, which computes everything it needs from the context (its own passes
      on `ctx.network()`, or the architecture alone): every user plug-in is standalone, and
      its values are cached apart, keyed by `name` and `version`, so adding or changing one
      never invalidates any other cached value.
    - `version`: changes whenever the code computing the proxy changes (by default derived
      from the code of its module, see gm_lab.plugins.fingerprint).
    - `spaces`: the search spaces the proxy is defined on (None: any); elsewhere it is NaN and
      searches leave it out of their terminals.
    """

    name: str
    compute: Callable[[ProxyContext], float]
    needs: Need
    reference: str
    sign: Sign = 1
    version: str = "1"
    products: frozenset[str] | None = None
    doc: str = ""
    module: str = ""
    spaces: frozenset[str] | None = None  # the search spaces it is defined on (None: any)

    @property
    def standalone(self) -> bool:
        return self.products is None

    def applies_to(self, space: str) -> bool:
        return self.spaces is None or space in self.spaces

    @property
    def summary(self) -> str:
        """The first sentence of the docstring."""
        return " ".join(self.doc.split("\n\n")[0].split())

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "needs": self.needs.value,
            "cost_class": self.needs.cost_class,
            "sign": self.sign,
            "reference": self.reference,
            "version": self.version,
            "standalone": self.standalone,
            "spaces": sorted(self.spaces) if self.spaces is not None else None,
            "module": self.module,
            "summary": self.summary,
        }


TENSORS: frozenset[str] = frozenset({"W", "G", "A", "dA", "A_noise"})


@dataclass(frozen=True)
class StatisticSpec:
    """A registered per-layer statistic: a function of one layer's `LayerBundle`.

    `needs`: the tensors it reads (W weights, G their gradient, A the output, dA its gradient,
    A_noise the output on Gaussian noise); without one of them its value is NaN.
    """

    name: str
    compute: Callable[[Any], float]
    needs: frozenset[str]
    doc: str = ""
    module: str = ""
    version: str = "1"  # a digest of its code (gm_lab.plugins.fingerprint)
