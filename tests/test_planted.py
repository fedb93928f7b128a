"""A planted answer: the GP finds what is there to find.

"Accuracy" is a known formula of two terminals plus a little noise and every other terminal is
noise; within a fixed budget the GP recovers a proxy that ranks held-out synthetic architectures
with Kendall τ >= 0.95, starting from an initial population that ranks them far worse. No probing,
no data: synthetic `ProbeArrays` go straight to the engine (seconds).

On real data (real networks probed on the embedded CIFAR-10 images, the embedded TSS table's
accuracies), evolution beats its own initial population's best on held-out architectures.
"""

from __future__ import annotations

import numpy as np

from gm_lab import metrics
from gm_lab.evolution import (
    Engine,
    EngineState,
    FitnessFunction,
    Individual,
    SearchConfig,
    Split,
)
from gm_lab.expressions import simplify, stat_names, to_text
from gm_lab.probe.cache import ProbeArrays, ProbeCache

PLANTED = ("snip", "naswot")  # accuracy = log(snip) + log(naswot) + noise


def synthetic_split(config: SearchConfig, n: int, seed: int, role: str) -> Split:
    """n synthetic architectures: every statistic and proxy the search knows is log-normal noise,
    and the accuracy is the planted formula of two of them (noise 2% of its spread)."""
    rng = np.random.default_rng(seed)
    max_layers = 8
    n_layers = rng.integers(3, max_layers + 1, size=n)
    mask = np.arange(max_layers)[None, :] < n_layers[:, None]
    layer_stats = {
        name: np.where(mask, rng.lognormal(0.0, 1.0, (n, max_layers)), np.nan)
        for name in stat_names()
    }
    proxies = {name: rng.lognormal(0.0, 1.0, n) for name in config.proxies}
    arrays = ProbeArrays(
        indices=np.arange(n, dtype=np.int64),
        archs=[f"synthetic-{i}" for i in range(n)],
        n_layers=n_layers.astype(np.int64),
        mask=mask,
        layer_stats=layer_stats,
        proxies=proxies,
    )
    a, b = (np.log(proxies[name]) for name in PLANTED)
    truth = a + b + rng.normal(0.0, 0.02 * np.std(a + b), n)
    return Split("synthetic", role, arrays, truth)  # type: ignore[arg-type]


def heldout_kendall(individual: Individual, split: Split) -> float:
    return metrics.kendall(split.scores(simplify(individual)), split.truth, nan_policy="worst")


def test_gp_recovers_a_planted_formula_of_two_terminals() -> None:
    config = SearchConfig(pop=200, gens=20, seed=0)  # the budget: at most 21 populations of 200
    assert set(PLANTED) <= set(config.proxies)
    search = synthetic_split(config, 200, seed=1, role="search")
    heldout = synthetic_split(config, 200, seed=2, role="heldout")
    planted = metrics.kendall(
        sum(np.log(heldout.arrays.proxies[name]) for name in PLANTED), heldout.truth
    )
    assert planted >= 0.97  # the answer is there to find

    state = EngineState.new(config)
    fitness = FitnessFunction([search], cache=state.fitness_cache)
    engine = Engine(config, fitness, state, yield_gil=False)
    engine.advance()  # the initial population
    assert engine.best is not None
    initial = heldout_kendall(engine.best, heldout)
    assert initial < 0.9  # a random tree does not already hold the answer
    while state.generation < config.gens and engine.best.fitness.values[0] < 0.97:
        engine.advance()
    found = heldout_kendall(engine.best, heldout)
    assert found >= 0.95, (to_text(engine.best), found, state.generation)
    assert all(name in to_text(engine.best) for name in PLANTED), to_text(engine.best)


def test_evolution_beats_its_initial_population_on_real_held_out_architectures(tmp_path) -> None:
    """From per-layer statistics alone (`terminals="stats"`, GreenMachine's discovery setting:
    with the classic proxies, generation 0 already holds MeCo, which a search on 150
    architectures cannot beat on held-out ones by more than noise), three GP seeds."""
    from gm_lab.benchmark import Benchmark
    from gm_lab.probe.record import ProbeConfig
    from gm_lab.probe.runner import probe_many
    from gm_lab.sampling import draw_sample

    bench = Benchmark.load("tss")
    accuracy = bench.accuracy("cifar10")
    search_sample = draw_sample(accuracy, "mixed", 150, seed=0)
    heldout_sample = draw_sample(accuracy, "random", 150, seed=1, exclude=search_sample.indices)
    probe = ProbeConfig(batch_size=8)  # real networks, real images; a small batch: cheap
    cache = ProbeCache(probe, root=tmp_path)
    both = np.r_[search_sample.indices, heldout_sample.indices]
    probe_many(bench, both, probe, workers=0, progress=False, cache=cache)

    def split(indices: np.ndarray, role: str) -> Split:
        return Split("cifar10", role, cache.load_arrays(indices), accuracy[indices])  # type: ignore[arg-type]

    search, heldout = (
        split(search_sample.indices, "search"),
        split(heldout_sample.indices, "heldout"),
    )
    for seed in (0, 1, 2):
        config = SearchConfig(pop=60, gens=10, seed=seed, standalone=(), terminals="stats")
        state = EngineState.new(config)
        engine = Engine(config, FitnessFunction([search], cache=state.fitness_cache), state,
                        yield_gil=False)  # fmt: skip
        engine.advance()  # the initial population
        initial = heldout_kendall(engine.best, heldout)
        while state.generation < config.gens:
            engine.advance()
        found = heldout_kendall(engine.best, heldout)
        assert found > initial + 0.03, (seed, to_text(engine.best), found, initial)
