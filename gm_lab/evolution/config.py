"""`SearchConfig`: every setting of one proxy search, checked once, stored in checkpoints/results.

A config is a frozen dataclass of plain values, so it round-trips through JSON (results) and
pickle (checkpoints) unchanged, and `Search.resume_from` can rebuild exactly the same run.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

from gm_lab.benchmark import SPACES, normalise_dataset
from gm_lab.errors import GmLabError
from gm_lab.plugins import PROXIES
from gm_lab.probe.record import ProbeConfig
from gm_lab.sampling import MIN_SAMPLE, SAMPLE_KINDS, SampleKind

Metric = Literal["kendall", "spearman"]
Aggregate = Literal["mean", "min"]
Selection = Literal["double_tournament", "tournament"]
Objective = Literal["tau", "tau+cost"]
TerminalSet = Literal["all", "stats", "proxies"]
OBJECTIVES: tuple[Objective, ...] = ("tau", "tau+cost")
TERMINAL_SETS: tuple[TerminalSet, ...] = ("all", "stats", "proxies")


class SearchConfigError(GmLabError, ValueError):
    """A search setting is out of range or unknown (message names it and the valid range)."""


@dataclass(frozen=True)
class SearchConfig:
    """Settings of one GP proxy search.

    Defaults are the README's main job: stratified 200 + 200 (about 270 TSS architectures,
    as some accuracy bins hold fewer) probed once at batch 64 (the probe's default) by 2
    workers, then 30 generations of 100 trees (seconds). Later runs reuse the probe cache.
    """

    # what is searched, and on which architectures
    space: str = "tss"
    datasets: tuple[str, ...] = ("cifar10",)  # several: fitness aggregates across them
    sample: SampleKind = "stratified"
    n_search: int = 200
    n_heldout: int = 200
    heldout_sample: SampleKind | None = None  # None: the same kind as `sample`
    bins: int = 10  # accuracy bins of a stratified (or mixed) sample
    exclude: tuple[int, ...] = ()  # architectures no sample takes, e.g. a test set kept apart
    use_final_test: bool = False  # True: samples may take the final test set (gm_lab.sampling)
    seed: int = 0  # seeds the samples (and the GP run, unless gp_seed is set)
    gp_seed: int | None = None  # another GP run on the same samples (and probes)

    # terminals: every statistic and shared-pass proxy, plus these standalone proxies (None: the
    # data-free ones, which cost nothing; each other one runs its own passes per architecture)
    standalone: tuple[str, ...] | None = None
    # which of them evolution may use: all, the per-layer statistics only (GreenMachine/EZNAS-
    # style discovery) or the classic proxies only; the data always holds every proxy, so the
    # classic ones are still reported next to what evolved
    terminals: TerminalSet = "all"

    # fitness
    metric: Metric = "kendall"
    aggregate: Aggregate = "mean"
    size_penalty: float = 0.0  # fitness = correlation - size_penalty * nodes
    # "tau": maximise the correlation (the hall of fame); "tau+cost": NSGA-II on (correlation,
    # seconds per architecture to compute the expression), whose result is a Pareto front
    objective: Objective = "tau"

    # GP
    pop: int = 100
    gens: int = 30
    cxpb: float = 0.5
    mutpb: float = 0.4
    elite: int = 1
    hof_size: int = 10
    selection: Selection = "double_tournament"
    tournament_size: int = 3
    parsimony_size: float = 1.4  # double tournament: 1 (off) .. 2 (always prefer smaller)
    init_depth: tuple[int, int] = (1, 4)  # ramped half-and-half depths of generation 0
    max_height: int = 10  # static limits of every produced tree (bloat control)
    max_size: int = 60

    # probing and bookkeeping
    batch_size: int = 64  # the probe's default, so `gm-lab score` reuses the same cache
    input_kind: Literal["real", "gaussian"] = "real"
    probe_seed: int = 0
    workers: int = 2
    scheduler: str | None = None
    cache_dir: str | None = None  # probe cache root (default: $GM_LAB_CACHE/probe)
    checkpoint_dir: str | None = None

    def __post_init__(self) -> None:
        datasets = (self.datasets,) if isinstance(self.datasets, str) else tuple(self.datasets)
        try:
            datasets = tuple(dict.fromkeys(normalise_dataset(d) for d in datasets))
        except ValueError as exc:
            raise SearchConfigError(str(exc)) from None
        object.__setattr__(self, "datasets", datasets)
        object.__setattr__(self, "init_depth", tuple(int(d) for d in self.init_depth))
        object.__setattr__(self, "exclude", tuple(sorted({int(i) for i in self.exclude})))
        object.__setattr__(self, "size_penalty", float(self.size_penalty))
        object.__setattr__(self, "standalone", _standalone(self.standalone, self.space))
        for name in ("cache_dir", "checkpoint_dir"):  # paths as text: the config is JSON-ready
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, str(value))
        self._check()

    def _check(self) -> None:
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise SearchConfigError(f"search setting {what}")

        need(self.space in SPACES, f"space {self.space!r} must be one of {sorted(SPACES)}")
        need(len(self.datasets) >= 1, "datasets must name at least one dataset")
        for name in ("sample", "heldout_sample"):
            value = getattr(self, name)
            need(
                value in SAMPLE_KINDS or (name == "heldout_sample" and value is None),
                f"{name} {value!r} must be one of {', '.join(SAMPLE_KINDS)}",
            )
        for name, low in [
            ("n_search", MIN_SAMPLE), ("n_heldout", 0), ("bins", 1), ("pop", 2), ("gens", 0),
            ("hof_size", 1), ("tournament_size", 1), ("max_height", 1), ("max_size", 1),
            ("batch_size", 1), ("workers", 0), ("elite", 0),
        ]:  # fmt: skip
            value = getattr(self, name)
            need(isinstance(value, int) and value >= low, f"{name}={value!r} must be >= {low}")
        need(
            self.n_heldout == 0 or self.n_heldout >= MIN_SAMPLE,
            f"n_heldout={self.n_heldout} must be 0 (none) or >= {MIN_SAMPLE}",
        )
        need(self.elite < self.pop, f"elite={self.elite} must be below pop={self.pop}")
        need(
            self.objective in OBJECTIVES,
            f"objective {self.objective!r} must be one of {', '.join(OBJECTIVES)}",
        )
        need(
            self.terminals in TERMINAL_SETS,
            f"terminals {self.terminals!r} must be one of {', '.join(TERMINAL_SETS)}",
        )
        need(self.metric in ("kendall", "spearman"), f"metric {self.metric!r}: kendall|spearman")
        need(self.aggregate in ("mean", "min"), f"aggregate {self.aggregate!r}: mean|min")
        need(
            self.selection in ("double_tournament", "tournament"),
            f"selection {self.selection!r}: double_tournament|tournament",
        )
        need(1.0 <= self.parsimony_size <= 2.0, "parsimony_size must be in [1, 2]")
        need(
            math.isfinite(self.size_penalty) and self.size_penalty >= 0.0,
            f"size_penalty={self.size_penalty} must be a finite number >= 0",
        )
        for name in ("cxpb", "mutpb"):
            need(0.0 <= getattr(self, name) <= 1.0, f"{name} must be a probability")
        need(len(self.init_depth) == 2, f"init_depth {self.init_depth} must be (min, max)")
        low, high = self.init_depth
        need(
            0 <= low <= high <= self.max_height,
            f"init_depth {self.init_depth} must be (min, max) with 0 <= min <= max <= "
            f"max_height={self.max_height}",
        )

    # ---- derived settings ---------------------------------------------------------------------
    @property
    def proxies(self) -> tuple[str, ...]:
        """Every proxy the search uses as a terminal: the shared-pass ones and `standalone`."""
        shared = tuple(s.name for s in PROXIES.specs() if not s.standalone)
        return shared + tuple(self.standalone or ())

    @property
    def terminal_proxies(self) -> tuple[str, ...]:
        """The proxies evolution may use as terminals (none with `terminals="stats"`)."""
        return () if self.terminals == "stats" else self.proxies

    @property
    def uses_statistics(self) -> bool:
        """Whether evolution may use the per-layer statistics (not with "proxies")."""
        return self.terminals != "proxies"

    @property
    def run_seed(self) -> int:
        """The seed of the GP run's own random generators."""
        return self.seed if self.gp_seed is None else self.gp_seed

    @property
    def heldout_kind(self) -> SampleKind:
        return self.heldout_sample or self.sample

    def probe_config(self, dataset: str) -> ProbeConfig:
        """The probe settings (and so the cache) of one dataset."""
        return ProbeConfig(
            space=self.space,
            dataset=normalise_dataset(dataset),
            batch_size=self.batch_size,
            input_kind=self.input_kind,
            seed=self.probe_seed,
        )

    # ---- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["datasets"] = list(self.datasets)
        out["init_depth"] = list(self.init_depth)
        out["exclude"] = list(self.exclude)
        out["standalone"] = list(self.standalone or ())
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchConfig:
        """The config of `to_dict` output; unknown keys (from a newer version) are refused."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise SearchConfigError(f"unknown search settings {sorted(unknown)}")
        values = dict(data)
        # stored before the final test set was kept apart: its samples were drawn from all
        values.setdefault("use_final_test", True)
        # stored before standalone proxies existed: its terminals were the shared ones only
        values.setdefault("standalone", ())
        if "datasets" in values:
            values["datasets"] = tuple(values["datasets"])
        for name in ("init_depth", "exclude", "standalone"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)

    def with_changes(self, **changes: Any) -> SearchConfig:
        """A copy with some settings changed (checked again)."""
        return replace(self, **changes)


def _standalone(names: tuple[str, ...] | str | None, space: str) -> tuple[str, ...]:
    """The standalone proxies of a search, checked (None: the architecture-only ones defined
    on `space`, which cost nothing)."""
    if names is None:
        return tuple(
            s.name
            for s in PROXIES.specs()
            if s.standalone and s.needs.rank == 0 and s.applies_to(space)
        )
    names = (names,) if isinstance(names, str) else tuple(dict.fromkeys(names))
    for name in names:
        spec = PROXIES.get(name)
        if spec is None or not spec.standalone:
            known = [s.name for s in PROXIES.specs() if s.standalone]
            raise SearchConfigError(
                f"search setting standalone: {name!r} is not a standalone proxy "
                f"(standalone proxies: {', '.join(known) or 'none registered'})"
            )
    return names
