"""The `SearchSpace` interface and the registry of search spaces (torch-free).

Everything gm_lab needs to know about a search space is one object: its name, how its
architecture strings look, how to build and count a network, which datasets and which table
hold its ground truth, and whether it keeps a final test set apart. No code outside a space's
own module asks which space it is: it asks the space (`get_space(name)`).

NATS-Bench TSS and SSS register themselves (`gm_lab.spaces.tss`, `gm_lab.spaces.sss`); a user
registers one from a notebook with `register_space(MySpace())` (or `@register_space` on the
class), an installed package through the entry-point group ``gm_lab.spaces``. See
docs/plugins.md for a complete example.
"""

from __future__ import annotations

import abc
import os
import re
from collections.abc import Sequence
from typing import Any, TypeVar

from gm_lab.errors import GmLabError
from gm_lab.plugins.deferred import torch
from gm_lab.plugins.registry import PluginError, Registry
from gm_lab.spaces.datasets import COLUMN_PREFIX, DATASETS, normalise_dataset


class ArchStringError(GmLabError, ValueError):
    """An architecture string that does not describe a network of the search space."""

    def __init__(self, arch: object, problem: str) -> None:
        self.arch = arch
        self.problem = problem
        super().__init__(f"invalid arch string {arch!r}: {problem}")


