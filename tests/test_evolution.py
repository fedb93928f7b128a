"""The GP engine (gm_lab.evolution) and `gm-lab evolve`, on real probes of small samples.

One module-scoped cache holds real probes of a 20-architecture search sample and a 12-architecture
held-out sample of TSS on ImageNet16-120 at batch 8 (16x16 inputs keep each probe cheap; the
images are a recorded stand-in: the embedded default's CIFAR-10 images, no data folder needed).
Every search below, in-process or through the CLI, reads that cache, so probing is paid once.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from gm_lab import metrics
from gm_lab.benchmark import Benchmark
from gm_lab.evolution import (
    WORST_FITNESS,
    CheckpointError,
    FitnessFunction,
    GenerationEvent,
    Search,
    SearchConfig,
    SearchConfigError,
    SearchResult,
    SearchStateError,
    Split,
    build_toolbox,
    load_checkpoint,
    load_data,
    search_random,
)
from gm_lab.evolution.checkpoint import checkpoint_path
from gm_lab.evolution.data import draw_samples
from gm_lab.expressions import Scalar, check_tree, parse, to_text
from gm_lab.inputs import StandInImagesWarning
from gm_lab.sampling import random_sample

torch.set_num_threads(1)  # 2 torch threads on 2 contended cores are many times slower

DATASET = "ImageNet16-120"
SAMPLE = {"sample": "random", "n_search": 20, "n_heldout": 12, "seed": 0}
CLI = [sys.executable, "-m", "gm_lab.cli"]
CLI_SAMPLE = ["--dataset", DATASET, "--sample", "random", "--n", "20", "--seed", "0"]
CLI_PROBE = ["--batch-size", "8", "--workers", "0"]


# ---- shared data --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bench(tss_table: Path) -> Benchmark:
    return Benchmark.from_table(tss_table, "tss")


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory: pytest.TempPathFactory, bench: Benchmark) -> Path:
    """A GM_LAB_CACHE whose probe cache holds both samples (probed once, 2 worker processes)."""
    root = tmp_path_factory.mktemp("evolution-cache")
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        warnings.simplefilter("ignore", StandInImagesWarning)
        patch.setenv("GM_LAB_CACHE", str(root))
        load_data(_config(root, workers=2), bench)
    return root


def _config(root: Path, **changes: Any) -> SearchConfig:
    values = {
        "space": "tss",
        "datasets": (DATASET,),
        **SAMPLE,
        "batch_size": 8,
        "workers": 0,
        "pop": 16,
        "gens": 6,
        "cache_dir": str(root / "probe"),
        **changes,
    }
    return SearchConfig(**values)


@pytest.fixture
def config(cache_root: Path):
    """config(**changes): the tests' search settings over the shared cache."""
    return lambda **changes: _config(cache_root, **changes)


@pytest.fixture(scope="module")
def two_datasets(cache_root: Path, bench: Benchmark) -> dict[str, Any]:
    """Sample settings whose 6 + 4 architectures are probed on ImageNet16-120 and CIFAR-100."""
    small = {"n_search": 6, "n_heldout": 4, "seed": 5}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StandInImagesWarning)
        load_data(_config(cache_root, datasets=(DATASET, "cifar100"), **small), bench)
    return small


@pytest.fixture(scope="module")
def data(cache_root: Path, bench: Benchmark):
    return load_data(_config(cache_root), bench)


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def hall_of_fame(search: Search) -> list[tuple[str, tuple[float, ...]]]:
    assert search.state is not None
    return [(to_text(i), i.fitness.values) for i in search.state.hall_of_fame]


def logbook(search: Search) -> list[dict[str, Any]]:
    assert search.state is not None
    return [dict(r) for r in search.state.logbook]


# ---- operators ----------------------------------------------------------------------------------
LIMITED = SearchConfig(max_height=6, max_size=25, init_depth=(1, 4))


