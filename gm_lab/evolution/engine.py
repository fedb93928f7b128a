"""One generation at a time: variation, cached evaluation, elitism and the hall of fame.

`EngineState` is everything that decides the rest of a run (population, hall of fame, logbook,
generation, the run's own random generators and the fitness cache); `Engine.advance` turns it
into the next generation. The state is plain picklable data, so a checkpoint of it resumes the
run exactly where it stopped, and nothing else (no timing, no thread) influences the result:
the logbook records fitness statistics and evaluation counts only.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from deap import tools

from gm_lab.evolution.config import SearchConfig
from gm_lab.evolution.fitness import FitnessFunction
from gm_lab.evolution.operators import Individual, build_toolbox, same_expression, vary
from gm_lab.evolution.pareto import (
    CostFunction,
    select_parents,
    select_survivors,
    update_front,
)
from gm_lab.evolution.rng import search_random

LOG_FIELDS = (
    "gen", "evals", "cache_hits", "best", "mean", "median", "worst", "std", "mean_size",
    "max_size",
)  # fmt: skip


@dataclass
class EngineState:
    """The full, checkpointable state of a GP run."""

    generation: int  # last finished generation; -1 before the initial population
    population: list[Individual]
    hall_of_fame: tools.HallOfFame
    logbook: tools.Logbook
    rng: random.Random  # every draw of DEAP and of new constants, via gm_lab.evolution.rng
    np_rng: np.random.Generator  # for numpy-based operators (none of DEAP's use it)
    fitness_cache: dict[str, float] = field(default_factory=dict)
    pareto_front: list[Individual] = field(default_factory=list)  # tau+cost only, cheapest first

    @classmethod
    def new(cls, config: SearchConfig) -> EngineState:
        logbook = tools.Logbook()
        logbook.header = list(LOG_FIELDS)
        return cls(
            generation=-1,
            population=[],
            hall_of_fame=tools.HallOfFame(config.hof_size, similar=same_expression),
            logbook=logbook,
            rng=random.Random(config.run_seed),
            np_rng=np.random.default_rng(config.run_seed),
        )


class Engine:
    """Advances an `EngineState` generation by generation under one config and fitness."""

    def __init__(
        self,
        config: SearchConfig,
        fitness: FitnessFunction,
        state: EngineState,
        yield_gil: bool = True,
        cost: CostFunction | None = None,
    ) -> None:
        if fitness.cache is not state.fitness_cache:
            raise ValueError("the fitness function must use the state's fitness cache")
        if config.objective == "tau+cost" and cost is None:
            raise ValueError("objective tau+cost needs a cost function (pass costs)")
        self.config = config
        self.fitness = fitness
        self.state = state
        self.cost = cost if config.objective == "tau+cost" else None
        self.toolbox = build_toolbox(config)
        # time.sleep(0) after each new evaluation lets a waiting thread (the notebook's main
        # thread) take the GIL at once instead of after the 5 ms switch interval
        self.yield_gil = yield_gil

    @property
    def best(self) -> Individual | None:
        hof = self.state.hall_of_fame
        return hof[0] if len(hof) else None

    def advance(self) -> dict[str, Any]:
        """Make the next generation (the initial population first) and return its log record."""
        state, config, toolbox = self.state, self.config, self.toolbox
        if self.cost is not None:
            return self._advance_nsga2()
        with search_random(state.rng):
            if state.generation < 0:
                population = toolbox.population(config.pop)
            else:
                elites = [toolbox.clone(i) for i in tools.selBest(state.population, config.elite)]
                parents = toolbox.select(state.population, config.pop - config.elite)
                offspring = vary(toolbox, parents, config.cxpb, config.mutpb, state.rng)
                population = elites + offspring
            evals, hits = self.evaluate(population)
        state.hall_of_fame.update(population)
        state.population = population
        state.generation += 1
        record = self._record(population, evals, hits)
        state.logbook.record(**record)
        return record

    def _advance_nsga2(self) -> dict[str, Any]:
        """One NSGA-II generation on (correlation, cost); the front archive follows it."""
        state, config, toolbox = self.state, self.config, self.toolbox
        with search_random(state.rng):
            if state.generation < 0:
                population = toolbox.population(config.pop)
                evals, hits = self.evaluate(population)
            else:
                parents = select_parents(state.population, config.pop)
                offspring = vary(toolbox, parents, config.cxpb, config.mutpb, state.rng)
                evals, hits = self.evaluate(offspring)
                population = select_survivors(state.population + offspring, config.pop)
        state.hall_of_fame.update(population)
        state.pareto_front = update_front(state.pareto_front, population)
        state.population = population
        state.generation += 1
        record = self._record(population, evals, hits)
        state.logbook.record(**record)
        return record

    def evaluate(self, individuals: list[Individual]) -> tuple[int, int]:
        """Give every individual without a fitness one; returns (new evaluations, cache hits)."""
        fitness = self.fitness
        evals = hits = 0
        for individual in individuals:
            if individual.fitness.valid:
                continue
            misses = fitness.misses
            key, value = fitness.correlation(individual)
            individual.key = key
            size = len(individual)
            second = size if self.cost is None else self.cost(individual, key)
            individual.fitness.values = (fitness.from_correlation(value, size), second)
            if fitness.misses > misses:
                evals += 1
                if self.yield_gil:
                    time.sleep(0)
            else:
                hits += 1
        return evals, hits

    def _record(self, population: list[Individual], evals: int, hits: int) -> dict[str, Any]:
        values = np.array([i.fitness.values[0] for i in population])
        sizes = np.array([len(i) for i in population])
        return {
            "gen": self.state.generation,
            "evals": evals,
            "cache_hits": hits,
            "best": float(values.max()),
            "mean": float(values.mean()),
            "median": float(np.median(values)),
            "worst": float(values.min()),
            "std": float(values.std()),
            "mean_size": float(sizes.mean()),
            "max_size": int(sizes.max()),
        }
