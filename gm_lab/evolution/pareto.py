"""Accuracy and cost together: the cost objective, NSGA-II selection and the Pareto front.

With `objective="tau+cost"` every individual's fitness is (correlation, seconds per
architecture) with weights (+1, -1): the correlation is the single objective's fitness (the
rank correlation on the search sample, minus the size penalty), the cost is what computing the
expression from scratch takes per architecture (`gm_lab.expressions.cost`: the measured costs
of the distinct probe passes its terminals need). A proxy that ranks nearly as well for a
fraction of the probing is what a NAS run wants, and one number cannot say which trade-off is
right, so the search keeps the whole front:

- selection is NSGA-II (Deb et al. 2002, DEAP's `selNSGA2`): parents by binary tournament on
  dominance then crowding distance, survivors from parents + offspring by non-dominated rank
  and crowding; duplicates of one canonical expression go last, so clones cannot fill a front;
- the front is an archive over the whole run: every expression ever evaluated that no other
  dominates, one per (correlation, cost) pair (the smallest tree: Kendall τ is blind to
  monotone transforms, so ``snip``, ``log(snip)`` and ``sqrt(snip)`` tie exactly), without the
  expressions that rank no better than chance (a constant, or a cheap expression of negative
  correlation, costs little but is no proxy: the front would start with them).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from deap import gp, tools

from gm_lab.evolution.operators import Individual
from gm_lab.evolution.rng import THREAD_RANDOM
from gm_lab.expressions import simplify
from gm_lab.expressions.cost import PassCosts, expression_cost, expression_passes

FRONT_FLOOR = 0.0  # front members rank better than chance (an expression ranking nothing: -1)


class CostFunction:
    """tree -> seconds per architecture of its canonical form (what the fitness scores), cached
    by canonical key. The costs are data (`PassCosts`), saved with a checkpoint so a resumed
    run prices expressions exactly as before, whatever was measured since."""

    def __init__(self, costs: PassCosts) -> None:
        self.costs = costs
        self.cache: dict[str, float] = {}

    def __call__(self, tree: gp.PrimitiveTree, key: str | None = None) -> float:
        if key is not None and key in self.cache:
            return self.cache[key]
        value = expression_cost(simplify(tree), self.costs)
        if key is not None:
            self.cache[key] = value
        return value

    def passes(self, tree: gp.PrimitiveTree) -> list[str]:
        return sorted(expression_passes(simplify(tree)))

    def ratio(self, seconds: float) -> float:
        """Seconds as a multiple of one plain forward+backward."""
        return seconds / self.costs.reference if self.costs.reference > 0 else float("nan")


def assign_crowding(population: Sequence[Individual]) -> None:
    """Crowding distance of every individual within its non-dominated front (DEAP's
    `crowding_dist` attribute), computed from the population alone so a resumed run, whose
    checkpoint keeps fitness values only, selects exactly as before."""
    for front in tools.sortNondominated(list(population), len(population)):
        tools.emo.assignCrowdingDist(front)


def select_parents(population: Sequence[Individual], k: int) -> list[Individual]:
    """`k` parents by binary tournament: the dominating one, else the less crowded, else a coin
    (DEAP's selTournamentDCD without its multiple-of-four population size)."""
    assign_crowding(population)

    def duel(a: Individual, b: Individual) -> Individual:
        if a.fitness.dominates(b.fitness):
            return a
        if b.fitness.dominates(a.fitness):
            return b
        if a.fitness.crowding_dist != b.fitness.crowding_dist:
            return a if a.fitness.crowding_dist > b.fitness.crowding_dist else b
        return a if THREAD_RANDOM.random() < 0.5 else b

    pool = list(population)
    return [duel(*THREAD_RANDOM.sample(pool, 2)) for _ in range(k)]


def select_survivors(pool: Sequence[Individual], n: int) -> list[Individual]:
    """The next population: NSGA-II's `n` best of parents + offspring among distinct canonical
    expressions, topped up with duplicates only when there are fewer than `n` distinct ones."""
    seen: set[str | None] = set()
    unique: list[Individual] = []
    duplicates: list[Individual] = []
    for individual in pool:
        (duplicates if individual.key in seen else unique).append(individual)
        seen.add(individual.key)
    if len(unique) >= n:
        return list(tools.selNSGA2(unique, n))
    return unique + duplicates[: n - len(unique)]


def update_front(front: Sequence[Individual], candidates: Iterable[Individual]) -> list[Individual]:
    """The non-dominated set of `front` and `candidates` (see the module doc), cheapest first.
    Individuals are kept as they are: pass clones when the population will change them."""
    best: dict[tuple[float, ...], Individual] = {}
    for individual in [*front, *candidates]:
        values = tuple(individual.fitness.values)
        if not individual.fitness.valid or not values[0] > FRONT_FLOOR:
            continue
        held = best.get(values)
        if held is None or len(individual) < len(held):
            best[values] = individual
    members = list(best.values())
    kept = [i for i in members if not any(j.fitness.dominates(i.fitness) for j in members)]
    return sorted(kept, key=lambda i: (i.fitness.values[1], -i.fitness.values[0], len(i)))


def is_non_dominated(points: Sequence[tuple[float, float]]) -> bool:
    """Whether no (correlation, cost) point is dominated by another (higher-or-equal
    correlation at lower-or-equal cost, one strictly): the front's defining property."""
    for i, (tau_i, cost_i) in enumerate(points):
        for j, (tau_j, cost_j) in enumerate(points):
            if (
                i != j
                and tau_j >= tau_i
                and cost_j <= cost_i
                and (tau_j, cost_j) != (tau_i, cost_i)
            ):
                return False
    return True


def front_entry(individual: Individual, cost: CostFunction, **extra: Any) -> dict[str, Any]:
    """One front member as plain data for events: expression, correlation, cost, size."""
    from gm_lab.expressions import to_text

    canonical = simplify(individual)
    tau, seconds = individual.fitness.values
    return {
        "expr": to_text(canonical),
        "fitness": float(tau),
        "cost": float(seconds),
        "cost_ratio": cost.ratio(float(seconds)),
        "size": len(canonical),
        **extra,
    }


__all__ = [
    "CostFunction",
    "assign_crowding",
    "front_entry",
    "is_non_dominated",
    "select_parents",
    "select_survivors",
    "update_front",
]