def assert_valid(tree, config: SearchConfig = LIMITED) -> None:
    check_tree(tree)  # typed, well-formed, scalar root, within the language's limits
    assert tree[0].ret is Scalar
    assert tree.height <= config.max_height and len(tree) <= config.max_size, str(tree)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_every_operator_yields_valid_trees_within_the_limits(seed: int):
    toolbox = build_toolbox(LIMITED)
    with search_random(random.Random(seed)):
        population = toolbox.population(12)
        for tree in population:
            assert_valid(tree)
        for mutate in toolbox.mutations.values():
            for tree in population:
                (child,) = mutate(toolbox.clone(tree))
                assert_valid(child)
        for a, b in zip(population[::2], population[1::2], strict=True):
            for child in toolbox.mate(toolbox.clone(a), toolbox.clone(b)):
                assert_valid(child)
        for child in toolbox.mutate(toolbox.clone(population[0])):
            assert_valid(child)


def test_each_mutation_changes_trees_and_crossover_mixes_them():
    toolbox = build_toolbox(LIMITED)
    with search_random(random.Random(0)):
        population = toolbox.population(40)
        texts = [to_text(t) for t in population]
        for name, mutate in toolbox.mutations.items():
            changed = sum(
                to_text(mutate(toolbox.clone(t))[0]) != s
                for t, s in zip(population, texts, strict=True)
            )
            enough = 1 if name == "constant" else 5  # few trees hold a constant
            assert changed >= enough, f"{name} changed only {changed} of 40 trees"
        mixed = 0
        pairs = toolbox.population(80)  # small trees (a leaf under one op) cannot mix: 40 pairs
        for a, b in zip(pairs[::2], pairs[1::2], strict=True):
            c, d = toolbox.mate(toolbox.clone(a), toolbox.clone(b))
            mixed += {to_text(c), to_text(d)} != {to_text(a), to_text(b)}
        assert mixed >= 5


def test_operators_draw_only_from_the_search_generator():
    toolbox = build_toolbox(LIMITED)

    def trees(seed: int) -> list[str]:
        with search_random(random.Random(seed)):
            population = [toolbox.mutate(t)[0] for t in toolbox.population(10)]
        return [to_text(t) for t in population]

    random.seed(123)
    before = random.getstate()
    first = trees(1)
    assert random.getstate() == before  # neither DEAP nor new constants touched `random`
    assert trees(1) == first and trees(2) != first
    random.seed(5)  # outside a search, DEAP draws from `random` as it always did
    outside = [to_text(t) for t in toolbox.population(3)]
    random.seed(5)
    assert [to_text(t) for t in toolbox.population(3)] == outside


# ---- fitness ------------------------------------------------------------------------------------
def test_fitness_of_a_classic_proxy_is_its_kendall_tau(data):
    split = data.search_splits[0]
    assert len(split) == 20
    fitness = FitnessFunction([split])
    tau = metrics.kendall(split.arrays.proxies["snip"], split.truth)
    assert tau == pytest.approx(stats.kendalltau(split.arrays.proxies["snip"], split.truth)[0])
    assert fitness(parse("snip")) == tau
    assert fitness(parse("sum(snip_l)")) == tau  # the proxy is the sum of its per-layer values
    rho = FitnessFunction([split], metric="spearman")(parse("snip"))
    assert rho == metrics.spearman(split.arrays.proxies["snip"], split.truth)


def test_constant_and_nan_scores_get_the_worst_fitness(data):
    split = data.search_splits[0]
    fitness = FitnessFunction([split], size_penalty=0.01)
    for text in ("1.5", "snip - snip", "mean(snip_l) * 0", "sigmoid(exp(100))"):
        assert fitness(parse(text)) == WORST_FITNESS, text
    proxies = {**split.arrays.proxies, "snip": np.full(len(split), np.nan)}
    broken = Split(DATASET, "search", replace(split.arrays, proxies=proxies), split.truth)
    assert FitnessFunction([broken])(parse("snip")) == WORST_FITNESS
    assert FitnessFunction([broken])(parse("log(snip)")) == WORST_FITNESS


