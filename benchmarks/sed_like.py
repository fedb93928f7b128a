"""`sed_like` (gm_lab/proxies/sed.py) on NATS-Bench TSS: rank correlation with test accuracy, the
#params baseline, cost, and the paper's monotonicity statements.

Usage (from the repository root):

    GM_LAB_DATA=../shared/data python benchmarks/sed_like.py --json benchmarks/sed_like.json

Protocol:
- Scores: `sed_like_scores(bench.archs)` on all 15,625 TSS arch strings (parsing included),
  timed wall-clock and CPU (process) time; the per-architecture cost is the total / 15,625.
  The score is data-free and the same for the three datasets.
- Ground truth: final test accuracy (`Benchmark.accuracy(dataset, "test")`: hp=200, mean over
  seeds) of cifar10, cifar100 and ImageNet16-120, from `Benchmark.load("tss")` (GM_LAB_DATA's
  table, else the embedded one; the JSON records which).
- Baseline: the parameter count of each dataset's network (`Benchmark.params(dataset)`, the
  table's `params_cifar10` / `params_cifar100` / `params_imagenet16` columns).
- Correlations: Kendall τ-b and Spearman ρ (gm_lab.metrics; a -inf score, a network whose output
  does not depend on its input, ranks below every finite one) on (a) all 15,625 architectures
  and (b) the 1,000 architectures `numpy.random.default_rng(--seed).choice(15625, 1000,
  replace=False)` (seed 0) of the benchmark's index order; (c) the development set, the other
  14,625, on which the final-block and mean-over-blocks variants were compared (both reported).
- Paper: no NAS-Bench-201 τ/ρ of SED could be read (only its abstract is reachable), so the
  paper column is empty; see the module docstring.
- Monotonicity: over every architecture and every edge holding op A, the fraction of
  single-edge replacements A -> B that lower `sed_like`, and that lower the CIFAR-10 test
  accuracy (the paper's statements: pooling and small kernels lower local entropy; skips beyond
  the first lower it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
from _provenance import record

from gm_lab.benchmark import DATASETS, Benchmark
from gm_lab.metrics import kendall, spearman
from gm_lab.proxies.sed import (
    CONV1,
    CONV3,
    NONE,
    POOL,
    SKIP,
    block_entropies,
    canonical_cells,
    parse_cell,
    sed_like_scores,
)

SHORT = {"cifar10": "C10", "cifar100": "C100", "ImageNet16-120": "IN16"}
PAPER = None  # SED's NAS-Bench-201 figures: not reachable (see gm_lab/proxies/sed.py)


def correlations(scores: np.ndarray, bench: Benchmark, rows: np.ndarray) -> dict[str, Any]:
    out = {}
    for dataset in DATASETS:
        acc = bench.accuracy(dataset)[rows]
        params = bench.params(dataset)[rows]
        out[dataset] = {
            "sed_like": {
                "kendall_tau": kendall(scores[rows], acc),
                "spearman_rho": spearman(scores[rows], acc),
            },
            "params": {"kendall_tau": kendall(params, acc), "spearman_rho": spearman(params, acc)},
        }
    return out


def variants(codes: np.ndarray) -> dict[str, np.ndarray]:
    """The two variants compared on the development set: H_loc of the last block, and the
    mean over the 17 blocks (the registered score)."""
    canonical = canonical_cells(codes)
    unique, inverse = np.unique(canonical, axis=0, return_inverse=True)
    h = block_entropies(unique)[:, inverse.reshape(-1)]
    return {"final_block": h[-1], "mean_over_blocks": h.mean(axis=0)}


def monotonicity(codes: np.ndarray, scores: np.ndarray, acc: np.ndarray) -> list[dict[str, Any]]:
    """Single-edge replacements A -> B: fraction lowering the score / the accuracy."""
    weights = 5 ** np.arange(5, -1, -1)  # cell_index: edge 0 most significant
    index = codes.astype(np.int64) @ weights
    by_index = np.empty(len(codes), dtype=np.int64)
    by_index[index] = np.arange(len(codes))
    n_skip = (codes == SKIP).sum(axis=1)
    cases = [
        ("nor_conv_3x3 -> avg_pool_3x3", CONV3, POOL, None),
        ("nor_conv_3x3 -> nor_conv_1x1", CONV3, CONV1, None),
        ("none -> skip_connect, no skip yet", NONE, SKIP, n_skip == 0),
        ("none -> skip_connect, >= 1 skip already", NONE, SKIP, n_skip >= 1),
        ("none -> skip_connect, >= 2 skips already", NONE, SKIP, n_skip >= 2),
        ("nor_conv_3x3 -> skip_connect, >= 1 skip already", CONV3, SKIP, n_skip >= 1),
    ]
    out = []
    for name, a, b, condition in cases:
        lower_score = lower_acc = total = 0
        for edge in range(6):
            rows = codes[:, edge] == a
            if condition is not None:
                rows &= condition
            src = np.flatnonzero(rows)
            dst = by_index[index[src] + (b - a) * weights[edge]]
            total += src.size
            lower_score += int(np.sum(scores[dst] < scores[src] - 1e-9))
            lower_acc += int(np.sum(acc[dst] < acc[src]))
        out.append(
            {
                "replacement": name,
                "n": total,
                "lowers_sed_like": lower_score / total,
                "lowers_cifar10_test_accuracy": lower_acc / total,
            }
        )
    return out


def provenance(
    args: argparse.Namespace, argv: list[str] | None, bench: Benchmark
) -> dict[str, Any]:
    """`run_provenance` of this run (benchmarks/_provenance.py: versions, commit, table
    fingerprint, seeds, command; nothing probed, and the sample may hold final test set
    architectures), plus how the sample was drawn, the ground truth read and the machine."""
    seeds = {"benchmark_sample": args.seed, "network": None, "data": None}
    block = record(
        __file__, "tss", DATASETS, seeds, argv, bench, final_test="included", probe=False
    )
    block["sample"] = (
        f"numpy.random.default_rng({args.seed}).choice(15625, {args.n}, replace=False) "
        "over the benchmark's index order"
    )
    block["ground_truth"] = {"source": bench.source, "split": "test", "hp": bench.space.hp}
    block["machine"] = {"platform": platform.platform(), "cpu_count": os.cpu_count()}
    return block


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="benchmark sample size")
    parser.add_argument("--seed", type=int, default=0, help="benchmark sample seed")
    parser.add_argument("--json", type=Path, help="write the results here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    bench = Benchmark.load("tss", progress=False)
    archs = [str(a) for a in bench.archs]

    cpu, wall = time.process_time(), time.perf_counter()
    scores = sed_like_scores(archs)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall

    codes = np.array([parse_cell(a) for a in archs], dtype=np.int8)
    everything = np.arange(bench.n_archs)
    sample = np.sort(np.random.default_rng(args.seed).choice(bench.n_archs, args.n, replace=False))
    dev = np.setdiff1d(everything, sample)
    by_variant = variants(codes)
    assert np.allclose(by_variant["mean_over_blocks"], scores, equal_nan=True)

    result = {
        "proxy": "sed_like",
        "paper_figure": PAPER,
        "cost": {
            "all_15625_wall_s": wall,
            "all_15625_cpu_s": cpu,
            "per_architecture_wall_ms": 1000 * wall / len(archs),
            "per_architecture_cpu_ms": 1000 * cpu / len(archs),
        },
        "n_minus_inf": int(np.isneginf(scores).sum()),
        "all": correlations(scores, bench, everything),
        "sample": correlations(scores, bench, sample),
        "development_set_variants": {
            name: correlations(values, bench, dev) for name, values in by_variant.items()
        },
        "monotonicity": monotonicity(codes, scores, bench.accuracy("cifar10")),
        "provenance": provenance(args, argv, bench),
    }
    report(result, args)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    return result


def report(result: dict[str, Any], args: argparse.Namespace) -> None:
    cost = result["cost"]
    print(
        f"sed_like: all 15,625 TSS cells in {cost['all_15625_wall_s']:.2f} s wall, "
        f"{cost['all_15625_cpu_s']:.2f} s CPU ({cost['per_architecture_cpu_ms']:.3f} ms CPU per "
        f"architecture); {result['n_minus_inf']} score -inf (output independent of the input)"
    )
    print("Kendall tau / Spearman rho vs test accuracy (paper's figure: not available)")
    header = "".join(f"{SHORT[d]:>22}" for d in DATASETS)
    print(f"{'':34}{header}")
    rows = [
        ("all 15,625", result["all"]),
        (f"{args.n} random (seed {args.seed})", result["sample"]),
    ] + [(f"dev 14,625: {k}", v) for k, v in result["development_set_variants"].items()]
    for label, block in rows:
        for proxy in ("sed_like", "params"):
            cells = "".join(
                f"{block[d][proxy]['kendall_tau']:>13.3f} / {block[d][proxy]['spearman_rho']:.3f}"
                for d in DATASETS
            )
            print(f"{label[:24]:24} {proxy:9}{cells}")
    print("single-edge replacement: share lowering sed_like | lowering CIFAR-10 test accuracy")
    for row in result["monotonicity"]:
        print(
            f"  {row['replacement']:48} {row['lowers_sed_like']:.2f} | "
            f"{row['lowers_cifar10_test_accuracy']:.2f}  (n={row['n']})"
        )


if __name__ == "__main__":
    main()