def check_num_classes(num_classes: int) -> None:
    """Raise ValueError unless `num_classes` can size a classifier."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")


class SearchSpace(abc.ABC):
    """One search space. Subclass it, set the class attributes, write `make_network`.

    Identity: `name` (registry key, a lower-case Python identifier), `display_name`.
    Architectures: `n_archs` (rows of the benchmark table), `arch_pattern` (a regular
    expression every architecture string matches in full; `check_arch` may check more),
    `archs()` (every architecture string, optional).
    Networks: `make_network(arch, num_classes)` (an `nn.Module`, randomly initialised; gm_lab
    seeds it through `build_network`), `count_params` (builds and counts unless overridden).
    Ground truth: `datasets` (those with accuracies in the table), the compact table (schema:
    `gm_lab.benchmark.table`) at `table_path`, else `<data folder>/<table_folder>/<name>.csv`.
    Sampling: `final_test_size` architectures kept out of every sample (0: none).
    NATS-Bench only: `official_name`, `hp` (the official download), `download`,
    `download_adds` (`gm-lab data download` part and what it adds).

    Any attribute can also be given per instance: `MySpace(table_path="/data/my.csv")`.
    """

    name: str = ""
    display_name: str = ""
    n_archs: int = 0
    arch_pattern: str = ""
    datasets: tuple[str, ...] = DATASETS
    table_folder: str = "tables"
    table_path: str | os.PathLike[str] | None = None
    final_test_size: int = 0
    official_name: str | None = None
    hp: str | None = None
    download: str | None = None
    download_adds: str = ""

    def __init__(self, **attributes: Any) -> None:
        for key, value in attributes.items():
            known = getattr(type(self), key, None)
            if key.startswith("_") or (key not in _ATTRIBUTES and not hasattr(type(self), key)):
                raise TypeError(f"{type(self).__name__} has no attribute {key!r} to set")
            if callable(known) or isinstance(known, property):
                raise TypeError(f"{type(self).__name__}.{key} is a method, not a setting")
            setattr(self, key, value)
        self.datasets = tuple(normalise_dataset(d) for d in self.datasets)
        if not self.display_name:
            self.display_name = self.name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {self.n_archs:,} architectures>"

    # ---- architectures --------------------------------------------------------------------
    def check_arch(self, arch: object) -> str:
        """`arch` if it is an architecture string of this space, else ArchStringError saying
        what is wrong (the default checks `arch_pattern`; override to name the problem)."""
        if not isinstance(arch, str):
            raise ArchStringError(arch, f"expected a str, got {type(arch).__name__}")
        if not re.fullmatch(self.arch_pattern, arch):
            raise ArchStringError(arch, f"not a {self.name} architecture ({self.arch_pattern})")
        return arch

    def is_arch(self, arch: object) -> bool:
        try:
            self.check_arch(arch)
        except ArchStringError:
            return False
        return True

    def archs(self) -> Sequence[str]:
        """Every architecture string of the space (not necessarily in table order)."""
        raise NotImplementedError(f"search space {self.name!r} does not enumerate its archs")

    # ---- networks -------------------------------------------------------------------------
    @abc.abstractmethod
    def make_network(self, arch: str, num_classes: int) -> Any:
        """A freshly initialised `torch.nn.Module` for `arch` (logits of `num_classes`) taking
        images of shape (N, 3, H, W). Called by `build_network`, which seeds torch first."""

    def build_network(self, arch: str, num_classes: int, seed: int = 0) -> Any:
        """The network of `arch`, initialised from `seed`, without touching the caller's
        global torch generator (so building never perturbs an experiment)."""
        check_num_classes(num_classes)
        self.check_arch(arch)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return self.make_network(arch, num_classes)

    def count_params(self, arch: str, num_classes: int) -> int:
        """Learnable parameters of `build_network(arch, num_classes)` (override with a closed
        form when building is slow)."""
        net = self.build_network(arch, num_classes)
        return int(sum(p.numel() for p in net.parameters()))

    def encoding(self, arch: str) -> dict[str, float]:
        """Data-free numbers describing `arch` for learned predictors (gm_lab.predict), by
        name; none by default (the predictor then uses parameter counts and data-free
        proxies only)."""
        return {}

    # ---- ground truth ---------------------------------------------------------------------
    @property
    def official_folder(self) -> str | None:
        """Folder name of the official NATS-Bench download, if the space has one."""
        return None if self.official_name is None else f"{self.official_name}-simple"

    @property
    def table_name(self) -> str:
        return f"{self.name}.csv"

    def required_columns(self) -> tuple[str, ...]:
        """Columns its compact table must have: index, arch, then per dataset of the space
        `<prefix>_test` (accuracy in percent) and `params_<prefix>`."""
        prefixes = [COLUMN_PREFIX[d] for d in self.datasets]
        return (
            "index",
            "arch",
            *(f"{p}_test" for p in prefixes),
            *(f"params_{p}" for p in prefixes),
        )

    # ---- registration ---------------------------------------------------------------------
    def check(self) -> None:
        """PluginError unless the declared attributes make a usable space."""

        def need(ok: bool, what: str) -> None:
            if not ok:
                raise PluginError(f"search space {self.name!r}: {what}")

        need(
            isinstance(self.name, str) and self.name.isidentifier() and self.name.islower(),
            "name must be a lower-case Python identifier",
        )
        need(
            isinstance(self.n_archs, int) and self.n_archs >= 1,
            f"n_archs must be a positive int, got {self.n_archs!r}",
        )
        try:
            re.compile(self.arch_pattern)
        except (re.error, TypeError) as exc:
            raise PluginError(f"search space {self.name!r}: arch_pattern: {exc}") from None
        need(bool(self.arch_pattern), "arch_pattern must describe its architecture strings")
        need(len(self.datasets) >= 1, f"datasets must name at least one of {list(DATASETS)}")
        need(
            isinstance(self.final_test_size, int) and 0 <= self.final_test_size < self.n_archs,
            f"final_test_size must be in 0..{self.n_archs - 1}, got {self.final_test_size!r}",
        )
        need(isinstance(self.display_name, str), "display_name must be a str")


_ATTRIBUTES = frozenset(k for k in SearchSpace.__annotations__)

SPACES: Registry[SearchSpace] = Registry(
    "search space", builtins="gm_lab.spaces", entry_point_group="gm_lab.spaces"
)

T = TypeVar("T", bound="SearchSpace | type[SearchSpace]")


def register_space(space: T, *, replace: bool = False) -> T:
    """Register `space` (an instance, or a class, which is instantiated: `@register_space`
    works as a class decorator) under its name; returns what it was given.

    A second registration of a name is an error unless `replace=True` (re-running a notebook
    cell). A registered space is usable everywhere a space name is: `Benchmark.load`,
    `build_network`, `ProbeConfig(space=...)`, `SearchConfig(space=...)`, the widgets.
    """
    instance = space() if isinstance(space, type) else space
    if not isinstance(instance, SearchSpace):
        raise PluginError(f"register_space needs a SearchSpace, got {type(instance).__name__}")
    instance.check()
    SPACES.register(instance, replace=replace)
    return space


def get_space(space: str | SearchSpace) -> SearchSpace:
    """The registered space of that name (any case), or the space itself; PluginError (a
    ValueError) naming the known spaces otherwise."""
    if isinstance(space, SearchSpace):
        return space
    if not isinstance(space, str):
        raise PluginError(f"a search space is named by a str, got {type(space).__name__}")
    return SPACES[space.lower()]


def space_names() -> tuple[str, ...]:
    """Names of every registered space, built-ins first."""
    return SPACES.names()
