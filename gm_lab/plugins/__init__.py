"""Plug-ins: proxies, per-layer statistics and search spaces, each one file behind a registry.

Register a proxy from a notebook or a module with the decorator::

    from gm_lab.plugins import Need, register_proxy

    @register_proxy("my_proxy", needs=Need.FORWARD, reference="me, 2026")
    def my_proxy(ctx):
        net = ctx.network()
        ...
        return float(value)

or from an installed package through an entry point in its pyproject.toml::

    [project.entry-points."gm_lab.proxies"]
    my_proxy = "my_package.my_proxy"   # a module whose import registers it

A registered proxy is scored by `gm-lab score`, becomes a GP terminal and a predictor
feature, and is listed by `gm-lab proxies`. This package is torch-free: the catalogue loads
without torch (see `deferred`).
"""

from __future__ import annotations

from collections.abc import Callable

from gm_lab.plugins.fingerprint import function_version
from gm_lab.plugins.registry import PluginError, Registry
from gm_lab.plugins.specs import (
    PRODUCTS,
    TENSORS,
    Need,
    ProxyContext,
    ProxySpec,
    ProxyUnavailable,
    Sign,
    StatisticSpec,
)

PROXIES: Registry[ProxySpec] = Registry(
    "proxy", builtins="gm_lab.proxies", entry_point_group="gm_lab.proxies"
)
STATISTICS: Registry[StatisticSpec] = Registry(
    "statistic", builtins="gm_lab.statistics", entry_point_group="gm_lab.statistics"
)

ProxyFunction = Callable[[ProxyContext], float]


def register_proxy(
    name: str,
    *,
    needs: Need,
    reference: str,
    sign: Sign = 1,
    version: str | None = None,
    products: str | None = None,
    spaces: str | None = None,
    replace: bool = False,
) -> Callable[[ProxyFunction], ProxyFunction]:
    """Register the decorated function `fn(ctx: ProxyContext) -> float` as proxy `name`.

    `products` (space separated) is for gm_lab's own proxies computed inside the probe's
    shared passes; leave it out for a standalone proxy. `spaces` (space separated) limits it to
    the search spaces it is defined on. `version` defaults to a digest of the
    function's code (its module's, when it has a file), so editing the code refreshes cached
    values. `replace=True` redefines a name (re-running a notebook cell).
    """
    if not isinstance(needs, Need):
        raise PluginError(f"proxy {name!r}: needs must be a gm_lab.plugins.Need, got {needs!r}")
    if sign not in (1, -1):
        raise PluginError(f"proxy {name!r}: sign must be 1 or -1, got {sign!r}")
    if not reference:
        raise PluginError(f"proxy {name!r}: say where it comes from (reference=...)")
    unknown = set((products or "").split()) - PRODUCTS
    if unknown:
        raise PluginError(
            f"proxy {name!r}: unknown product(s) {sorted(unknown)}; the shared passes make "
            f"{', '.join(sorted(PRODUCTS))}"
        )

    def register(fn: ProxyFunction) -> ProxyFunction:
        spec = ProxySpec(
            name=name,
            compute=fn,
            needs=needs,
            reference=reference,
            sign=sign,
            version=version or function_version(fn),
            products=None if products is None else frozenset(products.split()),
            doc=(fn.__doc__ or "").strip(),
            module=getattr(fn, "__module__", ""),
            spaces=None if spaces is None else frozenset(spaces.split()),
        )
        PROXIES.register(spec, replace=replace)
        return fn

    return register


def register_statistic(
    needs: str = "", *, name: str | None = None, replace: bool = False
) -> Callable[[Callable[..., float]], Callable[..., float]]:
    """Register the decorated `fn(bundle) -> float` as a per-layer statistic named after it
    (names end in `_l`); `needs` lists the tensors it reads, space separated."""
    wanted = frozenset(needs.split())
    if wanted - TENSORS:
        raise PluginError(
            f"unknown tensor(s) {sorted(wanted - TENSORS)}; choose from {sorted(TENSORS)}"
        )

    def register(fn: Callable[..., float]) -> Callable[..., float]:
        stat_name = name or fn.__name__
        if not stat_name.endswith("_l"):
            raise PluginError(f"per-layer statistic {stat_name!r} must end in '_l'")
        spec = StatisticSpec(
            stat_name,
            fn,
            wanted,
            (fn.__doc__ or "").strip(),
            getattr(fn, "__module__", ""),
            function_version(fn),
        )
        STATISTICS.register(spec, replace=replace)
        return fn

    return register


__all__ = [
    "PROXIES",
    "STATISTICS",
    "Need",
    "PluginError",
    "ProxyContext",
    "ProxySpec",
    "ProxyUnavailable",
    "Registry",
    "StatisticSpec",
    "register_proxy",
    "register_statistic",
]
