"""Evolved proxies against the classic ones on NATS-Bench TSS: the quality table of issue 4, and
the literature check of the classic proxies (issue 3) on the same architectures.

The architectures, per dataset D in CIFAR-10, CIFAR-100, ImageNet16-120:

- search sample and stratified held-out sample: exactly what `gm-lab evolve` draws for D with
  `--sample stratified --n SEARCH --heldout HELDOUT --seed 0` (10 equal-width accuracy bins);
- one uniform random held-out sample R of `--random` architectures (default 1,000), drawn once
  (seed 0) among the architectures that none of the three datasets' search or stratified
  held-out samples took, so R is unseen by every search and shared by all datasets: it
  estimates the whole-space τ and carries the transfer scores (evolved on D, judged on E);
- with `--search-sample mixed` (or `random`), the search sample is instead what `gm-lab evolve
  --sample mixed --n SEARCH_N --seed 0` draws when R and D's stratified held-out sample are
  kept out of it (`SearchConfig.exclude`); the held-out samples and R stay the same.

None of these samples takes an architecture of the final test set (`gm_lab.sampling.
final_test_indices`: 1,000 TSS architectures kept for the headline figures). `--use-final-test`
gives the old samples, drawn among all architectures: what the recorded figures used. The
committed benchmarks/quality*.json were produced before that rule (and before results carried
their provenance); they stay as they are, and repeating them takes `--use-final-test` (an
`evolve` into one of them without it is refused: its runs' R differs from the new one).

Three steps, each resumable (the probe cache keeps what is done):

    export GM_LAB_DATA=../shared/data
    python benchmarks/quality.py probe        # ~1.3 k archs per dataset, 2 workers
    python benchmarks/quality.py literature   # classic proxies' Spearman ρ on R vs published
    python benchmarks/quality.py evolve --seeds 0 1 2 --out quality-new.json

(`--search-sample mixed --search-n 600` on `probe` and `evolve` for the mixed search sample.)

`evolve` prints the per-dataset table (mean ± std over GP seeds, every classic proxy on the
same architectures) and the transfer table, and saves every run's numbers as JSON. Every step's
output starts with the run's provenance line, which `evolve` repeats above its tables
(benchmarks/_provenance.py: gm_lab version and commit, probe version, library versions, table
fingerprint, seeds, final test set rule, command). In the JSON each run carries the
`"provenance"` of the command that ran it, and the file's top-level `"provenance"` is that of
the last command that wrote it (which may have filled in older runs' transfer scores).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from _provenance import describe, record

from gm_lab.benchmark import DATASETS, Benchmark
from gm_lab.evolution import Search, SearchConfig
from gm_lab.evolution.data import draw_samples
from gm_lab.expressions import parse, score_expression
from gm_lab.metrics import kendall, spearman
from gm_lab.probe.cache import ProbeCache
from gm_lab.probe.runner import probe_many
from gm_lab.sampling import SAMPLE_KINDS, Sample, final_test_indices, random_sample

PUBLISHED_SPEARMAN = {  # Abdelfattah et al. ICLR 2021 Table 1 (all of NAS-Bench-201, batch 64)
    "synflow": (0.74, 0.76, 0.75),
    "jacov": (0.73, 0.70, 0.70),
    "snip": (0.60, 0.64, 0.58),
    "grad_norm": (0.59, 0.64, 0.58),
    "grasp": (0.51, 0.55, 0.55),
    "fisher": (0.36, 0.39, 0.33),
    "naswot": (0.80, None, None),  # Mellor et al. ICML 2021 (0.78-0.81 by batch)
    "params": (0.75, None, None),  # Abdelfattah et al. Table 1 (#params)
}
SHORT = {"cifar10": "C10", "cifar100": "C100", "ImageNet16-120": "IN16"}
SPACE = "tss"
SAMPLE_SEED = 0  # the search and stratified held-out samples' seed, and R's


@dataclass
class Plan:
    """The samples of every dataset and the shared random held-out sample."""

    configs: dict[str, SearchConfig]
    samples: dict[str, tuple[Sample, Sample]]  # dataset -> (search, stratified held-out)
    random: Sample
    final_test: str = "excluded"  # "included": the samples could take the final test set
    provenance: dict[str, Any] = field(default_factory=dict)  # this command's (set by main)

    def indices(self, dataset: str) -> np.ndarray:
        search, heldout = self.samples[dataset]
        return np.concatenate([search.indices, heldout.indices, self.random.indices])


def make_plan(bench: Benchmark, args: argparse.Namespace) -> Plan:
    configs, samples = {}, {}
    for dataset in DATASETS:
        config = SearchConfig(
            datasets=(dataset,),
            sample="stratified",
            n_search=args.search,
            n_heldout=args.heldout,
            seed=SAMPLE_SEED,
            pop=args.pop,
            gens=args.gens,
            workers=args.workers,
            use_final_test=args.use_final_test,
        )
        search, heldout = draw_samples(bench, config)
        assert heldout is not None
        configs[dataset], samples[dataset] = config, (search, heldout)
    taken = np.concatenate([np.concatenate([s.indices, h.indices]) for s, h in samples.values()])
    shared = bench.accuracy("cifar10").copy()
    for dataset in DATASETS[1:]:
        shared[~np.isfinite(bench.accuracy(dataset))] = np.nan
    if not args.use_final_test:
        taken = np.concatenate([taken, final_test_indices(SPACE)])
    rand = random_sample(shared, args.random, seed=SAMPLE_SEED, exclude=np.unique(taken))
    if args.search_sample != "stratified":
        for dataset in DATASETS:
            heldout = samples[dataset][1]
            kept_apart = np.concatenate([rand.indices, heldout.indices])
            config = configs[dataset].with_changes(
                sample=args.search_sample,
                n_search=args.search_n,
                n_heldout=0,
                exclude=tuple(kept_apart),
            )
            search, _ = draw_samples(bench, config)
            configs[dataset], samples[dataset] = config, (search, heldout)
    return Plan(configs, samples, rand, "included" if args.use_final_test else "excluded")


def seeds(config: SearchConfig, gp_seed: int | None = None) -> dict[str, int | None]:
    """The seeds a provenance block records: samples, R, probe (and a run's GP seed)."""
    out = {"sample": config.seed, "random_sample": SAMPLE_SEED, "probe": config.probe_seed}
    return out if gp_seed is None else {**out, "gp": gp_seed}


def cmd_probe(bench: Benchmark, plan: Plan, args: argparse.Namespace) -> None:
    for dataset in args.datasets:
        config = plan.configs[dataset].probe_config(dataset)
        wanted = plan.indices(dataset)
        cache = ProbeCache(config)
        print(f"{dataset}: {len(wanted)} architectures, {len(cache.missing(wanted))} to probe")
        began = time.perf_counter()
        probe_many(bench, wanted, config, workers=args.workers, cache=cache)
        print(f"{dataset}: done in {time.perf_counter() - began:.0f} s ({cache.folder})")


def sample_split(bench: Benchmark, plan: Plan, dataset: str, sample: Sample):
    """The probe arrays of `sample` under `dataset`'s probe, its accuracy there, and the cache."""
    cache = ProbeCache(plan.configs[dataset].probe_config(dataset))
    arrays = cache.load_arrays(sample.indices)
    return arrays, bench.accuracy(dataset)[arrays.indices], cache


def random_split(bench: Benchmark, plan: Plan, dataset: str):
    """`sample_split` of the shared random held-out sample R."""
    return sample_split(bench, plan, dataset, plan.random)


def cmd_literature(bench: Benchmark, plan: Plan, args: argparse.Namespace) -> None:
    table: dict[str, dict[str, tuple[float, float]]] = {}
    sources = {}
    for dataset in args.datasets:
        arrays, truth, cache = random_split(bench, plan, dataset)
        sources[dataset] = (cache.meta() or {}).get("provenance", {}).get("source", "?")
        table[dataset] = {
            p: (spearman(v, truth), kendall(v, truth)) for p, v in arrays.proxies.items()
        }
    datasets = args.datasets
    first = datasets[0]
    order = sorted(table[first], key=lambda p: -abs(table[first][p][0]))
    print(
        f"TSS, random held-out sample R: n={len(plan.random)} (seed {SAMPLE_SEED}, final test "
        f"set {plan.final_test}), batch 64, probe seed 0"
    )
    for dataset in args.datasets:
        print(f"- {dataset} inputs: {sources[dataset]}")
    head = " | ".join(f"{SHORT[d]} ρ | {SHORT[d]} τ | {SHORT[d]} published ρ" for d in datasets)
    print(f"\n| proxy | {head} |")
    print("|---" * (1 + 3 * len(args.datasets)) + "|")
    for proxy in order:
        cells = []
        for dataset in args.datasets:
            rho, tau = table[dataset][proxy]
            pub = PUBLISHED_SPEARMAN.get(proxy, (None, None, None))[DATASETS.index(dataset)]
            diff = "" if pub is None or math.isnan(rho) else f"{pub:.2f} ({rho - pub:+.2f})"
            cells += [f"{rho:.3f}", f"{tau:.3f}", diff]
        print(f"| {proxy} | " + " | ".join(cells) + " |")


def run_one(
    bench: Benchmark, plan: Plan, dataset: str, seed: int, joint: str | None = None
) -> dict[str, Any]:
    """One GP run on `dataset` (GP seed `seed`), judged on its held-out samples and on R.

    With `joint`, the fitness is the mean τ on `dataset` and `joint` (EZNAS-style), on the same
    architectures (drawn on `dataset`'s accuracy, probed on both); reported for `dataset`."""
    datasets = (dataset,) if joint is None else (dataset, joint)
    config = plan.configs[dataset].with_changes(gp_seed=seed, datasets=datasets)
    began = time.perf_counter()
    result = Search(config, benchmark=bench).run()
    wall = time.perf_counter() - began
    best = result.best
    assert best is not None
    tree = parse(best.expr)
    out: dict[str, Any] = {
        "dataset": dataset,
        "seed": seed,
        "search_sample": config.sample,
        "expr": best.expr,
        "size": best.size,
        "joint": joint,
        "search_kendall": best.row(dataset, "search").kendall,
        "seconds": {"total": round(wall, 1), **result.seconds},
    }
    for split, (arrays, truth) in {
        "strat": sample_split(bench, plan, dataset, plan.samples[dataset][1])[:2],
        "random": random_split(bench, plan, dataset)[:2],
    }.items():
        scored = score_expression(tree, arrays, truth)
        out[f"{split}_kendall"], out[f"{split}_spearman"] = scored["kendall"], scored["spearman"]
        out[f"classic_{split}"] = {p: kendall(v, truth) for p, v in arrays.proxies.items()}
    out["transfer"] = {}
    fill_transfer(bench, plan, out)
    out["provenance"] = record(
        __file__, SPACE, datasets, seeds(config, seed), bench=bench, final_test=plan.final_test
    )
    return out


def fill_transfer(bench: Benchmark, plan: Plan, run: dict[str, Any]) -> None:
    """τ on R of a run's best expression against the other datasets' accuracy (probed on
    theirs), for each dataset whose probe cache already holds R."""
    tree = parse(run["expr"])
    for other in DATASETS:
        if other == run["dataset"] or other in run["transfer"]:
            continue
        cache = ProbeCache(plan.configs[other].probe_config(other))
        if len(cache.missing(plan.random.indices)) == 0:
            arrays, truth, _ = random_split(bench, plan, other)
            run["transfer"][other] = score_expression(tree, arrays, truth)["kendall"]


def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def print_tables(runs: list[dict[str, Any]], datasets: list[str]) -> None:
    for dataset in datasets:
        mine = [r for r in runs if r["dataset"] == dataset]
        if not mine:
            continue
        kind = mine[0].get("search_sample", "stratified")
        print(f"\n### {dataset}: Kendall τ ({len(mine)} GP seeds)\n")
        print(f"| proxy | search ({kind}) | held-out stratified | held-out random R |")
        print("|---|---|---|---|")
        print(
            f"| **evolved** | {mean_std([r['search_kendall'] for r in mine])} | "
            f"{mean_std([r['strat_kendall'] for r in mine])} | "
            f"{mean_std([r['random_kendall'] for r in mine])} |"
        )
        classic = mine[0]["classic_random"]
        for proxy in sorted(classic, key=lambda p: -abs(classic[p])):
            strat = mine[0]["classic_strat"].get(proxy)
            strat_text = "" if strat is None else f"{strat:.3f}"
            print(f"| {proxy} |  | {strat_text} | {classic[proxy]:.3f} |")
        walls = [r["seconds"]["total"] for r in mine]
        print(f"\nGP run wall time: {mean_std(walls)} s; best expressions:")
        for r in mine:
            print(f"- seed {r['seed']} ({r['size']} nodes): `{r['expr']}`")
    print("\n### Transfer: Kendall τ on R, evolved on the row's dataset (mean ± std)\n")
    print("| evolved on | " + " | ".join(datasets) + " |")
    print("|---" * (1 + len(datasets)) + "|")
    for dataset in datasets:
        mine = [r for r in runs if r["dataset"] == dataset]
        if not mine:
            continue
        cells = []
        for other in datasets:
            key = "random_kendall"
            values = [r[key] if other == dataset else r["transfer"].get(other) for r in mine]
            known = [v for v in values if v is not None]
            cells.append(mean_std(known) if known else "not probed")
        print(f"| {dataset} | " + " | ".join(cells) + " |")


def cmd_evolve(bench: Benchmark, plan: Plan, args: argparse.Namespace) -> None:
    out = Path(args.out)
    runs: list[dict[str, Any]] = json.loads(out.read_text())["runs"] if out.exists() else []
    check_same_rule(out, runs, plan.final_test)
    for run in runs:  # transfers whose target dataset was probed after the run
        fill_transfer(bench, plan, run)
    done = {(r["dataset"], r["seed"]) for r in runs}
    for dataset in args.datasets:
        for seed in args.seeds:
            if (dataset, seed) in done:
                continue
            run = run_one(bench, plan, dataset, seed, args.joint)
            print(
                f"{dataset} seed {seed}: strat τ {run['strat_kendall']:.3f}, random τ "
                f"{run['random_kendall']:.3f}, {run['seconds']['total']:.0f} s: {run['expr']}",
                flush=True,
            )
            runs.append(run)
            save(out, runs, plan)  # each run kept at once
    save(out, runs, plan)
    print(f"\n{describe(plan.provenance)}")
    print_tables(runs, args.datasets)


def save(out: Path, runs: list[dict[str, Any]], plan: Plan) -> None:
    out.write_text(json.dumps({"runs": runs, "provenance": plan.provenance}, indent=1))


def check_same_rule(out: Path, runs: list[dict[str, Any]], final_test: str) -> None:
    """Refuse to add runs to a file whose runs drew their samples under the other final test
    set rule (their R differs). A run without provenance predates the rule: "included"."""
    rules = [(r.get("provenance") or {}).get("final_test", "included") for r in runs]
    other = sum(rule != final_test for rule in rules)
    if other:
        hint = "drop --use-final-test" if final_test == "included" else "add --use-final-test"
        raise SystemExit(
            f"{out}: {other} of its {len(runs)} runs drew their samples with the final test set "
            f"{'excluded' if final_test == 'included' else 'included'}, this command with it "
            f"{final_test}: their samples differ. Write to another --out, or {hint}."
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["probe", "literature", "evolve"])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument(
        "--search", type=int, default=300, help="stratified search sample (fixes R, too)"
    )
    parser.add_argument(
        "--search-sample", choices=SAMPLE_KINDS, default="stratified", help="search sample kind"
    )
    parser.add_argument(
        "--search-n", type=int, default=600, help="search sample size when not stratified"
    )
    parser.add_argument("--heldout", type=int, default=200, help="stratified held-out sample")
    parser.add_argument("--random", type=int, default=1000, help="random held-out sample R")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="GP seeds")
    parser.add_argument("--pop", type=int, default=100)
    parser.add_argument("--gens", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/quality.json")
    parser.add_argument(
        "--joint", help="evolve: fitness = mean τ on each dataset and this one (same archs)"
    )
    parser.add_argument(
        "--use-final-test",
        action="store_true",
        help="let the samples take the final test set: the old samples, which the recorded "
        "figures (benchmarks/quality*.json) used",
    )
    return parser


def main() -> None:
    args = build_parser().parse_args()
    bench = Benchmark.load(SPACE)
    plan = make_plan(bench, args)
    config = plan.configs[DATASETS[0]]
    plan.provenance = record(
        __file__, SPACE, DATASETS, seeds(config), bench=bench, final_test=plan.final_test
    )
    print(describe(plan.provenance), flush=True)
    {"probe": cmd_probe, "literature": cmd_literature, "evolve": cmd_evolve}[args.step](
        bench, plan, args
    )


if __name__ == "__main__":
    main()
