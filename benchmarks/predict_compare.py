"""The honest comparison (issue #16 §3): an evolved GP formula against learned predictors, on the
same labelled architectures and the same held-out ones.

Usage (from the repository root; the first run probes ~2,500 architectures, ~20 min on 2 cores):

    GM_LAB_DATA=../shared/data python benchmarks/predict_compare.py --seed 0 \
        --train-n 100 400 1000 --json benchmarks/predict_compare.json

Protocol, per train-n (seed 0; gm_lab.predict.protocol.split, drawn on CIFAR-10's labels; every
TSS architecture has all three datasets' labels, so the samples are the same for the three):
1,000 random held-out architectures, then train-n random labelled ones among the rest (disjoint,
final test set excluded). Per dataset, with the train architectures' test accuracy as the only
labels:

- best single classic proxy: the registered proxy (the 15 shared ones and `sed_like`) with the
  highest Kendall τ on the train architectures, judged on the held-out ones;
- evolved: `gm-lab evolve`'s engine on the train architectures alone (fitness τ on them; every
  per-layer statistic and those proxies as terminals; --gp-pop × --gp-gens, GP seed 0), its best
  expression judged on the held-out ones;
- RF (scikit-learn, GreenFactory's model) and GBM (LightGBM) on: proxies (the proxies and the
  mean and sum over layers of every statistic), arch (data-free features: one-hot cell, op
  counts, paths, params/FLOPs, sed_like), all (both), all + evolved (both, plus the evolved
  expression's score as one more feature), default hyper-parameters, seed 0.

Transfer: the formula evolved on CIFAR-10's labels and the CIFAR-10-trained predictors ("all")
rank the held-out architectures against CIFAR-100 and ImageNet16-120 accuracy.

Probes: full records of the CIFAR-10 network (batch 64, probe seed 0, the CIFAR-10 minibatch)
serve all three datasets (the backbone and its initialisation are the same; only the classifier
width differs), which is what makes the comparison affordable on a CPU; `sed_like` is
data-free. Kendall τ-b / Spearman ρ on the held-out architectures (gm_lab.metrics).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _provenance import header, record

from gm_lab.benchmark import Benchmark
from gm_lab.evolution.config import SearchConfig
from gm_lab.evolution.engine import Engine, EngineState
from gm_lab.evolution.fitness import FitnessFunction, Split
from gm_lab.expressions import evaluate, parse, to_text
from gm_lab.metrics import kendall, spearman
from gm_lab.predict import Features, arch_features, fit_predictor, probe_features, split
from gm_lab.probe.cache import ProbeArrays, ProbeCache
from gm_lab.probe.record import ProbeConfig
from gm_lab.probe.runner import probe_many

DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
STANDALONE = ("sed_like",)
MODELS = ("rf", "gbm")
FEATURE_SETS = ("proxies", "arch", "all", "all+evolved")


def rows_of(arrays: ProbeArrays, positions: np.ndarray) -> ProbeArrays:
    """The architectures at `positions` of `arrays` (trimmed to their longest network)."""
    width = int(arrays.n_layers[positions].max())
    return ProbeArrays(
        indices=arrays.indices[positions],
        archs=[arrays.archs[p] for p in positions],
        n_layers=arrays.n_layers[positions],
        mask=arrays.mask[positions, :width],
        layer_stats={n: v[positions, :width] for n, v in arrays.layer_stats.items()},
        proxies={n: v[positions] for n, v in arrays.proxies.items()},
    )


def evolve(arrays: ProbeArrays, truth: np.ndarray, dataset: str, pop: int, gens: int) -> str:
    """The best expression of a GP search on these architectures alone (fitness: τ on them)."""
    config = SearchConfig(datasets=(dataset,), standalone=STANDALONE, pop=pop, gens=gens, seed=0)
    state = EngineState.new(config)
    fitness = FitnessFunction([Split(dataset, "search", arrays, truth)], cache=state.fitness_cache)
    engine = Engine(config, fitness, state, yield_gil=False)
    for _ in range(gens + 1):
        engine.advance()
    return to_text(engine.best)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-n", type=int, nargs="+", default=[100, 400, 1000])
    parser.add_argument("--heldout-n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gp-pop", type=int, default=200)
    parser.add_argument("--gp-gens", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--json", type=Path, help="write the record here")
    args = parser.parse_args()

    bench = Benchmark.load("tss", progress=False)
    seeds = {"sample": args.seed, "gp": 0, "model": 0, "probe": 0}
    print(header(__file__, "tss", args.datasets, seeds, bench=bench, final_test="excluded"))
    accuracy = {d: bench.accuracy(d) for d in args.datasets}
    splits = {n: split(accuracy["cifar10"], n, args.heldout_n, args.seed) for n in args.train_n}
    union = np.unique(np.concatenate([np.r_[s.train, s.heldout] for s in splits.values()]))
    config = ProbeConfig()
    start = time.perf_counter()
    cache = probe_many(
        bench, union, config, args.workers, proxies=STANDALONE, cache=ProbeCache(config)
    )
    probe_seconds = time.perf_counter() - start
    arrays = cache.load_arrays(union, STANDALONE)
    position = {int(i): p for p, i in enumerate(arrays.indices)}
    proxy_names, proxy_values = probe_features(arrays)
    archs = [bench.arch(int(i)) for i in union]

    rows, evolved = [], {}
    for n, s in splits.items():
        train_pos = np.array([position[int(i)] for i in s.train])
        held_pos = np.array([position[int(i)] for i in s.heldout])
        train_arrays, held_arrays = rows_of(arrays, train_pos), rows_of(arrays, held_pos)
        for dataset in args.datasets:
            y_train, y_held = accuracy[dataset][s.train], accuracy[dataset][s.heldout]
            row: dict = {"dataset": dataset, "train_n": n}
            on_train = {p: kendall(v, y_train) for p, v in train_arrays.proxies.items()}
            best = max(on_train, key=lambda p: -np.inf if np.isnan(on_train[p]) else on_train[p])
            row["best_classic"] = best
            row["best_classic_kendall"] = kendall(held_arrays.proxies[best], y_held)
            row["best_classic_spearman"] = spearman(held_arrays.proxies[best], y_held)
            expr = evolve(train_arrays, y_train, dataset, args.gp_pop, args.gp_gens)
            tree = parse(expr)
            evolved[(n, dataset)] = expr
            row["evolved"] = expr
            held_scores = evaluate(tree, held_arrays)
            row["evolved_kendall"] = kendall(held_scores, y_held)
            row["evolved_spearman"] = spearman(held_scores, y_held)
            arch_names, arch_values = arch_features("tss", dataset, archs)
            evolved_all = np.nan_to_num(evaluate(tree, arrays), nan=0.0, posinf=0.0, neginf=0.0)
            blocks = {
                "proxies": (proxy_names, proxy_values),
                "arch": (arch_names, arch_values),
                "all": (proxy_names + arch_names, np.hstack([proxy_values, arch_values])),
                "all+evolved": (
                    [*proxy_names, *arch_names, "evolved"],
                    np.hstack([proxy_values, arch_values, evolved_all[:, None]]),
                ),
            }
            for feature_set, (names, values) in blocks.items():
                for model in MODELS:
                    predictor = fit_predictor(
                        model, "tss", dataset, feature_set.replace("+evolved", ""), names,
                        values[train_pos], y_train, s.train, seed=0,
                    )  # fmt: skip
                    held = Features(s.heldout, names, values[held_pos])
                    predicted = predictor.predict(held.columns(predictor.feature_names))
                    row[f"{model}_{feature_set}_kendall"] = kendall(predicted, y_held)
                    row[f"{model}_{feature_set}_spearman"] = spearman(predicted, y_held)
                    if dataset == "cifar10" and feature_set == "all":
                        row[f"{model}_transfer"] = {
                            d: kendall(predicted, accuracy[d][s.heldout]) for d in args.datasets
                        }
            if dataset == "cifar10":
                row["evolved_transfer"] = {
                    d: kendall(held_scores, accuracy[d][s.heldout]) for d in args.datasets
                }
            rows.append(row)
            print(f"# n={n} {dataset}: evolved {row['evolved_kendall']:.3f}, best classic "
                  f"{best} {row['best_classic_kendall']:.3f}, rf all "
                  f"{row['rf_all_kendall']:.3f}", file=sys.stderr)  # fmt: skip
    _print_tables(rows, args.datasets)
    if args.json:
        provenance = record(__file__, "tss", args.datasets, seeds, bench=bench,
                            final_test="excluded")  # fmt: skip
        args.json.write_text(json.dumps({
            "rows": rows, "probe_seconds": probe_seconds, "probed": len(union),
            "splits": {str(n): {"train": s.train.tolist(), "heldout": s.heldout.tolist()}
                       for n, s in splits.items()},
            "provenance": provenance,
        }, indent=1) + "\n")  # fmt: skip
    return 0


def _print_tables(rows: list[dict], datasets: list[str]) -> None:
    print("\nKendall τ on the 1,000 held-out architectures (same labels for every column)\n")
    heads = ["best classic", "evolved"] + [f"{m} {f}" for f in FEATURE_SETS for m in MODELS]
    print("| data | train-n | " + " | ".join(heads) + " |")
    print("|---|---:|" + "---|" * len(heads))
    for r in rows:
        cells = [f"{r['best_classic_kendall']:.3f} ({r['best_classic']})",
                 f"{r['evolved_kendall']:.3f}"]  # fmt: skip
        cells += [f"{r[f'{m}_{f}_kendall']:.3f}" for f in FEATURE_SETS for m in MODELS]
        print(f"| {r['dataset']} | {r['train_n']} | " + " | ".join(cells) + " |")
    print("\nTransfer: trained on CIFAR-10's labels, Kendall τ against each dataset\n")
    print("| train-n | model | " + " | ".join(datasets) + " |")
    print("|---:|---|" + "---|" * len(datasets))
    for r in rows:
        if r["dataset"] != "cifar10":
            continue
        for label, values in (("evolved", r["evolved_transfer"]), ("rf all", r["rf_transfer"]),
                              ("gbm all", r["gbm_transfer"])):  # fmt: skip
            print(f"| {r['train_n']} | {label} | "
                  + " | ".join(f"{values[d]:.3f}" for d in datasets) + " |")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
