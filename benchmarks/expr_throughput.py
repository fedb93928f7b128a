"""Expressions per second: random GP trees evaluated and ranked over 1,000 architectures.

Run: `python benchmarks/expr_throughput.py [--n 1000] [--layers 45] [--exprs 2000] [--seed 0]`

A synthetic `ProbeArrays` of the real cache's shape (every registered statistic and proxy under
its real name; layer counts ~N(45, 12) clipped to 8..83 as in TSS, padded to the longest, so
float64[1000, 83] per statistic) and random expressions from DEAP's genHalfAndHalf (depth 2-6,
seeded) as GP would draw them. Timed per expression: `evaluate` + Kendall τ against a random
ground truth (what GP fitness costs), and separately `canonical_key` (the fitness-cache key);
then the same for large trees (genFull, depth 6), as bloated late-generation GP trees are.
Target: ≥ 300 expressions per second. The first line printed is the run's provenance
(benchmarks/_provenance.py; no benchmark table is read, the data are synthetic).
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np
from _provenance import header
from deap import gp

from gm_lab.expressions import PSET, canonical_key, evaluate, prepare, proxy_names, stat_names
from gm_lab.metrics import kendall
from gm_lab.probe.cache import ProbeArrays


def synthetic_arrays(n: int, mean_layers: int, rng: np.random.Generator) -> ProbeArrays:
    """Realistic shape and value ranges: signed log-normal statistics, NaN padding."""
    n_layers = np.clip(rng.normal(mean_layers, 12, n), 8, 83).astype(np.int64)
    n_layers[0] = 83
    width = int(n_layers.max())
    mask = np.arange(width)[None, :] < n_layers[:, None]

    def values(shape: tuple[int, ...]) -> np.ndarray:
        return rng.lognormal(0.0, 2.0, shape) * rng.choice([-1.0, 1.0], shape, p=[0.2, 0.8])

    return ProbeArrays(
        indices=np.arange(n, dtype=np.int64),
        archs=[f"|synthetic~{i}|" for i in range(n)],
        n_layers=n_layers,
        mask=mask,
        layer_stats={s: np.where(mask, values((n, width)), np.nan) for s in stat_names()},
        proxies={p: values((n,)) for p in proxy_names()},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="architectures")
    parser.add_argument("--layers", type=int, default=45, help="mean layers per architecture")
    parser.add_argument("--exprs", type=int, default=2000, help="random expressions")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    seeds = {"synthetic_data": args.seed, "expressions": args.seed}
    print(header(__file__, "tss", [], seeds), flush=True)

    rng = np.random.default_rng(args.seed)
    arrays = synthetic_arrays(args.n, args.layers, rng)
    truth = rng.uniform(10.0, 95.0, args.n)
    random.seed(args.seed)
    trees = [gp.PrimitiveTree(gp.genHalfAndHalf(PSET, 2, 6)) for _ in range(args.exprs)]
    sizes = np.array([len(t) for t in trees])
    print(
        f"{args.n} architectures, {len(arrays.layer_stats)} statistics x "
        f"{arrays.mask.shape}, {len(arrays.proxies)} proxies; {args.exprs} expressions, "
        f"{sizes.mean():.1f} nodes on average (max {sizes.max()})"
    )

    start = time.perf_counter()
    prepare(arrays)
    for tree in trees[:20]:  # load every terminal once, as a long GP run would have
        evaluate(tree, arrays)
    warmup = time.perf_counter() - start

    start = time.perf_counter()
    taus = [kendall(evaluate(tree, arrays), truth) for tree in trees]
    fitness = time.perf_counter() - start
    start = time.perf_counter()
    for tree in trees:
        evaluate(tree, arrays)
    alone = time.perf_counter() - start
    start = time.perf_counter()
    keys = {canonical_key(tree) for tree in trees}
    keying = time.perf_counter() - start

    valid = np.isfinite(taus).sum()
    print(f"  warm-up (prepare + first 20)     {warmup:7.3f} s")
    print(
        f"  evaluate + Kendall               {args.exprs / fitness:7.0f} expr/s "
        f"({1e3 * fitness / args.exprs:.2f} ms each; {valid} non-constant scores)"
    )
    print(f"  evaluate alone                   {args.exprs / alone:7.0f} expr/s")
    print(
        f"  canonical_key                    {args.exprs / keying:7.0f} expr/s "
        f"({len(keys)} distinct canonical forms)"
    )
    print(f"  target >= 300 expr/s: {'met' if args.exprs / fitness >= 300 else 'NOT met'}")

    big = [gp.PrimitiveTree(gp.genFull(PSET, 6, 6)) for _ in range(args.exprs // 10)]
    start = time.perf_counter()
    for tree in big:
        kendall(evaluate(tree, arrays), truth)
    seconds = time.perf_counter() - start
    print(
        f"  large trees (genFull depth 6, {np.mean([len(t) for t in big]):.0f} nodes): "
        f"{len(big) / seconds:.0f} expr/s evaluate + Kendall"
    )


if __name__ == "__main__":
    main()
