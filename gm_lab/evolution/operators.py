"""The DEAP toolbox of a search: individuals, initialisation, selection, crossover and mutation.

- Initialisation: ramped half-and-half (`gp.genHalfAndHalf`) over the typed `PSET` (with the
  search's proxies as terminals: `restricted_pset`), so
  generation 0 mixes full and grown trees of every depth in `init_depth` (trees over
  `max_size` are redrawn).
- Selection: double tournament (fitness tournament, then a parsimony tournament that prefers
  the smaller of two trees with probability parsimony_size / 2, Luke & Panait's bloat control)
  or a plain tournament.
- Crossover: one-point subtree crossover biased towards internal nodes (DEAP's
  `cxOnePointLeafBiased`, 10% leaves as Koza recommends); it only swaps subtrees of the same
  type, so typed trees stay typed. `cx_one_point_leaf_biased` is DEAP's algorithm with one
  change: DEAP picks the type from a *set* of type classes, whose order follows their `id()`
  and so differs between processes; here the types are sorted by name, so a run resumed in a
  new process makes the same choices as the original.
- Mutation: one of five, uniformly: a new random subtree (`mutUniform`), a node replaced by one
  of the same signature (`mutNodeReplacement`), a subtree replaced by one of its arguments
  (`mutShrink`), a new operator inserted above a node (`mutInsert`), or one constant redrawn
  (`mutEphemeral`). Together they both grow and shrink trees and tune constants.
- Every crossover and mutation is wrapped in `gp.staticLimit` on height and node count: a child
  over a limit is replaced by a parent, so no tree ever exceeds `max_height` / `max_size`
  (both far below the expression language's MAX_DEPTH / MAX_NODES), which keeps bloat and
  evaluation cost bounded.

All randomness goes through DEAP's module-level `random`, which `gm_lab.evolution.rng` routes to
the search's own generator.
"""

from __future__ import annotations

import operator
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from functools import partial

from deap import base, gp, tools

from gm_lab.evolution.config import SearchConfig, SearchConfigError
from gm_lab.evolution.rng import THREAD_RANDOM
from gm_lab.expressions import restricted_pset

MUTATIONS: tuple[str, ...] = ("subtree", "node", "shrink", "insert", "constant")
LEAF_PROBABILITY = 0.1  # crossover points on leaves (Koza: 90% on internal nodes)
SUBTREE_DEPTH = (0, 2)  # depths of the new subtree mutUniform grows
INIT_ATTEMPTS = 1000


class FitnessMax(base.Fitness):
    """(fitness, size): the (penalised) rank correlation, maximised, then the node count,
    minimised. DEAP compares fitnesses lexicographically, so equal correlations (common on
    small samples) go to the smaller tree in tournaments, elitism and the hall of fame:
    lexicographic parsimony pressure (Luke & Panait 2002), without a size penalty's bias.

    With `objective="tau+cost"` the second value is the expression's cost in seconds per
    architecture instead (also minimised, so the weights are the same): NSGA-II's two
    objectives, and among equal correlations the cheaper expression ranks first."""

    weights = (1.0, -1.0)


class Individual(gp.PrimitiveTree):
    """A tree with its fitness and canonical key (None until evaluated).

    A module-level class (not `creator.create`) so that checkpoints unpickle in a fresh process
    without any set-up.
    """

    def __init__(self, content: Sequence[gp.Primitive | gp.Terminal]) -> None:
        super().__init__(content)
        self.fitness = FitnessMax()
        self.key: str | None = None

    def invalidate(self) -> None:
        """Forget the fitness and key after the tree changed."""
        del self.fitness.values
        self.key = None


def same_expression(a: Individual, b: Individual) -> bool:
    """HallOfFame similarity: the same canonical expression (not merely equal node lists)."""
    return a.key is not None and a.key == b.key


