"""`gm-lab predict`: train an accuracy predictor on N labelled architectures and judge it on a
disjoint random held-out sample (issue #16; engine: gm_lab.predict).

`--features arch` needs no probe (data-free architecture features); `proxies` and `all` read
the probe cache and probe the architectures it lacks first (like `gm-lab score`). `--curve` runs
the learning curve (train-n 25 ... 1000, mean and std over `--seeds` seeds).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from gm_lab.benchmark import DATASETS, SPACES, Benchmark, normalise_dataset
from gm_lab.cli.checks import writable_folder
from gm_lab.cli.probe import _check_cache, _config, _fill_cache, _json_safe, _probe_arguments
from gm_lab.predict.features import FEATURE_SETS, Features, build_features, needs_probe
from gm_lab.predict.model import MODELS, PredictorError
from gm_lab.predict.protocol import (
    CURVE_SEEDS,
    CURVE_SIZES,
    curve_sizes,
    split,
    summarise,
    train_and_evaluate,
)
from gm_lab.provenance import data_fingerprint, run_provenance


def register(commands: argparse._SubParsersAction) -> None:
    predict = commands.add_parser(
        "predict",
        help="train an accuracy predictor (random forest / LightGBM) and judge it on held-out "
        "architectures",
        description=(
            "Train a regressor that predicts test accuracy from architecture features on "
            "--train-n random labelled architectures, and report Kendall tau, Spearman rho, MAE "
            "and RMSE on --heldout-n other random architectures (both outside the final test "
            "set). --features arch needs no probe; proxies and all probe what the cache lacks."
        ),
    )
    predict.add_argument("--space", choices=sorted(SPACES), default="tss", help="search space")
    predict.add_argument(
        "--dataset", type=normalise_dataset, default="cifar10", help=f"one of {list(DATASETS)}"
    )
    predict.add_argument(
        "--train-n", type=int, default=400, help="labelled architectures to train on"
    )
    predict.add_argument(
        "--heldout-n", type=int, default=1000, help="held-out architectures to judge on"
    )
    predict.add_argument("--model", choices=MODELS, default="rf", help="rf or gbm (LightGBM)")
    predict.add_argument(
        "--features",
        choices=FEATURE_SETS,
        default="arch",
        help="arch: data-free architecture features (no probe); proxies: every probe-cache "
        "proxy and per-layer statistic summaries; all: both",
    )
    predict.add_argument("--seed", type=int, default=0, help="seed of the samples and the model")
    predict.add_argument(
        "--curve",
        action="store_true",
        help=f"learning curve: train-n in {list(CURVE_SIZES)} (those that fit), mean and std "
        "over --seeds seeds (--train-n does not apply)",
    )
    predict.add_argument(
        "--seeds", type=int, default=CURVE_SEEDS, help="seeds of --curve (seed, seed+1, ...)"
    )
    predict.add_argument(
        "--expr",
        action="append",
        type=str.strip,
        default=[],
        metavar="EXPR",
        help="add a proxy expression's score (e.g. an evolved proxy, as gm-lab evolve prints it) "
        "as a feature; repeatable; probes like --features proxies",
    )
    predict.add_argument(
        "--tune",
        action="store_true",
        help="pick the model's hyper-parameters by a small seeded 3-fold search on the training "
        "architectures alone (gm_lab.predict.model.TUNE_GRID)",
    )
    predict.add_argument("--save", type=Path, metavar="FILE", help="save the trained predictor")
    predict.add_argument(
        "--load",
        type=Path,
        metavar="FILE",
        help="instead of training: load a saved predictor (of --space/--dataset) and judge it on "
        "--heldout-n random architectures outside its training set",
    )
    predict.add_argument(
        "--top",
        type=int,
        default=0,
        metavar="K",
        help="with a data-free predictor (features arch): also list the K architectures of the "
        "whole space it predicts best",
    )
    predict.add_argument("--force", action="store_true", help="let --save replace a file")
    predict.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    _probe_arguments(predict)
    predict.set_defaults(run=run_predict)


def _check_args(args: argparse.Namespace) -> None:
    from gm_lab.cli.probe import resolve_scorer

    for expr in args.expr:
        resolve_scorer(expr)  # a malformed expression or unknown proxy: refused before any work
    if args.load is not None and (args.save or args.curve or args.tune or args.expr):
        raise PredictorError("--load judges a saved predictor: no --save, --curve, --tune, --expr")
    if args.seed < 0:
        raise PredictorError(f"--seed must be 0 or more, got {args.seed}")
    if args.top < 0:
        raise PredictorError(f"--top must be 0 or more, got {args.top}")
    if args.curve and args.save:
        raise PredictorError("--save keeps one predictor: it does not go with --curve")
    if args.curve and args.seeds < 2:
        raise PredictorError(f"--seeds must be at least 2 for a curve, got {args.seeds}")
    if args.save is not None:
        if args.save.is_dir():
            raise PredictorError(f"--save {args.save} is a folder; give a file name")
        if args.save.exists() and not args.force:
            raise PredictorError(f"--save {args.save} exists; add --force to replace it")
        writable_folder(args.save.resolve().parent, "the folder of --save")


class _FeatureSource:
    """Features of any architecture among `indices`, computed once (probing what is missing)."""

    def __init__(self, bench: Benchmark, indices: np.ndarray, args: argparse.Namespace):
        self.run: dict[str, Any] | None = None
        indices = np.unique(np.asarray(indices, dtype=np.int64))
        arrays = None
        if needs_probe(args.features) or args.expr:
            from gm_lab.cli.probe import standalone_used

            standalone = sorted({n for e in args.expr for n in standalone_used(e)})
            _check_cache()
            cache, self.run = _fill_cache(bench, indices, args, standalone)
            arrays = cache.load_arrays(indices, standalone)
        archs = [bench.arch(int(i)) for i in indices]
        table = build_features(args.space, args.dataset, indices, archs, args.features, arrays)
        if args.expr:
            table = _with_expressions(table, args.expr, arrays)
        self.table = table
        self.row = {int(i): r for r, i in enumerate(indices)}

    def __call__(self, indices: np.ndarray) -> Features:
        rows = [self.row[int(i)] for i in indices]
        return Features(np.asarray(indices), self.table.names, self.table.values[rows])


def _with_expressions(table: Features, exprs: list[str], arrays: Any) -> Features:
    """`table` plus one column per expression: its score (`expr:<text>`; non-finite mapped as
    every feature)."""
    from gm_lab.cli.probe import resolve_scorer
    from gm_lab.predict.features import finite

    names = list(table.names)
    columns = [table.values]
    for expr in exprs:
        if f"expr:{expr}" in names:
            continue
        with np.errstate(all="ignore"):
            score = np.asarray(resolve_scorer(expr)(arrays), dtype=float)
        names.append(f"expr:{expr}")
        columns.append(finite(score).reshape(-1, 1))
    return Features(table.indices, names, np.hstack(columns))


def run_predict(args: argparse.Namespace) -> int:
    _check_args(args)
    bench = Benchmark.load(args.space, progress=not args.json)
    accuracy = bench.accuracy(args.dataset)
    if args.load is not None:
        return _run_loaded(args, bench, accuracy)
    if args.curve:
        return _run_curve(args, bench, accuracy)
    the_split = split(accuracy, args.train_n, args.heldout_n, args.seed)
    source = _FeatureSource(bench, np.concatenate([the_split.train, the_split.heldout]), args)
    fingerprint = data_fingerprint(args.space, [args.dataset], bench)
    run = train_and_evaluate(
        args.space,
        args.dataset,
        accuracy,
        source,
        the_split,
        args.model,
        args.features,
        args.seed,
        fingerprint=fingerprint,
        tuned=args.tune,
    )
    if args.save is not None:
        run.predictor.save(args.save)
    result: dict[str, Any] = {
        "space": args.space,
        "dataset": args.dataset,
        "model": args.model,
        "features": args.features,
        "feature_names": run.predictor.feature_names,
        "params": run.predictor.params,
        "tuning": run.tuning,
        **run.metrics,
        "protocol": _protocol(args, len(run.split.train)),
        "train_indices": [int(i) for i in run.split.train],
        "heldout_indices": [int(i) for i in run.split.heldout],
        "predictions": [
            {"index": int(i), "arch": bench.arch(int(i)), "predicted": float(p), "test": float(t)}
            for i, p, t in zip(run.split.heldout, run.predicted, run.truth, strict=True)
        ],
        "importances": run.predictor.importances(),
        "saved": None if args.save is None else str(args.save),
        "top": _top(bench, run.predictor, args.top) if args.top else None,
        "probe": _config(args).describe() if source.run else None,
        "probe_run": source.run,
        "provenance": _provenance(args, bench),
    }
    if args.json:
        print(json.dumps(_json_safe(result)))
        return 0
    print(
        f"{args.model} on {args.features} features ({len(run.predictor.feature_names)}), "
        f"{args.space}/{args.dataset}"
    )
    print(f"  protocol      {result['protocol']['text']}")
    print(f"  Kendall tau   {run.metrics['kendall']:+.4f}")
    print(f"  Spearman rho  {run.metrics['spearman']:+.4f}")
    print(f"  MAE           {run.metrics['mae']:.3f} accuracy points")
    print(f"  RMSE          {run.metrics['rmse']:.3f} accuracy points")
    if run.tuning:
        chosen = {k: run.predictor.params[k] for k in run.tuning[0]["params"]}
        print(f"  tuned         {chosen} (3-fold CV on the training architectures)")
    top = sorted(result["importances"].items(), key=lambda kv: -kv[1])[:5]
    print("  top features  " + ", ".join(f"{n} {v:.2f}" for n, v in top))
    if args.save is not None:
        print(f"  saved         {args.save}")
    if args.top:
        _print_top(_top(bench, run.predictor, args.top))
    if source.run:
        print(
            f"  probed {source.run['probed']}, reused {source.run['reused']}; "
            f"cache: {source.run['cache']}",
            file=sys.stderr,
        )
    return 0


def _top(bench: Benchmark, predictor: Any, k: int) -> list[dict[str, Any]]:
    """The k architectures of the whole space a data-free predictor ranks best."""
    if predictor.feature_set != "arch" or any(
        n.startswith("expr:") for n in predictor.feature_names
    ):
        raise PredictorError(
            "--top ranks the whole space: it needs a data-free predictor (--features arch, no "
            "--expr); one on probe features would probe every architecture"
        )
    from gm_lab.predict.features import arch_features

    archs = [bench.arch(i) for i in range(bench.n_archs)]
    names, values = arch_features(predictor.space, predictor.dataset, archs)
    table = Features(np.arange(len(archs)), names, values)
    predicted = predictor.predict(table.columns(predictor.feature_names))
    truth = bench.accuracy(predictor.dataset)
    best = np.argsort(-predicted, kind="stable")[:k]
    return [
        {"index": int(i), "arch": archs[i], "predicted": float(predicted[i]),
         "test": float(truth[i]), "trained_on": bool(np.isin(i, predictor.train_indices))}
        for i in best
    ]  # fmt: skip


def _print_top(top: list[dict[str, Any]]) -> None:
    print(f"  top {len(top)} predicted (index, predicted %, true %, arch):")
    for t in top:
        seen = " (a training architecture)" if t["trained_on"] else ""
        print(f"    {t['index']:>6}  {t['predicted']:6.2f}  {t['test']:6.2f}  {t['arch']}{seen}")


def _run_loaded(args: argparse.Namespace, bench: Benchmark, accuracy: np.ndarray) -> int:
    """Judge a saved predictor on random architectures outside its training set."""
    from gm_lab.predict.model import load
    from gm_lab.predict.protocol import scores
    from gm_lab.provenance import truth_fingerprint
    from gm_lab.sampling import draw_sample

    predictor = load(args.load, space=args.space, dataset=args.dataset)
    args.features = predictor.feature_set
    args.expr = [n.removeprefix("expr:") for n in predictor.feature_names if n.startswith("expr:")]
    held = draw_sample(
        accuracy, "random", args.heldout_n, seed=[args.seed, 1], exclude=predictor.train_indices
    ).indices  # type: ignore[arg-type]
    source = _FeatureSource(bench, held, args)
    predicted = predictor.predict(source(held).columns(predictor.feature_names))
    truth = accuracy[held]
    metrics = scores(predicted, truth)
    recorded = ((predictor.fingerprint or {}).get("truth_sha256") or {}).get(args.dataset)
    same_truth = recorded is None or recorded == truth_fingerprint(accuracy)
    result = {
        "loaded": str(args.load),
        "space": args.space,
        "dataset": args.dataset,
        "model": predictor.model,
        "features": predictor.feature_set,
        **metrics,
        "train_n": len(predictor.train_indices),
        "heldout_indices": [int(i) for i in held],
        "predictions": [
            {"index": int(i), "arch": bench.arch(int(i)), "predicted": float(p), "test": float(t)}
            for i, p, t in zip(held, predicted, truth, strict=True)
        ],
        "same_benchmark_table": same_truth,
        "top": _top(bench, predictor, args.top) if args.top else None,
        "provenance": _provenance(args, bench),
    }
    if args.json:
        print(json.dumps(_json_safe(result)))
        return 0
    trained = f"{len(predictor.train_indices):,} {args.space}/{args.dataset} architectures"
    print(
        f"{args.load}: {predictor.model} on {predictor.feature_set} features, trained on {trained}"
    )
    print(f"  judged on     {len(held):,} random architectures outside its training set and the "
          f"final test set (seed {args.seed})")  # fmt: skip
    print(f"  Kendall tau   {metrics['kendall']:+.4f}")
    print(f"  Spearman rho  {metrics['spearman']:+.4f}")
    print(f"  MAE           {metrics['mae']:.3f} accuracy points")
    print(f"  RMSE          {metrics['rmse']:.3f} accuracy points")
    if not same_truth:
        print("  note          trained on another benchmark table (its test accuracies differ)")
    if result["top"]:
        _print_top(result["top"])
    return 0


def _protocol(args: argparse.Namespace, train_n: int) -> dict[str, Any]:
    text = (
        f"train on {train_n:,} random labelled architectures, judge on {args.heldout_n:,} other "
        f"random ones (disjoint; both outside the final test set), seed {args.seed}; target: "
        f"{args.dataset} test accuracy (%)"
    )
    return {
        "train_n": train_n,
        "heldout_n": args.heldout_n,
        "sample": "random",
        "seed": args.seed,
        "final_test": "excluded",
        "target": f"{args.dataset} test accuracy (%)",
        "text": text,
    }


def _provenance(args: argparse.Namespace, bench: Benchmark) -> dict[str, Any]:
    seeds: dict[str, int | None] = {"sample": args.seed, "model": args.seed}
    probed = needs_probe(args.features) or bool(args.expr)
    if probed:
        seeds["probe"] = args.probe_seed
    return run_provenance(
        getattr(args, "argv", None),
        args.space,
        [args.dataset],
        seeds,
        bench,
        probe=probed,
        final_test="excluded",
    )


def _run_curve(args: argparse.Namespace, bench: Benchmark, accuracy: np.ndarray) -> int:
    sizes = curve_sizes(accuracy, args.heldout_n)
    seeds = [args.seed + k for k in range(args.seeds)]
    splits = {(s, n): split(accuracy, n, args.heldout_n, s) for s in seeds for n in sizes}
    every = np.concatenate([np.concatenate([p.train, p.heldout]) for p in splits.values()])
    source = _FeatureSource(bench, every, args)
    protocol = (
        f"per seed: {args.heldout_n:,} random held-out architectures, then each train-n "
        "drawn at random among the rest (disjoint; final test set excluded); mean ± std "
        f"over {len(seeds)} seeds"
    )
    if not args.json:
        print(f"learning curve of {args.model} on {args.features} features, "
              f"{args.space}/{args.dataset}: {protocol}", flush=True)  # fmt: skip
    rows = []
    for n in sizes:
        runs = []
        for s in seeds:
            run = train_and_evaluate(
                args.space, args.dataset, accuracy, source, splits[s, n], args.model,
                args.features, s, tuned=args.tune,
            )  # fmt: skip
            runs.append({"seed": s, **run.metrics})
        row = {"train_n": n, "runs": runs}
        for key in ("kendall", "spearman", "mae", "rmse"):
            row[key] = summarise([r[key] for r in runs])
        rows.append(row)
        if not args.json:
            print(
                f"  train-n {n:>5}  tau {row['kendall']['mean']:.4f} ± {row['kendall']['std']:.4f}"
                f"  rho {row['spearman']['mean']:.4f} ± {row['spearman']['std']:.4f}"
                f"  MAE {row['mae']['mean']:.3f}  RMSE {row['rmse']['mean']:.3f}",
                flush=True,
            )
    result = {
        "space": args.space,
        "dataset": args.dataset,
        "model": args.model,
        "features": args.features,
        "heldout_n": args.heldout_n,
        "seeds": seeds,
        "curve": rows,
        "protocol": protocol,
        "probe_run": source.run,
        "provenance": _provenance(args, bench),
    }
    if args.json:
        print(json.dumps(_json_safe(result)))
    return 0
