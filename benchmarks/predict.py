"""Held-out rank correlation of the data-free accuracy predictor (issue #16, `--features arch`)
on the three NATS-Bench TSS datasets, for RF and LightGBM at several label budgets.

Protocol (gm_lab.predict.protocol, as `gm-lab predict`): per seed, 1,000 random held-out
architectures, then train-n random labelled ones among the rest (disjoint, final test set
excluded); Kendall tau / Spearman rho / MAE / RMSE on the held-out ones, mean ± std over seeds.
For context, the same held-out architectures ranked by two data-free single proxies (params,
sed_like), which need no labels.

    python benchmarks/predict.py [--seeds 5] [--train-n 100 400 1000] \
        [--json benchmarks/predict.json]

Prints a markdown table (for benchmarks/PREDICT.md) after a provenance header; `--json` also
writes every run with the provenance block.
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
from gm_lab.metrics import kendall, spearman
from gm_lab.predict import Features, arch_features, split, train_and_evaluate
from gm_lab.predict.protocol import summarise

DATASETS = ("cifar10", "cifar100", "ImageNet16-120")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--train-n", type=int, nargs="+", default=[100, 400, 1000])
    parser.add_argument("--heldout-n", type=int, default=1000)
    parser.add_argument("--models", nargs="+", default=["rf", "gbm"])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--json", type=Path, help="write every run and the provenance here")
    parser.add_argument(
        "--transfer",
        action="store_true",
        help="instead: train on one dataset's labels, rank the held-out architectures of every "
        "dataset (transfer across datasets)",
    )
    args = parser.parse_args()
    bench = Benchmark.load("tss", progress=False)
    print(header(__file__, "tss", args.datasets, {"seeds": args.seeds}, bench=bench,
                 final_test="excluded"))  # fmt: skip
    if args.transfer:
        return transfer(args, bench)
    rows, runs = [], []
    for dataset in args.datasets:
        start = time.perf_counter()
        names, values = arch_features("tss", dataset, [bench.arch(i) for i in range(bench.n_archs)])
        took = time.perf_counter() - start
        print(f"# {dataset}: {len(names)} features of all archs in {took:.1f} s", file=sys.stderr)
        col = {n: i for i, n in enumerate(names)}

        def features(indices: np.ndarray, values=values, names=names) -> Features:
            return Features(np.asarray(indices), names, values[np.asarray(indices)])

        accuracy = bench.accuracy(dataset)
        for n in args.train_n:
            splits = [split(accuracy, n, args.heldout_n, seed) for seed in range(args.seeds)]
            for model in args.models:
                metrics = []
                for s in splits:
                    run = train_and_evaluate(
                        "tss", dataset, accuracy, features, s, model, "arch", s.seed
                    )
                    metrics.append(run.metrics)
                    runs.append({"dataset": dataset, "train_n": n, "model": model,
                                 "seed": s.seed, **run.metrics})  # fmt: skip
                rows.append(_row(dataset, n, model, metrics))
                print(f"# {dataset} n={n} {model}: tau {rows[-1]['kendall']}", file=sys.stderr)
        # label-free baselines on the same held-out architectures (seeds of the first train-n)
        for proxy in ("params", "proxy_sed_like"):
            metrics = []
            for seed in range(args.seeds):
                held = split(accuracy, args.train_n[0], args.heldout_n, seed).heldout
                x, y = values[held, col[proxy]], accuracy[held]
                metrics.append({"kendall": kendall(x, y), "spearman": spearman(x, y),
                                "mae": float("nan"), "rmse": float("nan")})  # fmt: skip
            rows.append(_row(dataset, 0, proxy.removeprefix("proxy_") + " (single proxy)", metrics))
    print()
    print("| dataset | model | train-n | Kendall τ | Spearman ρ | MAE (points) | RMSE (points) |")
    print("|---|---|---:|---|---|---|---|")
    for r in rows:
        print(f"| {r['dataset']} | {r['model']} | {r['train_n'] or '—'} | {r['kendall']} | "
              f"{r['spearman']} | {r['mae']} | {r['rmse']} |")  # fmt: skip
    _write_record(args, bench, rows, runs)
    return 0


def transfer(args: argparse.Namespace, bench: Benchmark) -> int:
    """Train on the source dataset's labels (its features: the parameter count depends on the
    classes), then rank the same held-out architectures against each target's accuracy."""
    rows, runs = [], []
    for source in args.datasets:
        names, values = arch_features("tss", source, [bench.arch(i) for i in range(bench.n_archs)])

        def features(indices: np.ndarray, values=values, names=names) -> Features:
            return Features(np.asarray(indices), names, values[np.asarray(indices)])

        accuracy = bench.accuracy(source)
        for n in args.train_n:
            for model in args.models:
                per_target: dict[str, list[dict[str, float]]] = {t: [] for t in args.datasets}
                for seed in range(args.seeds):
                    s = split(accuracy, n, args.heldout_n, seed)
                    run = train_and_evaluate(
                        "tss", source, accuracy, features, s, model, "arch", seed
                    )
                    for target in args.datasets:
                        truth = bench.accuracy(target)[s.heldout]
                        m = {"kendall": kendall(run.predicted, truth),
                             "spearman": spearman(run.predicted, truth),
                             "mae": float("nan"), "rmse": float("nan")}  # fmt: skip
                        per_target[target].append(m)
                        runs.append({"source": source, "target": target, "train_n": n,
                                     "model": model, "seed": seed, **m})  # fmt: skip
                for target, metrics in per_target.items():
                    row = _row(target, n, model, metrics)
                    rows.append({"source": source, **row})
                    print(f"# {source} -> {target} n={n} {model}: tau {row['kendall']}",
                          file=sys.stderr)  # fmt: skip
    print()
    print("| trained on | judged on | model | train-n | Kendall τ | Spearman ρ |")
    print("|---|---|---|---:|---|---|")
    for r in rows:
        print(f"| {r['source']} | {r['dataset']} | {r['model']} | {r['train_n']} | "
              f"{r['kendall']} | {r['spearman']} |")  # fmt: skip
    _write_record(args, bench, rows, runs)
    return 0


def _write_record(args: argparse.Namespace, bench: Benchmark, rows: list, runs: list) -> None:
    """The JSON record (`--json`): the table's rows, every run, and their provenance."""
    if not args.json:
        return
    provenance = record(
        __file__, "tss", args.datasets, {"seeds": list(range(args.seeds))}, bench=bench,
        final_test="excluded", probe=False,
    )  # fmt: skip
    args.json.write_text(
        json.dumps({"rows": rows, "runs": runs, "provenance": provenance}, indent=1) + "\n"
    )


def _row(dataset: str, n: int, model: str, metrics: list[dict[str, float]]) -> dict:
    out: dict = {"dataset": dataset, "train_n": n, "model": model}
    for key in ("kendall", "spearman", "mae", "rmse"):
        s = summarise([m[key] for m in metrics])
        digits = 3 if key in ("kendall", "spearman") else 2
        out[key] = "—" if np.isnan(s["mean"]) else f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f}"
    return out


if __name__ == "__main__":
    sys.exit(main())