def build_toolbox(config: SearchConfig) -> base.Toolbox:
    """The toolbox for `config`: `population(n)`, `select`, `mate`, `mutate` (one of MUTATIONS
    at random, in place; returns a 1-tuple like DEAP's) and `clone`."""
    toolbox = base.Toolbox()
    # the terminals the search may use: those its data holds, of the chosen terminal set
    pset = restricted_pset(config.terminal_proxies, statistics=config.uses_statistics)
    low, high = config.init_depth
    toolbox.register("expr", gp.genHalfAndHalf, pset=pset, min_=low, max_=high)
    toolbox.register("individual", _new_individual, toolbox.expr, config.max_size)
    toolbox.register("population", _new_population, toolbox.individual)
    toolbox.register("clone", _clone)
    if config.selection == "double_tournament":
        toolbox.register(
            "select",
            tools.selDoubleTournament,
            fitness_size=config.tournament_size,
            parsimony_size=config.parsimony_size,
            fitness_first=True,
        )
    else:
        toolbox.register("select", tools.selTournament, tournsize=config.tournament_size)

    limits = [
        gp.staticLimit(operator.attrgetter("height"), config.max_height),
        gp.staticLimit(len, config.max_size),
    ]
    mate = partial(cx_one_point_leaf_biased, termpb=LEAF_PROBABILITY)
    sub_expr = partial(gp.genFull, min_=SUBTREE_DEPTH[0], max_=SUBTREE_DEPTH[1])
    mutations: dict[str, Callable[[Individual], tuple[Individual]]] = {
        "subtree": partial(gp.mutUniform, expr=sub_expr, pset=pset),
        "node": partial(gp.mutNodeReplacement, pset=pset),
        "shrink": gp.mutShrink,
        "insert": partial(gp.mutInsert, pset=pset),
        "constant": partial(gp.mutEphemeral, mode="one"),
    }
    for limit in limits:
        mate = limit(mate)
        mutations = {name: limit(fn) for name, fn in mutations.items()}
    toolbox.register("mate", mate)
    toolbox.register("mutate", _mutate_one_of, mutations)
    toolbox.mutations = mutations  # by name, for tests and experiments
    return toolbox


def cx_one_point_leaf_biased(
    ind1: Individual, ind2: Individual, termpb: float
) -> tuple[Individual, Individual]:
    """Swap a random subtree of `ind1` with one of the same type in `ind2` (in place); each
    crossover point is a leaf with probability `termpb`, else an operator node. The root is
    never chosen, so the result stays a scalar expression."""
    if len(ind1) < 2 or len(ind2) < 2:
        return ind1, ind2
    leaf1 = THREAD_RANDOM.random() < termpb
    leaf2 = THREAD_RANDOM.random() < termpb
    types1: dict[type, list[int]] = defaultdict(list)
    types2: dict[type, list[int]] = defaultdict(list)
    for idx, node in enumerate(ind1[1:], 1):
        if (node.arity == 0) == leaf1:
            types1[node.ret].append(idx)
    for idx, node in enumerate(ind2[1:], 1):
        if (node.arity == 0) == leaf2:
            types2[node.ret].append(idx)
    common = sorted(set(types1) & set(types2), key=lambda t: t.__name__)
    if common:
        type_ = THREAD_RANDOM.choice(common)
        slice1 = ind1.searchSubtree(THREAD_RANDOM.choice(types1[type_]))
        slice2 = ind2.searchSubtree(THREAD_RANDOM.choice(types2[type_]))
        ind1[slice1], ind2[slice2] = ind2[slice2], ind1[slice1]
    return ind1, ind2


def _new_individual(expr: Callable[[], list], max_size: int) -> Individual:
    """A ramped half-and-half tree within `max_size` nodes (redrawn until it fits: full trees
    of the deepest initial depth can be larger than the limit variation keeps to)."""
    for _ in range(INIT_ATTEMPTS):
        tree = expr()
        if len(tree) <= max_size:
            return Individual(tree)
    raise SearchConfigError(
        f"no initial tree within max_size={max_size} nodes in {INIT_ATTEMPTS} draws: "
        "raise max_size or lower init_depth"
    )


def _new_population(individual: Callable[[], Individual], n: int) -> list[Individual]:
    return [individual() for _ in range(n)]


def _clone(individual: Individual) -> Individual:
    """A copy sharing the (immutable) nodes; fitness and key copied (DEAP's deepcopy)."""
    return individual.__deepcopy__({})


def _mutate_one_of(
    mutations: dict[str, Callable[[Individual], tuple[Individual]]], individual: Individual
) -> tuple[Individual]:
    name = THREAD_RANDOM.choice(MUTATIONS)  # the stream DEAP's operators draw from
    return mutations[name](individual)


def vary(
    toolbox: base.Toolbox,
    parents: Sequence[Individual],
    cxpb: float,
    mutpb: float,
    rng: random.Random,
) -> list[Individual]:
    """Offspring of `parents` (cloned): consecutive pairs cross over with probability `cxpb`,
    then each child mutates with probability `mutpb` (DEAP's varAnd). Changed children are
    invalidated; untouched ones keep their fitness and need no evaluation."""
    offspring = [toolbox.clone(p) for p in parents]
    for i in range(1, len(offspring), 2):
        if rng.random() < cxpb:
            a, b = toolbox.mate(offspring[i - 1], offspring[i])
            offspring[i - 1], offspring[i] = a, b
            a.invalidate()
            b.invalidate()
    for i, child in enumerate(offspring):
        if rng.random() < mutpb:
            (mutant,) = toolbox.mutate(child)
            mutant.invalidate()
            offspring[i] = mutant
    return offspring


__all__ = [
    "MUTATIONS",
    "FitnessMax",
    "Individual",
    "build_toolbox",
    "same_expression",
    "vary",
]
