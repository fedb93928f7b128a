"""The GP engine: evolve zero-cost proxy expressions judged by rank correlation with accuracy.

    from gm_lab.evolution import Search, SearchConfig

    search = Search(SearchConfig(datasets=("cifar10",), n_search=200, pop=64, gens=15))
    result = search.run()                    # or: search.start(); ...; search.wait()
    print(result.best.expr, result.best.heldout_kendall)

Modules, bottom up: `config` (SearchConfig), `rng` (per-search random generator behind DEAP),
`fitness` (Kendall/Spearman fitness, cached by canonical form), `operators` (DEAP toolbox),
`pareto` (the cost objective, NSGA-II selection, the Pareto front), `engine` (one generation),
`data` (samples and probes), `events`, `checkpoint`, `result`, `search` (the Search object).
Nothing here imports Jupyter: the engine runs in scripts and the CLI alike, and a notebook
front end subscribes to its events.
"""

from gm_lab.evolution.checkpoint import (
    Checkpoint,
    CheckpointError,
    has_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from gm_lab.evolution.config import SearchConfig, SearchConfigError
from gm_lab.evolution.data import SearchData, draw_samples, load_data
from gm_lab.evolution.engine import Engine, EngineState
from gm_lab.evolution.events import GenerationEvent, GenerationStats
from gm_lab.evolution.fitness import WORST_FITNESS, FitnessFunction, Split
from gm_lab.evolution.operators import MUTATIONS, FitnessMax, Individual, build_toolbox
from gm_lab.evolution.pareto import CostFunction
from gm_lab.evolution.result import Correlation, ExpressionReport, SearchResult
from gm_lab.evolution.rng import search_random
from gm_lab.evolution.search import Search, SearchStateError

__all__ = [
    "MUTATIONS",
    "WORST_FITNESS",
    "Checkpoint",
    "CheckpointError",
    "Correlation",
    "CostFunction",
    "Engine",
    "EngineState",
    "ExpressionReport",
    "FitnessFunction",
    "FitnessMax",
    "GenerationEvent",
    "GenerationStats",
    "Individual",
    "Search",
    "SearchConfig",
    "SearchConfigError",
    "SearchData",
    "SearchResult",
    "SearchStateError",
    "Split",
    "build_toolbox",
    "draw_samples",
    "has_checkpoint",
    "load_checkpoint",
    "load_data",
    "save_checkpoint",
    "search_random",
]
