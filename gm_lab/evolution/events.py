"""What a search reports after each generation: plain frozen dataclasses, safe to hand to any
thread (callbacks, a notebook widget, the CLI printer) and to pickle into checkpoints."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class GenerationStats:
    """Fitness and size statistics of one generation's population."""

    best: float
    mean: float
    median: float
    worst: float
    std: float
    mean_size: float
    max_size: int
    evaluations: int  # trees actually evaluated (fitness-cache misses)
    cache_hits: int  # changed trees whose canonical form was already scored

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> GenerationStats:
        """From a logbook record of `gm_lab.evolution.engine`."""
        return cls(
            best=record["best"],
            mean=record["mean"],
            median=record["median"],
            worst=record["worst"],
            std=record["std"],
            mean_size=record["mean_size"],
            max_size=record["max_size"],
            evaluations=record["evals"],
            cache_hits=record["cache_hits"],
        )


@dataclass(frozen=True)
class GenerationEvent:
    """One finished generation: statistics, the best expression so far and what it took.

    `generation` 0 is the initial population; a search of `gens` generations ends with
    generation `gens`. Correlations are those of the best expression so far (hall of fame #1)
    on the search sample and on the held-out sample the search never sees, aggregated over the
    searched datasets like the fitness is; `per_dataset["cifar10/heldout"]` etc. hold each one.

    With `objective="tau+cost"`, `front` is the Pareto front so far, cheapest first: one dict
    per expression with "expr", "fitness" (the correlation on the search sample, as the fitness
    has it), "heldout_kendall" (None without a held-out sample), "cost" (seconds per
    architecture), "cost_ratio" (× one plain forward+backward) and "size"; empty otherwise.
    """

    generation: int
    gens: int
    stats: GenerationStats
    best_expr: str
    best_size: int
    best_fitness: float
    search_kendall: float
    search_spearman: float
    heldout_kendall: float | None
    heldout_spearman: float | None
    per_dataset: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0  # wall time of this generation, everything included
    timings: dict[str, float] = field(default_factory=dict)  # evolve / report / checkpoint
    elapsed: float = 0.0  # generation seconds so far, over all sessions of a resumed search
    front: list[dict[str, Any]] = field(default_factory=list)  # tau+cost: the Pareto front

    @property
    def done(self) -> bool:
        return self.generation >= self.gens

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationEvent:
        """The event `to_dict` wrote (checkpoints keep them as data)."""
        return cls(**{**data, "stats": GenerationStats(**data["stats"])})

    def line(self) -> str:
        """One line for a log or the CLI: gen, best fitness, mean, best size, held-out τ, time."""
        heldout = _fmt(self.heldout_kendall)
        front = f"  front {len(self.front):>2}" if self.front else ""
        return (
            f"gen {self.generation:>3}/{self.gens}  best {self.stats.best:+.4f}  "
            f"mean {self.stats.mean:+.4f}  size {self.best_size:>3}  "
            f"held-out tau {heldout}{front}  {self.seconds:6.2f} s"
        )


def _fmt(value: float | None) -> str:
    if value is None:
        return "   -   "
    return "  nan  " if math.isnan(value) else f"{value:+.4f}"