def test_fitness_aggregates_datasets_and_penalises_size(data, bench: Benchmark):
    first = data.search_splits[0]
    indices = first.arrays.indices
    other = Split("cifar100", "search", first.arrays, bench.accuracy("cifar100")[indices])
    tree = parse("mean(log(snip_l)) + naswot")
    taus = [metrics.kendall(s.scores(tree), s.truth) for s in (first, other)]
    assert FitnessFunction([first, other], how="mean")(tree) == pytest.approx(np.mean(taus))
    assert FitnessFunction([first, other], how="min")(tree) == min(taus)
    penalised = FitnessFunction([first, other], how="min", size_penalty=0.01)(tree)
    assert penalised == pytest.approx(min(taus) - 0.01 * len(tree))


def test_fitness_cache_is_keyed_by_canonical_form(data):
    fitness = FitnessFunction(data.search_splits)
    values = [fitness(parse(t)) for t in ("snip + naswot", "naswot + snip", "(snip + 0) + naswot")]
    assert values[0] == values[1] == values[2]
    assert (fitness.misses, fitness.hits) == (1, 2)
    assert list(fitness.cache) == ["naswot + snip"]


def test_search_config_checks_and_normalises():
    assert SearchConfig(datasets=("c10", "cifar-100")).datasets == ("cifar10", "cifar100")
    for bad in (
        {"pop": 1},
        {"metric": "pearson"},
        {"datasets": ("mnist",)},
        {"pop": 8, "elite": 8},
    ):
        with pytest.raises(SearchConfigError):
            SearchConfig(**bad)
    with pytest.raises(SearchConfigError, match="random, stratified, mixed"):
        SearchConfig(sample="uniform")
    config = SearchConfig(datasets=("cifar10", "ImageNet16-120"), n_heldout=0)
    assert SearchConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    config = SearchConfig(sample="mixed", exclude=[np.int64(9), 3, 9])
    assert config.exclude == (3, 9)
    assert SearchConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_samples_keep_the_excluded_architectures_apart(bench):
    """A test set kept out of every search: neither sample takes any of it, both keep their
    sizes, and a config without it draws exactly what it drew before."""
    plain = SearchConfig(sample="mixed", n_search=300, n_heldout=100)
    search, heldout = draw_samples(bench, plain)
    assert search.kind == heldout.kind == "mixed" and len(search) == 300
    kept_apart = random_sample(bench.accuracy("cifar10"), 2000, seed=5).indices
    config = plain.with_changes(exclude=tuple(kept_apart))
    search2, heldout2 = draw_samples(bench, config)
    assert len(search2) == 300 and len(heldout2) == 100
    taken = set(search2.indices.tolist()) | set(heldout2.indices.tolist())
    assert not taken & set(kept_apart.tolist())
    assert not set(search2.indices.tolist()) & set(heldout2.indices.tolist())
    assert set(search.indices.tolist()) != set(search2.indices.tolist())
    np.testing.assert_array_equal(draw_samples(bench, plain)[0].indices, search.indices)


# ---- determinism and checkpoints ----------------------------------------------------------------
def test_same_seed_same_run_whatever_else_draws_from_random(config, bench):
    first = Search(config(), benchmark=bench)
    random.seed(7)
    first.run()
    assert random.random() == random.Random(7).random()  # the search left `random` alone

    second = Search(config(), benchmark=bench)
    second.start()
    while second.phase in ("new", "preparing", "running"):  # other code draws meanwhile
        random.seed(random.random())
        time.sleep(0.001)
    second.wait(timeout=60)
    assert hall_of_fame(second) == hall_of_fame(first)
    assert logbook(second) == logbook(first)
    assert len(hall_of_fame(first)) == 10 and logbook(first)[-1]["gen"] == 6

    other = Search(config(gp_seed=1), benchmark=bench)  # same samples, another GP run
    other.run()
    assert hall_of_fame(other) != hall_of_fame(first)


