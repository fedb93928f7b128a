"""GP fitness: rank correlation of an expression's scores with test accuracy, cached by canonical
form.

- Fitness is Kendall τ (or Spearman ρ) between the expression's scores and ground-truth test
  accuracy on the *search* sample of each searched dataset, aggregated by their mean or minimum
  (EZNAS aggregates across spaces the same way), minus an optional size penalty λ·nodes.
- A score that ranks nothing (constant, or NaN/inf everywhere) has no correlation: that dataset
  counts as -1, the worst value; if it ranks nothing on every dataset the fitness is exactly
  WORST_FITNESS, with no size penalty, so all such trees tie at the bottom.
- The cache is keyed by `canonical_key`: trees that simplify to the same expression are scored
  once. To make the fitness a function of that key alone, the *simplified* tree is what gets
  evaluated (identical scores except for the documented ``x - x`` on a NaN statistic).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np
from deap import gp

from gm_lab import metrics
from gm_lab.evolution.config import Aggregate, Metric
from gm_lab.expressions import EvalContext, canonical_key, evaluate, prepare, simplify
from gm_lab.probe.cache import ProbeArrays
from gm_lab.provenance import standin_label

WORST_FITNESS = -1.0
Role = Literal["search", "heldout"]


@dataclass(eq=False)
class Split:
    """One dataset's architectures in one role: probe statistics and aligned test accuracy."""

    dataset: str
    role: Role
    arrays: ProbeArrays
    truth: np.ndarray = field(repr=False)
    searched: bool = True  # False: a dataset probed elsewhere, only reported on
    provenance: dict[str, Any] | None = field(default=None, repr=False)  # the minibatch's

    def __post_init__(self) -> None:
        self.truth = np.asarray(self.truth, dtype=float)
        if self.truth.shape != (len(self.arrays),):
            raise ValueError(
                f"{self.dataset}/{self.role}: {len(self.truth)} accuracies for "
                f"{len(self.arrays)} architectures"
            )

    def __len__(self) -> int:
        return len(self.arrays)

    @property
    def standin_label(self) -> str | None:
        """ "stand-in images: CIFAR-10" when the dataset's own images were absent, else None."""
        return standin_label(self.provenance)

    @cached_property
    def context(self) -> EvalContext:
        """Terminals prepared once for every expression evaluated on this split."""
        return prepare(self.arrays)

    def scores(self, tree: gp.PrimitiveTree) -> np.ndarray:
        return evaluate(tree, self.context)

    def correlations(self, tree: gp.PrimitiveTree) -> dict[str, float]:
        """Kendall τ and Spearman ρ of `tree` here; NaN where its scores rank nothing."""
        return correlations(self.scores(tree), self.truth)


def correlations(scores: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Kendall τ-b and Spearman ρ (NaN scores rank last; NaN if the scores are constant)."""
    return {
        "kendall": metrics.kendall(scores, truth, nan_policy="worst"),
        "spearman": metrics.spearman(scores, truth, nan_policy="worst"),
    }


def correlation(scores: np.ndarray, truth: np.ndarray, metric: Metric) -> float:
    """The fitness metric alone (NaN when the scores rank nothing)."""
    if metric == "kendall":
        return metrics.kendall(scores, truth, nan_policy="worst")
    if metric == "spearman":
        return metrics.spearman(scores, truth, nan_policy="worst")
    raise ValueError(f"unknown fitness metric {metric!r}; choose 'kendall' or 'spearman'")


def aggregate(values: Sequence[float], how: Aggregate) -> float:
    """Mean or minimum of per-dataset correlations, NaN (ranks nothing) counted as -1; NaN only
    when every value is NaN."""
    array = np.asarray(values, dtype=float)
    if array.size == 0 or np.isnan(array).all():
        return float("nan")
    array = np.where(np.isnan(array), WORST_FITNESS, array)
    if how == "mean":
        return float(array.mean())
    if how == "min":
        return float(array.min())
    raise ValueError(f"unknown aggregate {how!r}; choose 'mean' or 'min'")


class FitnessFunction:
    """tree -> fitness on the search splits, with a cache of correlations by canonical form.

    The cache maps canonical text to the aggregated correlation (NaN: ranks nothing anywhere);
    it is plain data, saved in checkpoints so a resumed search neither re-evaluates nor counts
    evaluations differently from an uninterrupted one.
    """

    def __init__(
        self,
        splits: Sequence[Split],
        metric: Metric = "kendall",
        how: Aggregate = "mean",
        size_penalty: float = 0.0,
        cache: dict[str, float] | None = None,
    ) -> None:
        if not splits:
            raise ValueError("fitness needs at least one search split")
        self.splits = list(splits)
        self.metric = metric
        self.how = how
        self.size_penalty = float(size_penalty)
        self.cache: dict[str, float] = {} if cache is None else cache
        self.hits = 0
        self.misses = 0

    def key(self, tree: gp.PrimitiveTree) -> str:
        return canonical_key(tree)

    def correlation(self, tree: gp.PrimitiveTree, key: str | None = None) -> tuple[str, float]:
        """(canonical key, aggregated correlation) of `tree`, from the cache when possible."""
        key = self.key(tree) if key is None else key
        value = self.cache.get(key)
        if value is not None:
            self.hits += 1
            return key, value
        self.misses += 1
        canonical = simplify(tree)
        value = aggregate(
            [correlation(s.scores(canonical), s.truth, self.metric) for s in self.splits],
            self.how,
        )
        self.cache[key] = value
        return key, value

    def from_correlation(self, value: float, size: int) -> float:
        """Fitness of a tree of `size` nodes whose aggregated correlation is `value`."""
        if np.isnan(value):
            return WORST_FITNESS
        return value - self.size_penalty * size

    def __call__(self, tree: gp.PrimitiveTree) -> float:
        _, value = self.correlation(tree)
        return self.from_correlation(value, len(tree))
