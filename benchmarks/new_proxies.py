"""Rank correlation and cost of standalone proxies on random NATS-Bench TSS architectures.

Usage (from the repository root; GM_LAB_DATA optional, see "Data"):

    python benchmarks/new_proxies.py --proxies swap swap_reg meco_opt --n 1000 --seed 0 \\
        --workers 16 --json new_proxies.json
    python benchmarks/new_proxies.py --proxies swap --n 200 --swap-draws 32   # re-draw study

Protocol:
- Architectures: `--n` TSS architectures drawn uniformly without replacement with seed `--seed`
  (`gm_lab.sampling.draw_sample(kind="random")`, which keeps the project's final test set out).
- For each architecture, each dataset (cifar10, cifar100, ImageNet16-120) and each proxy, one
  `ProxyContext(arch, space="tss", dataset, num_classes, seed=0, images, labels,
  build=lambda: build_network("tss", arch, num_classes, 0))` and one call of the registered
  proxy. num_classes is the dataset's (10 / 100 / 120), so each dataset scores the network
  trained for it (the backbone's initialisation is the same, only the classifier differs).
- Images: THE SAME for all three datasets: the probe's default minibatch of CIFAR-10
  (`load_minibatch("cifar10", 64, 0)`, what `gm_lab.probe.default_inputs(ProbeConfig())`
  loads: batch 64, seed 0, test split, CIFAR-10 normalisation), contiguous NCHW float32. A proxy
  takes the part it needs (SWAP the first 16 images, MeCo the first one).
- Ground truth: final test accuracy of each dataset (`Benchmark.accuracy(dataset, "test")`).
  Printed per proxy and dataset: Kendall τ (tau-b) and Spearman ρ (scipy.stats) over the
  architectures whose value is finite, and the mean seconds per proxy call (one architecture,
  one dataset: network build included), wall-clock and CPU (process) time, measured in the
  worker; on a shared machine the CPU time is the steadier figure.
- `--one-network`: each architecture is scored once, as the CIFAR-10 network (10 classes), and
  that value is ranked against all three datasets' accuracies (a third of the cost; the
  recorded seconds are that one call's).
- Workers: `--workers` processes (spawned), each with 1 torch thread (`torch.set_num_threads(1)`,
  OMP/MKL threads 1); one task = one architecture (all proxies, all datasets).
- `--swap-draws K` (optional): also records SWAP's count for each of K re-draws of the weights
  (`gm_lab.proxies.swap.swap_pattern_counts`, seed 0, the cifar10 network: the counts do not
  depend on the classifier, so `swap` is the same on the three datasets) and prints τ/ρ of the
  mean of the first k = 1, 2, 4, ..., K re-draws (k = the registered `swap`'s SWAP_DRAWS gives
  exactly `swap`), and τ between the k-draw and K-draw means; the regularised versions (× each
  dataset's factor) too.
- With `swap` among the proxies, a sensitivity report of `swap_reg` to its unverified σ (see
  `swap_reg_sensitivity`): a report, not a way to choose σ.

Data: the benchmark table and the CIFAR-10 images are looked up as everywhere in gm_lab:
`$GM_LAB_DATA`, the per-user data folder, then the embedded default shipped in the package (the
whole TSS table, and 260 CIFAR-10 test images, from which the seeded batch of 64 is drawn: other
images than from a full CIFAR-10 download). The JSON records which (`minibatch`, `provenance`).

JSON (`--json`): every architecture's values and seconds per proxy and dataset, errors, the
summary table, and a provenance block (gm_lab version, git commit and dirty flag, torch / numpy /
scipy versions, command, seeds, minibatch provenance, benchmark table fingerprint, proxy specs).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import platform
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}
SPACE = "tss"
NETWORK_SEED = 0  # build_network seed and ProxyContext.seed
BATCH_SIZE = 64
BATCH_SEED = 0

# Set by `_init_worker` in every worker process (and in the main process for --workers 1).
_STATE: dict[str, Any] = {}


def _one_thread_env() -> None:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"


def _init_worker(
    images: Any, labels: Any, proxies: list[str], swap_draws: int, scored: tuple[str, ...]
) -> None:
    """Per worker: 1 torch thread, the shared minibatch, the proxy registry loaded once."""
    _one_thread_env()
    import torch

    from gm_lab.plugins import PROXIES

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")  # stand-in warnings etc. are recorded in the JSON instead
    _STATE.update(
        images=images.contiguous(),
        labels=labels,
        specs={name: PROXIES[name] for name in proxies},
        swap_draws=swap_draws,
        scored=scored,
    )


def _score_arch(position: int, index: int, arch: str) -> dict[str, Any]:
    """All proxies on all datasets for one architecture: values, seconds, errors."""
    from gm_lab.networks import build_network
    from gm_lab.plugins import ProxyContext

    values: dict[str, dict[str, float]] = {}
    seconds: dict[str, dict[str, float]] = {}
    cpu_seconds: dict[str, dict[str, float]] = {}
    errors: dict[str, str] = {}
    for name, spec in _STATE["specs"].items():
        values[name], seconds[name], cpu_seconds[name] = {}, {}, {}
        for dataset in _STATE["scored"]:
            classes = NUM_CLASSES[dataset]
            ctx = ProxyContext(
                arch=arch,
                space=SPACE,
                dataset=dataset,
                num_classes=classes,
                seed=NETWORK_SEED,
                images=_STATE["images"],
                labels=_STATE["labels"],
                build=lambda classes=classes: build_network(SPACE, arch, classes, NETWORK_SEED),
            )
            start, cpu_start = time.perf_counter(), time.process_time()
            try:
                value = float(spec.compute(ctx))
            except Exception as exc:  # one failing proxy must not stop a run
                value = math.nan
                errors[f"{name}/{dataset}"] = f"{type(exc).__name__}: {exc}"
            seconds[name][dataset] = time.perf_counter() - start
            cpu_seconds[name][dataset] = time.process_time() - cpu_start
            values[name][dataset] = value
        for dataset in DATASETS:  # --one-network: the CIFAR-10 network's value stands for all
            for table in (values, seconds, cpu_seconds):
                table[name].setdefault(dataset, table[name][_STATE["scored"][0]])
    row: dict[str, Any] = {
        "position": position,
        "index": index,
        "arch": arch,
        "values": values,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
    }
    if errors:
        row["errors"] = errors
    if _STATE["swap_draws"]:
        from gm_lab.proxies.swap import SWAP_BATCH, swap_pattern_counts

        start, cpu_start = time.perf_counter(), time.process_time()
        counts = swap_pattern_counts(
            build_network(SPACE, arch, NUM_CLASSES["cifar10"], NETWORK_SEED),
            _STATE["images"][:SWAP_BATCH],
            _STATE["swap_draws"],
            NETWORK_SEED,
        )
        row["swap_draw_counts"] = counts
        row["swap_draws_seconds"] = time.perf_counter() - start
        row["swap_draws_cpu_seconds"] = time.process_time() - cpu_start
    return row


def rank_correlations(values: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """Kendall τ-b and Spearman ρ over the pairs where both are finite."""
    from scipy import stats

    ok = np.isfinite(values) & np.isfinite(truth)
    n = int(ok.sum())
    if n < 3 or np.ptp(values[ok]) == 0:
        return {"kendall_tau": math.nan, "spearman_rho": math.nan, "n": n}
    tau = stats.kendalltau(values[ok], truth[ok]).statistic
    rho = stats.spearmanr(values[ok], truth[ok]).statistic
    return {"kendall_tau": float(tau), "spearman_rho": float(rho), "n": n}


def _draw_ks(total: int) -> list[int]:
    ks = [1]
    while ks[-1] * 2 < total:
        ks.append(ks[-1] * 2)
    return sorted({*ks, total})


def summarise(
    rows: list[dict[str, Any]], proxies: list[str], truth: dict[str, np.ndarray]
) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for name in proxies:
        summary[name] = {}
        for dataset in DATASETS:
            values = np.array([r["values"][name][dataset] for r in rows], dtype=float)
            secs = np.array([r["seconds"][name][dataset] for r in rows], dtype=float)
            cpu = np.array([r["cpu_seconds"][name][dataset] for r in rows], dtype=float)
            summary[name][dataset] = {
                **rank_correlations(values, truth[dataset]),
                "mean_seconds": float(secs.mean()),
                "median_seconds": float(np.median(secs)),
                "mean_cpu_seconds": float(cpu.mean()),
                "non_finite": int((~np.isfinite(values)).sum()),
            }
    return summary


def summarise_swap_draws(
    rows: list[dict[str, Any]], truth: dict[str, np.ndarray], factors: dict[str, np.ndarray]
) -> dict[str, Any]:
    """τ/ρ of the mean of the first k re-draws, and τ between the k- and K-draw means."""
    from scipy import stats

    counts = np.array([r["swap_draw_counts"] for r in rows], dtype=float)
    total = counts.shape[1]
    out: dict[str, Any] = {"draws": total, "per_k": {}}
    full = counts.mean(1)
    for k in _draw_ks(total):
        mean_k = counts[:, :k].mean(1)
        entry: dict[str, Any] = {
            "tau_vs_all_draws": float(stats.kendalltau(mean_k, full).statistic),
        }
        for dataset in DATASETS:
            entry[f"swap/{dataset}"] = rank_correlations(mean_k, truth[dataset])
            entry[f"swap_reg/{dataset}"] = rank_correlations(
                mean_k * factors[dataset], truth[dataset]
            )
        out["per_k"][str(k)] = entry
    out["mean_seconds_per_draw"] = float(np.mean([r["swap_draws_seconds"] for r in rows]) / total)
    out["mean_cpu_seconds_per_draw"] = float(
        np.mean([r["swap_draws_cpu_seconds"] for r in rows]) / total
    )
    return out


SIGMA_SCALES = (0.25, 1.0, 4.0, 16.0, 64.0)


def swap_reg_sensitivity(
    rows: list[dict[str, Any]], truth: dict[str, np.ndarray], sizes: dict[str, np.ndarray]
) -> dict[str, Any]:
    """τ of swap × exp(−(P_k − μ)²/(c·σ)) for a few multiples c of our σ (from the `swap`
    values, no extra pass), of swap alone (c = ∞) and of the parameter count alone. A report of
    how much the unverified σ matters, NOT a way to choose it (that would tune on test labels)."""
    from gm_lab.proxies.swap import regular_factor, regularisation_constants

    out: dict[str, Any] = {"sigma_scales": list(SIGMA_SCALES)}
    for d in DATASETS:
        mu, sigma = regularisation_constants(SPACE, NUM_CLASSES[d])
        swap = np.array([r["values"]["swap"][d] for r in rows], dtype=float)
        entry = {"mu": mu, "sigma": sigma}
        for c in SIGMA_SCALES:
            reg = swap * np.array([regular_factor(p, mu, c * sigma) for p in sizes[d]])
            entry[f"tau_sigma_x{c:g}"] = rank_correlations(reg, truth[d])["kendall_tau"]
        entry["tau_swap_alone"] = rank_correlations(swap, truth[d])["kendall_tau"]
        entry["tau_params_alone"] = rank_correlations(sizes[d], truth[d])["kendall_tau"]
        out[d] = entry
    return out


def provenance(
    args: argparse.Namespace, bench: Any, minibatch: Any, specs: dict[str, Any], sample: Any
) -> dict[str, Any]:
    import scipy
    import torch

    from gm_lab.provenance import run_provenance

    block = run_provenance(
        [sys.executable, *sys.argv],
        SPACE,
        DATASETS,
        seeds={
            "architecture_sample": args.seed,
            "network": NETWORK_SEED,
            "proxy_context": NETWORK_SEED,
            "minibatch": BATCH_SEED,
        },
        bench=bench,
        probe=False,
    )
    block["runtime_versions"] = {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
    }
    block["minibatch"] = minibatch.provenance()
    block["sample"] = sample.describe()
    block["proxies"] = {name: spec.describe() for name, spec in specs.items()}
    block["machine"] = {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "workers": args.workers,
        "torch_threads_per_worker": 1,
    }
    classes = (
        "the CIFAR-10 network (10 classes) scored once for all datasets (--one-network)"
        if args.one_network
        else "num_classes 10/100/120"
    )
    block["protocol"] = (
        f"same CIFAR-10 probe minibatch (batch 64, seed 0) for all datasets; {classes}; "
        "network seed 0; Kendall tau-b and Spearman rho vs final test accuracy"
    )
    return block


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--proxies", nargs="+", required=True, help="registered standalone proxies")
    parser.add_argument("--n", type=int, default=1000, help="random TSS architectures")
    parser.add_argument("--seed", type=int, default=0, help="seed of the architecture sample")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (1 thread each)")
    parser.add_argument("--swap-draws", type=int, default=0, help="re-draw study (module doc)")
    parser.add_argument("--json", type=Path, default=None, help="write all values here")
    parser.add_argument(
        "--one-network",
        action="store_true",
        help="score each architecture once, as the CIFAR-10 network (10 classes), and rank that "
        "value against all three datasets' accuracies: a third of the cost; the backbone and "
        "its initialisation are the same, only the classifier's width differs",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    _one_thread_env()
    import torch

    from gm_lab.benchmark import Benchmark
    from gm_lab.inputs import load_minibatch
    from gm_lab.networks import count_params
    from gm_lab.plugins import PROXIES
    from gm_lab.sampling import draw_sample

    torch.set_num_threads(1)
    unknown = [p for p in args.proxies if p not in PROXIES]
    if unknown:
        raise SystemExit(f"unknown proxies {unknown}; registered: {', '.join(PROXIES)}")
    specs = {name: PROXIES[name] for name in dict.fromkeys(args.proxies)}
    shared = [n for n, s in specs.items() if not s.standalone]
    if shared:
        raise SystemExit(
            f"{shared} read the probe's shared passes; only standalone proxies run here"
        )

    bench = Benchmark.load(SPACE, progress=False)
    truth_all = {d: bench.accuracy(d, "test") for d in DATASETS}
    sample = draw_sample(truth_all["cifar10"], "random", args.n, seed=args.seed)
    indices = [int(i) for i in sample.indices]
    archs = [str(bench.arch(i)) for i in indices]
    truth = {d: truth_all[d][indices] for d in DATASETS}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        minibatch = load_minibatch("cifar10", BATCH_SIZE, BATCH_SEED)
    for w in caught:
        print(f"note: {w.message}", file=sys.stderr)

    from tqdm import tqdm

    scored = ("cifar10",) if args.one_network else DATASETS
    init_args = (minibatch.images, minibatch.labels, list(specs), args.swap_draws, scored)
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    tasks = list(enumerate(zip(indices, archs, strict=True)))
    progress = tqdm(total=len(tasks), desc="architectures", unit="arch", file=sys.stderr)
    if args.workers <= 1:
        _init_worker(*init_args)
        for position, (index, arch) in tasks:
            rows.append(_score_arch(position, index, arch))
            progress.update()
    else:
        context = mp.get_context("spawn")
        with ProcessPoolExecutor(
            args.workers, mp_context=context, initializer=_init_worker, initargs=init_args
        ) as pool:
            futures = [pool.submit(_score_arch, p, i, a) for p, (i, a) in tasks]
            for future in as_completed(futures):
                rows.append(future.result())
                progress.update()
    progress.close()
    wall = time.perf_counter() - started
    rows.sort(key=lambda r: r["position"])

    summary = summarise(rows, list(specs), truth)
    result: dict[str, Any] = {
        "summary": summary,
        "wall_seconds": wall,
        "architectures": [
            {**r, "test_accuracy": {d: float(truth[d][r["position"]]) for d in DATASETS}}
            for r in rows
        ],
    }
    if args.swap_draws or "swap" in specs:
        from gm_lab.proxies.swap import regular_factor, regularisation_constants

        factors, sizes = {}, {}
        for d in DATASETS:
            mu, sigma = regularisation_constants(SPACE, NUM_CLASSES[d])
            sizes[d] = np.array([count_params(SPACE, a, NUM_CLASSES[d]) for a in archs], float)
            factors[d] = np.array([regular_factor(p, mu, sigma) for p in sizes[d]])
        if args.swap_draws:
            result["swap_draws"] = summarise_swap_draws(rows, truth, factors)
        if "swap" in specs:
            result["swap_reg_sensitivity"] = swap_reg_sensitivity(rows, truth, sizes)
    result["provenance"] = provenance(args, bench, minibatch, specs, sample)

    report(result, list(specs), len(rows), args.workers, minibatch)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=1, allow_nan=True) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return result


def report(
    result: dict[str, Any], proxies: list[str], n: int, workers: int, minibatch: Any
) -> None:
    print(
        f"\n{n} TSS architectures, {workers} worker(s) x 1 thread, {result['wall_seconds']:.0f} s"
        f" wall; images: {minibatch.source} ({'stand-in' if minibatch.is_standin else 'real'})"
    )
    head = f"{'proxy':<12} {'dataset':<15} {'tau':>7} {'rho':>7} {'n':>5} {'s/arch':>8}"
    print(f"{head} {'cpu s':>7}")
    for name in proxies:
        for dataset in DATASETS:
            s = result["summary"][name][dataset]
            print(
                f"{name:<12} {dataset:<15} {s['kendall_tau']:>7.3f} {s['spearman_rho']:>7.3f} "
                f"{s['n']:>5} {s['mean_seconds']:>8.3f} {s['mean_cpu_seconds']:>7.3f}"
            )
    errors = sum(len(r.get("errors", {})) for r in result["architectures"])
    if errors:
        print(f"{errors} proxy call(s) failed (NaN); see 'errors' in the JSON")
    if "swap_reg_sensitivity" in result:
        sens = result["swap_reg_sensitivity"]
        scales = sens["sigma_scales"]
        print("\nswap_reg sensitivity to sigma (a report, not a tuning): Kendall tau of")
        print("swap x exp(-(P_k - mu)^2 / (c sigma)); c = inf is swap alone; P: params alone")
        print(f"{'dataset':<15} " + " ".join(f"{'c=' + format(c, 'g'):>7}" for c in scales), end="")
        print(f" {'c=inf':>7} {'P':>7}")
        for d in DATASETS:
            e = sens[d]
            cells = " ".join(f"{e[f'tau_sigma_x{c:g}']:>7.3f}" for c in scales)
            print(f"{d:<15} {cells} {e['tau_swap_alone']:>7.3f} {e['tau_params_alone']:>7.3f}")
    if "swap_draws" in result:
        sd = result["swap_draws"]
        print(
            f"\nSWAP re-draw study: {sd['draws']} re-draws, "
            f"{sd['mean_seconds_per_draw']:.3f} s ({sd['mean_cpu_seconds_per_draw']:.3f} s CPU) "
            "per re-draw (cifar10 network)"
        )
        header = " ".join(f"{'tau ' + d[:8]:>14}" for d in DATASETS)
        print(f"{'k':>3} {'tau(k,K)':>9} {header}   (swap; swap_reg)")
        for k, entry in sd["per_k"].items():
            cells = " ".join(
                f"{entry[f'swap/{d}']['kendall_tau']:>6.3f};{entry[f'swap_reg/{d}']['kendall_tau']:.3f}"
                for d in DATASETS
            )
            print(f"{k:>3} {entry['tau_vs_all_draws']:>9.3f} {cells}")


if __name__ == "__main__":
    main()