def test_resume_from_checkpoint_gives_exactly_the_uninterrupted_run(config, bench, tmp_path):
    whole = Search(config(), benchmark=bench)
    whole.run()

    folder = tmp_path / "run"
    interrupted = Search(config(checkpoint_dir=str(folder)), benchmark=bench)
    interrupted.subscribe(lambda e: interrupted.stop() if e.generation == 3 else None)
    interrupted.run()
    assert interrupted.phase == "stopped" and interrupted.generation == 3
    assert load_checkpoint(folder).generation == 3

    resumed = Search.resume_from(folder, benchmark=bench)
    assert resumed.generation == 3 and [e.generation for e in resumed.history] == [0, 1, 2, 3]
    result = resumed.run()
    assert resumed.generation == 6 and result.finished
    assert hall_of_fame(resumed) == hall_of_fame(whole)
    assert logbook(resumed) == logbook(whole)
    assert [e.best_expr for e in resumed.history] == [e.best_expr for e in whole.history]
    assert load_checkpoint(folder).generation == 6


def test_checkpoint_folder_in_use_or_damaged_is_refused(config, bench, tmp_path):
    folder = tmp_path / "run"
    Search(config(gens=0, checkpoint_dir=str(folder)), benchmark=bench).run()
    with pytest.raises(CheckpointError, match="already holds a search checkpoint"):
        Search(config(checkpoint_dir=str(folder)), benchmark=bench).prepare()
    checkpoint_path(folder).write_bytes(b"\x80\x04truncated")
    with pytest.raises(CheckpointError, match="damaged"):
        Search.resume_from(folder)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        Search.resume_from(tmp_path / "nowhere")


def test_checkpoints_are_data_that_cannot_run_code_or_lie(config, bench, tmp_path):
    folder = tmp_path / "run"
    Search(config(gens=2, checkpoint_dir=str(folder)), benchmark=bench).run()
    saved = checkpoint_path(folder)
    document = json.loads(saved.read_text())  # plain JSON: expressions, numbers, states
    assert document["content"]["format"] == 2 and document["content"]["state"]["generation"] == 2

    # a flipped digit in a stored float is caught by the checksum
    text = saved.read_text()
    fitness = json.dumps(document["content"]["state"]["population"][0]["fitness"][0])
    flipped = fitness[:-1] + ("1" if fitness[-1] != "1" else "2")
    saved.write_text(text.replace(fitness, flipped, 1))
    with pytest.raises(CheckpointError, match="changed or damaged since it was written"):
        Search.resume_from(folder)
    saved.write_text(text)

    # fewer generations than done is an error, not a silent "finished at 2 of 1"
    with pytest.raises(CheckpointError, match="gens=1 is below the 2 generations"):
        Search.resume_from(folder, gens=1)

    # a changed benchmark table (same samples, other accuracies) is refused, naming the split
    table = bench.table.copy()
    for prefix in ("cifar10", "cifar100", "imagenet16"):
        table[f"{prefix}_test"] = table[f"{prefix}_test"] * 0.99
    changed = Benchmark(table, "tss", source="changed")
    with pytest.raises(CheckpointError, match=f"{DATASET}/search"):
        Search.resume_from(folder, benchmark=changed).prepare()


def test_a_pickled_checkpoint_is_refused_without_being_loaded(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    marker = tmp_path / "code-ran"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (folder / "checkpoint.pkl").write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(CheckpointError, match="pickled checkpoint of an older gm_lab"):
        Search.resume_from(folder)
    assert not marker.exists()


# ---- control ------------------------------------------------------------------------------------
def test_pause_step_resume_stop_and_the_generation_counter(config, bench):
    search = Search(config(gens=10_000), benchmark=bench)
    assert search.phase == "new" and search.generation == -1
    first = search.step(timeout=60)  # not started: starts paused, runs the initial population
    assert first is not None and first.generation == 0 == search.generation
    assert search.phase == "paused"
    time.sleep(0.2)
    assert search.generation == 0  # paused means paused
    assert search.step(timeout=30).generation == 1 and search.generation == 1

    search.resume()
    wait_until(lambda: search.generation >= 4)
    assert search.phase == "running"
    with pytest.raises(SearchStateError, match="paused"):
        search.step()

    search.pause(timeout=30)
    assert search.phase == "paused"
    paused_at = search.generation
    assert search.step(timeout=30).generation == paused_at + 1

    search.stop(timeout=30)
    assert search.phase == "stopped"
    stopped_at = search.generation
    time.sleep(0.1)
    assert search.generation == stopped_at
    assert [e.generation for e in search.history] == list(range(stopped_at + 1))

    search.start()  # continues where it stopped
    wait_until(lambda: search.generation >= stopped_at + 2)
    search.stop(timeout=30)
    assert [e.generation for e in search.history] == list(range(search.generation + 1))

    short = Search(config(gens=1), benchmark=bench)
    short.start()
    assert short.wait(timeout=60).finished and short.phase == "finished"
    assert short.step() is None  # nothing left to do


def test_a_failing_search_reports_its_error(config, bench, monkeypatch):
    search = Search(config(gens=5), benchmark=bench)
    search.prepare()
    advance = search._engine.advance

    def fail_at_generation_2():
        if search.generation == 1:
            raise RuntimeError("broken operator")
        return advance()

    monkeypatch.setattr(search._engine, "advance", fail_at_generation_2)
    search.start()
    with pytest.raises(RuntimeError, match="broken operator"):
        search.wait(timeout=60)
    assert search.phase == "failed" and isinstance(search.error, RuntimeError)
    assert search.generation == 1 and len(search.history) == 2
    with pytest.raises(SearchStateError, match="failed"):
        search.start()


def test_events_go_to_callbacks_and_the_queue(config, bench):
    search = Search(config(gens=3), benchmark=bench)
    seen: list[GenerationEvent] = []
    search.subscribe(seen.append)
    unsubscribe = search.subscribe(lambda e: seen.append(e) if e.generation == 0 else None)
    search.subscribe(lambda e: 1 / 0 if e.generation == 1 else None)
    search.subscribe(lambda e: unsubscribe())
    with pytest.warns(RuntimeWarning, match="ZeroDivisionError"):
        result = search.run()
    assert [e.generation for e in seen] == [0, 0, 1, 2, 3]  # the second callback left after gen 0
    queued = [search.events.get_nowait() for _ in range(4)]
    assert queued == search.history == seen[1:]
    assert search.events.empty()
    last = seen[-1]
    assert last.done and last.gens == 3
    assert last.stats.best >= last.stats.median >= last.stats.worst
    assert last.best_fitness == last.stats.best == result.best.fitness
    assert last.best_expr == result.best.expr and to_text(parse(last.best_expr)) == last.best_expr
    assert last.search_kendall == pytest.approx(result.best.search_kendall)
    assert last.heldout_kendall == pytest.approx(result.best.heldout_kendall)
    assert set(last.per_dataset) == {f"{DATASET}/search", f"{DATASET}/heldout"}
    assert set(last.timings) == {"evolve", "report", "checkpoint"}
    assert sum(e.stats.evaluations + e.stats.cache_hits for e in seen[1:]) > 16
    assert str(last.generation) in last.line() and "held-out tau" in last.line()


def test_main_thread_stays_responsive_while_the_search_runs(config, bench):
    search = Search(config(pop=64, gens=100_000), benchmark=bench)
    search.prepare()
    search.start()
    wait_until(lambda: search.generation >= 1)
    started_at = search.generation
    lateness = []
    for _ in range(150):
        began = time.perf_counter()
        time.sleep(0.005)
        lateness.append(time.perf_counter() - began - 0.005)
    progressed = search.generation - started_at
    search.stop(timeout=30)
    p95 = float(np.percentile(lateness, 95))
    print(
        f"main-thread sleep lateness: median {np.median(lateness) * 1e3:.2f} ms, p95 "
        f"{p95 * 1e3:.2f} ms, max {max(lateness) * 1e3:.2f} ms; {progressed} generations"
    )
    assert progressed >= 2, "the search did not run while the main thread was measured"
    assert p95 < 0.050


# ---- results ------------------------------------------------------------------------------------
def test_result_scores_every_split_and_round_trips_through_json(config, bench, tmp_path):
    result = Search(config(gens=2), benchmark=bench).run()
    assert 1 <= len(result.hall_of_fame) <= 10 and result.finished
    best = result.best
    assert {(r.dataset, r.split, r.n) for r in best.rows} == {
        (DATASET, "search", 20),
        (DATASET, "heldout", 12),
    }
    assert best.fitness == pytest.approx(best.search_kendall)
    assert {r.expr for r in result.classic} == set(result.config.proxies)
    snip = next(r for r in result.classic if r.expr == "snip")
    assert snip.kind == "classic" and snip.fitness is None
    table = result.table()
    assert "held-out τ" in table and "#1" in table and "naswot" in table

    path = result.save(tmp_path / "result.json")
    loaded = SearchResult.load(path)
    assert loaded.to_dict() == result.to_dict()
    assert to_text(loaded.best.tree) == best.expr
    assert loaded.config == result.config
    payload = json.loads(path.read_text())
    payload["hall_of_fame"][0]["expr"] = "mean(snip_l"
    path.write_text(json.dumps(payload))
    with pytest.raises(ValueError, match="column"):
        SearchResult.load(path)


def test_search_over_two_datasets_and_transfer_to_a_probed_one(config, bench, two_datasets):
    both = Search(
        config(datasets=(DATASET, "cifar100"), aggregate="min", gens=2, **two_datasets),
        benchmark=bench,
    )
    result = both.run()
    best = result.best
    rows = {(r.dataset, r.split): r for r in best.rows}
    assert set(rows) == {(d, s) for d in (DATASET, "cifar100") for s in ("search", "heldout")}
    assert all(r.searched for r in rows.values()) and rows[("cifar100", "search")].n == 6
    taus = [rows[(d, "search")].kendall for d in (DATASET, "cifar100")]
    assert best.search_kendall == min(taus) == best.fitness
    assert set(both.history[-1].per_dataset) == {f"{d}/{s}" for d, s in rows}

    # searched on one dataset only, the other's cached probes of the same samples are reported
    alone = Search(config(gens=1, **two_datasets), benchmark=bench).run()
    transfer = {(r.dataset, r.split) for r in alone.best.rows if not r.searched}
    assert transfer == {("cifar100", "search"), ("cifar100", "heldout")}
    assert alone.best.search_kendall == alone.best.row(DATASET, "search").kendall
    assert "cifar100 (not searched: transfer)" in alone.table()


# ---- command line -------------------------------------------------------------------------------
def gm_lab(*args: str, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "GM_LAB_CACHE": str(cache)}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=180, env=env)


@pytest.mark.slow
def test_evolve_json_best_expression_scores_the_same_and_resumes_in_a_new_process(
    cache_root: Path, config, bench, tmp_path
):
    folder = tmp_path / "cli-run"
    tiny = ["--pop", "8", "--heldout-n", "12", *CLI_SAMPLE, *CLI_PROBE]
    out = gm_lab(
        "evolve", *tiny, "--gens", "2", "--checkpoint", str(folder), "--json", cache=cache_root
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)  # exactly one JSON object
    best = result["best"]
    assert {"expr", "search_kendall", "heldout_kendall"} <= set(best)
    assert result["generation"] == 2 and result["finished"]
    assert len(result["classic"]) == len(SearchConfig.from_dict(result["config"]).proxies)
    assert "gen   2/2" in out.stderr  # generation lines go to stderr with --json

    scored = gm_lab("score", best["expr"], *CLI_SAMPLE, *CLI_PROBE, "--json", cache=cache_root)
    assert scored.returncode == 0, scored.stderr
    score = json.loads(scored.stdout)
    assert score["n"] == 20 and score["probed"] == 0
    assert score["kendall"] == pytest.approx(best["search_kendall"], abs=1e-12)

    # continue in a new process: exactly what one uninterrupted run of 4 generations gives
    more = gm_lab("evolve", "--resume", str(folder), "--gens", "4", "--json", cache=cache_root)
    assert more.returncode == 0, more.stderr
    resumed = json.loads(more.stdout)
    whole = Search(config(pop=8, gens=4), benchmark=bench).run().to_dict()
    assert [r["expr"] for r in resumed["hall_of_fame"]] == [
        r["expr"] for r in whole["hall_of_fame"]
    ]
    assert resumed["logbook"] == whole["logbook"]
    assert SearchResult.load(folder / "result.json").generation == 4


def test_evolve_on_a_mixed_sample_and_score_reproduces_its_correlation(cache_root: Path):
    mixed = ["--dataset", DATASET, "--sample", "mixed", "--n", "20", "--seed", "0", *CLI_PROBE]
    out = gm_lab(
        "evolve", *mixed, "--heldout-n", "10", "--pop", "6", "--gens", "1", "--json",
        cache=cache_root,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    samples = result["samples"]
    assert samples["search"]["kind"] == samples["heldout"]["kind"] == "mixed"
    assert samples["search"]["n"] == 20 and samples["heldout"]["n"] == 10
    best = result["best"]
    scored = gm_lab("score", best["expr"], *mixed, "--json", cache=cache_root)
    assert scored.returncode == 0, scored.stderr
    score = json.loads(scored.stdout)
    assert score["n"] == 20 and score["probed"] == 0  # the search's very architectures
    assert score["kendall"] == pytest.approx(best["search_kendall"], abs=1e-12)


def test_score_rejects_a_malformed_expression_with_its_position(cache_root: Path):
    out = gm_lab("score", "mean(log(snip_l) +", "--n", "5", cache=cache_root)
    assert out.returncode == 2 and out.stdout == ""
    assert "column 19" in out.stderr and "^" in out.stderr and "Traceback" not in out.stderr


def test_evolve_help_and_defaults_follow_search_config():
    from gm_lab.cli.evolve import DEFAULTS

    defaults = SearchConfig()
    assert {k: getattr(defaults, k) for k in DEFAULTS} == DEFAULTS
    out = subprocess.run([*CLI, "evolve", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--resume" in out.stdout and "--heldout-sample" in out.stdout


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_evolve_killed_at_a_random_generation_resumes_to_the_identical_result(
    cache_root: Path, tmp_path, seed: int
):
    """Fault injection: SIGKILL (no clean-up at all) once a randomly drawn generation is
    checkpointed, then `--resume`: the final JSON equals the uninterrupted run's."""
    gens = 8
    run = ["--pop", "10", "--heldout-n", "12", *CLI_SAMPLE, *CLI_PROBE, "--gens", str(gens)]
    whole = gm_lab("evolve", *run, "--json", cache=cache_root)
    assert whole.returncode == 0, whole.stderr

    kill_after = random.Random(seed).randint(1, gens - 2)
    folder = tmp_path / "killed"
    env = {**os.environ, "GM_LAB_CACHE": str(cache_root)}
    command = [*CLI, "evolve", *run, "--checkpoint", str(folder), "--json"]
    victim = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if checkpoint_path(folder).is_file() and load_checkpoint(folder).generation >= kill_after:
            break
        time.sleep(0.01)
    victim.kill()
    victim.wait(timeout=30)
    done = load_checkpoint(folder).generation
    assert kill_after <= done  # usually the kill lands before the end; both are exercised

    resumed = gm_lab("evolve", "--resume", str(folder), "--json", cache=cache_root)
    assert resumed.returncode == 0, resumed.stderr
    first, second = json.loads(whole.stdout), json.loads(resumed.stdout)
    for key in ("best", "hall_of_fame", "logbook", "generation", "samples"):
        assert second[key] == first[key], key
